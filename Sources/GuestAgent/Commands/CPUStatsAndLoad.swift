// Processor time and load: guest-get-cpustats, guest-get-load.

/// `guest-get-cpustats`: the `cpuN` lines of /proc/stat, in milliseconds.
struct GuestGetCpustats: @MainActor GuestAgentCommand {
    static let name = "guest-get-cpustats"

    /// A GuestCpuStats union of type `linux`.
    struct CpuStats: Encodable {
        let type = "linux"
        let cpu: Int64
        let user: UInt64
        let nice: UInt64
        let system: UInt64
        let idle: UInt64
        var iowait: UInt64?
        var irq: UInt64?
        var softirq: UInt64?
        var steal: UInt64?
        var guest: UInt64?
        var guestnice: UInt64?
    }

    private static let counterFields = [CScan.Field](repeating: .unsignedLong, count: 10)

    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> [CpuStats] {
        let text: [UInt8]
        do {
            text = try agent.system.fileContents("/proc/stat")
        } catch {
            throw QMPError("open(\"/proc/stat\"): \(error)")
        }
        let ticksPerSecond = clockTicksPerSecond()
        var result: [CpuStats] = []
        for line in text.split(separator: UInt8(ascii: "\n")) {
            // Only the per-processor lines (the total line is plain `cpu`);
            // other lines are not worth scanning.
            guard line.drop(while: isASCIISpace).starts(with: "cpu".utf8) else { continue }
            let fields = CScan.scan(line, "%s %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu", [.string] + counterFields)
            let name = fields.string(0)
            guard name != "cpu" else { continue }
            guard fields.count >= 5 else {
                agent.log.warning("Parsing cpu stat from /proc/stat failed, see \"man proc\"")
                break
            }
            func milliseconds(_ index: Int) -> UInt64 { fields.unsigned(index) &* 1000 / ticksPerSecond }
            var stats = CpuStats(
                cpu: Int64(CNumber.int(String(name.dropFirst(3)))), user: milliseconds(1), nice: milliseconds(2),
                system: milliseconds(3), idle: milliseconds(4))
            if fields.count > 5 { stats.iowait = milliseconds(5) }
            if fields.count > 6 {
                stats.irq = milliseconds(6)
                stats.softirq = milliseconds(7)
            }
            if fields.count > 8 { stats.steal = milliseconds(8) }
            if fields.count > 9 { stats.guest = milliseconds(9) }
            if fields.count > 10 { stats.guestnice = milliseconds(10) }
            result.append(stats)
        }
        return result
    }
}

/// `guest-get-load`: the load averages, read from /proc/loadavg as glibc's
/// `getloadavg` reads them (its first 64 bytes but the last one).
struct GuestGetLoad: @MainActor GuestAgentCommand {
    static let name = "guest-get-load"

    struct LoadAverage: Encodable {
        let load1m: Double
        let load5m: Double
        let load15m: Double
    }

    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> LoadAverage {
        let text: [UInt8]
        do {
            text = try agent.system.fileContents("/proc/loadavg")
        } catch {
            throw QMPError("cannot query load average: \(error)")
        }
        let averages = CScan.scan(String(decoding: text.prefix(64).dropLast(), as: UTF8.self), "%lf %lf %lf",
                                  [.double, .double, .double])
        // glibc fails without setting errno here.
        guard averages.count == 3 else { throw QMPError("cannot query load average: \(SystemError.none)") }
        return LoadAverage(load1m: averages.double(0), load5m: averages.double(1), load15m: averages.double(2))
    }
}

import Glibc

// Processors, memory blocks and load: guest-get-vcpus, guest-get-memory-blocks,
// guest-get-memory-block-info, guest-get-cpustats, guest-get-load.

/// GuestLogicalProcessor: guest-get-vcpus' result, guest-set-vcpus' argument
/// (where `can-offline` may be left out and is ignored).
struct GuestLogicalProcessor: Codable {
    let logicalId: Int64
    let online: Bool
    let canOffline: Bool?

    enum CodingKeys: String, CodingKey {
        case logicalId = "logical-id"
        case online
        case canOffline = "can-offline"
    }
}

/// `guest-get-vcpus`: every `cpuN` of /sys/devices/system/cpu in directory
/// order, online unless its `online` file starts with `0`; a processor
/// without that file (usually cpu0) cannot be taken offline.
struct GuestGetVcpus: @MainActor GuestAgentCommand {
    static let name = "guest-get-vcpus"

    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> [GuestLogicalProcessor] {
        let cpuDirectory = "/sys/devices/system/cpu"
        let entries: [DirectoryEntry]
        do {
            entries = try agent.system.directoryEntries(cpuDirectory)
        } catch {
            throw QMPError("failed to list entries: \(cpuDirectory): \(error)")
        }
        var processors: [GuestLogicalProcessor] = []
        for entry in entries {
            let number = CScan.scan(entry.name, "cpu%ld", [.long])
            guard number.count != 0 else { continue }
            let id = number.signed(0)
            let path = "\(cpuDirectory)/cpu\(id)/"
            let directory: SysfsDirectory
            do {
                directory = try SysfsDirectory(agent.system, path)
            } catch {
                throw QMPError("open(\"\(path)\"): \(error)")
            }
            do {
                let state = try directory.read("online", count: 1)
                processors.append(GuestLogicalProcessor(logicalId: id, online: state[0] != UInt8(ascii: "0"), canOffline: true))
            } catch {
                switch error {
                case .open(let failure) where failure.errno == ENOENT:
                    processors.append(GuestLogicalProcessor(logicalId: id, online: true, canOffline: false))
                case .open(let failure): throw QMPError("open(\"\(path)/online\"): \(failure)")
                case .read(let failure): throw QMPError("pread(\"\(path)/online\"): \(failure)")
                case .endOfFile: throw QMPError("pread(\"\(path)/online\"): unexpected EOF")
                }
            }
        }
        return processors
    }
}

/// The memory-block directory of sysfs.
let memoryDirectory = "/sys/devices/system/memory/"

extension SysfsDirectory.ReadError {
    /// qemu-ga's text for a failed read of a memory-block attribute.
    func memoryAttributeError(_ name: String) -> QMPError {
        switch self {
        case .open(let failure): QMPError("open sysfs file \"\(name)\": \(failure)")
        case .read(let failure): QMPError("pread sysfs file \"\(name)\": \(failure)")
        case .endOfFile: QMPError("pread sysfs file \"\(name)\": unexpected EOF")
        }
    }

    var isMissingFile: Bool {
        if case .open(let failure) = self { return failure.errno == ENOENT }
        return false
    }
}

/// GuestMemoryBlock: guest-get-memory-blocks' result, guest-set-memory-blocks'
/// argument (where `can-offline` may be left out and is ignored).
struct GuestMemoryBlock: Codable {
    let physIndex: UInt64
    let online: Bool
    let canOffline: Bool?

    enum CodingKeys: String, CodingKey {
        case physIndex = "phys-index"
        case online
        case canOffline = "can-offline"
    }
}

/// `guest-get-memory-blocks`: every `memoryN` block of sysfs in directory
/// order. Without memory hotplug in the kernel the list is empty.
struct GuestGetMemoryBlocks: @MainActor GuestAgentCommand {
    static let name = "guest-get-memory-blocks"

    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> [GuestMemoryBlock] {
        let entries: [DirectoryEntry]
        do {
            entries = try agent.system.directoryEntries(memoryDirectory)
        } catch {
            if error.errno == ENOENT { return [] }
            throw QMPError("Can't open directory\"\(memoryDirectory)\": \(error)")
        }
        var blocks: [GuestMemoryBlock] = []
        for entry in entries where entry.name.hasPrefix("memory") && entry.type & DirectoryEntry.directoryType != 0 {
            let physIndex = UInt64(strtoul(String(entry.name.dropFirst(6)), nil, 10))
            let path = "\(memoryDirectory)memory\(Int64(bitPattern: physIndex))/"
            let directory: SysfsDirectory
            do {
                directory = try SysfsDirectory(agent.system, path)
            } catch {
                throw QMPError("Could not open '\(path)': \(error)")
            }
            let state: [UInt8]
            do {
                state = try directory.read("state", count: 10)
            } catch {
                // Kernels without the file cannot offline memory.
                guard error.isMissingFile else { throw error.memoryAttributeError("state") }
                blocks.append(GuestMemoryBlock(physIndex: physIndex, online: true, canOffline: false))
                continue
            }
            let canOffline: Bool
            do {
                canOffline = try directory.read("removable", count: 1)[0] != UInt8(ascii: "0")
            } catch {
                guard error.isMissingFile else { throw error.memoryAttributeError("removable") }
                canOffline = false
            }
            blocks.append(GuestMemoryBlock(physIndex: physIndex, online: state.starts(with: "online".utf8), canOffline: canOffline))
        }
        if blocks.isEmpty { throw QMPError("guest reported zero memory blocks!") }
        return blocks
    }
}

/// `guest-get-memory-block-info`: the size of a memory block.
struct GuestGetMemoryBlockInfo: @MainActor GuestAgentCommand {
    static let name = "guest-get-memory-block-info"

    struct MemoryBlockInfo: Encodable {
        let size: UInt64
    }

    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> MemoryBlockInfo {
        let directory: SysfsDirectory
        do {
            directory = try SysfsDirectory(agent.system, memoryDirectory)
        } catch {
            throw QMPError("open(\"\(memoryDirectory)\"): \(error)")
        }
        let text: [UInt8]
        do {
            text = try directory.read("block_size_bytes", count: 20)
        } catch {
            throw error.memoryAttributeError("block_size_bytes")
        }
        // Hexadecimal text, read as a C long.
        let size = strtol(String(decoding: text, as: UTF8.self), nil, 16)
        return MemoryBlockInfo(size: UInt64(bitPattern: Int64(size)))
    }
}

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
        let ticksPerSecond = UInt64(sysconf(Int32(_SC_CLK_TCK)))
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
                cpu: Int64(atoi(String(name.dropFirst(3)))), user: milliseconds(1), nice: milliseconds(2),
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
        guard averages.count == 3 else { throw QMPError("cannot query load average: \(SystemError(errno: 0))") }
        return LoadAverage(load1m: averages.double(0), load5m: averages.double(1), load15m: averages.double(2))
    }
}

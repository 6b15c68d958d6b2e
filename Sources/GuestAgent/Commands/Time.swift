// The clock: guest-get-time, guest-set-time, guest-get-timezone.

/// `guest-get-time`: nanoseconds since the epoch, from a microsecond clock.
struct GuestGetTime: @MainActor GuestAgentCommand {
    static let name = "guest-get-time"

    static func run(_ arguments: NoArguments, agent: GAState) -> Int64 {
        GLibTime.realTimeMicroseconds() * 1000
    }
}

/// `guest-set-time`: with `time` (ns since the epoch), sets the system clock
/// and then the hardware clock from it (`hwclock -w`); without, sets the system
/// clock from the hardware clock (`hwclock -s`).
struct GuestSetTime: @MainActor GuestAgentCommand {
    static let name = "guest-set-time"

    struct Arguments: Decodable { let time: Int64? }

    static func run(_ arguments: Arguments, agent: GAState) throws(QMPError) -> EmptyResult {
        if let time = arguments.time {
            // C's truncating division and remainder, as qemu-ga computes them.
            let seconds = Int(time / 1_000_000_000)
            let microseconds = Int(time % 1_000_000_000 / 1000)
            // The local calendar year must be 1970...2069. qemu-ga appends
            // an errno nothing set (so 7.2 says just "Invalid time"); one
            // the date conversion sets is kept.
            let (year, error) = GLibTime.localYear(ofSeconds: seconds)
            guard (1970..<2070).contains(year) else {
                throw QMPError("Invalid time" + (error.map { ": \($0)" } ?? ""))
            }
            do {
                try agent.system.calls.setTime(seconds: seconds, microseconds: microseconds)
            } catch {
                throw QMPError("Failed to set time to guest: \(error)")
            }
        }
        try ChildProcess.run(["/sbin/hwclock", arguments.time == nil ? "-s" : "-w"],
                             action: "set hardware clock to system time", system: agent.system)
        return EmptyResult()
    }
}

/// `guest-get-timezone`: GLib's local time zone now.
struct GuestGetTimezone: @MainActor GuestAgentCommand {
    static let name = "guest-get-timezone"

    struct Timezone: Encodable {
        let zone: String?
        let offset: Int64
    }

    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> Timezone {
        guard let now = GLibTime.localZoneNow() else { throw QMPError("Couldn't retrieve local timezone") }
        return Timezone(zone: now.abbreviation, offset: Int64(now.offset))
    }
}

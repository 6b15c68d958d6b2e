/// `guest-fstrim`: FITRIM on every filesystem of the mount list; one result per
/// mount point, in reverse mount order. Only a mount-list failure fails the
/// command.
struct GuestFstrim: @MainActor GuestAgentCommand {
    static let name = "guest-fstrim"

    struct Arguments: Decodable { let minimum: Int64? }

    /// GuestFilesystemTrimResult: `trimmed` and `minimum`, or `error`.
    struct TrimResult: Encodable {
        let path: String
        var trimmed: Int64?
        var minimum: Int64?
        var error: String?
    }

    struct Result: Encodable { let paths: [TrimResult] }

    static func run(_ arguments: Arguments, agent: GAState) throws(QMPError) -> Result {
        agent.log.syslog("guest-fstrim called")
        let mounts = try MountList.read(agent.system)
        return Result(paths: mounts.reversed().map { trim($0.mountPoint, minimum: arguments.minimum ?? 0, system: agent.system) })
    }

    private static func trim(_ mountPoint: String, minimum: Int64, system: SystemEnvironment) -> TrimResult {
        var result = TrimResult(path: mountPoint)
        do throws(OpenedCallError) {
            // The whole filesystem; the kernel reports what it trimmed and
            // the minimum extent it used.
            let range = try system.calls.withOpened(system.path(mountPoint)) { fd throws(SystemError) in
                try system.calls.trimFilesystem(fd, minimum: UInt64(bitPattern: minimum))
            }
            result.trimmed = Int64(bitPattern: range.trimmed)
            result.minimum = Int64(bitPattern: range.minimum)
        } catch {
            switch error {
            case .open(let error):
                result.error = "failed to open: \(error)"
            case .call(let error):
                result.error = error == .inappropriateControl || error == .notSupported
                    ? "trim not supported" : "failed to trim: \(error)"
            }
        }
        return result
    }
}

import CGLib
import Glibc

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
        let fd = open(system.path(mountPoint), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            result.error = "failed to open: \(SystemError(errno: errno))"
            return result
        }
        defer { close(fd) }
        // The whole filesystem; the kernel reports what it trimmed in `len`
        // and the minimum extent it used in `minlen`.
        var range = cglib_fstrim_range(start: 0, len: UInt64.max, minlen: UInt64(bitPattern: minimum))
        guard cglib_ioctl_pointer(fd, cglib_fitrim, &range) == 0 else {
            result.error = errno == ENOTTY || errno == EOPNOTSUPP
                ? "trim not supported" : "failed to trim: \(SystemError(errno: errno))"
            return result
        }
        result.trimmed = Int64(bitPattern: range.len)
        result.minimum = Int64(bitPattern: range.minlen)
        return result
    }
}

import CGLib
import Glibc

/// systemd's notification protocol (sd_notify(3)), spoken directly rather
/// than through libsystemd: each state is one datagram to the AF_UNIX
/// socket that `NOTIFY_SOCKET` names (a path, or `@name` in the abstract
/// namespace). Sends never block the main loop, and a failed one is only
/// logged: the agent works the same without anyone listening.
final class SystemdNotifier {
    private let descriptor: Int32
    private var address = sockaddr_un()
    private let addressLength: socklen_t
    /// `WATCHDOG_USEC` when systemd wants keep-alives from this process.
    let watchdogMicroseconds: UInt64?
    private var readySent = false
    private let log: GALog

    /// The notifier the environment asks for, or nil (no `NOTIFY_SOCKET`,
    /// or one that is neither a path nor `@name`, or too long).
    /// `WATCHDOG_USEC` applies when `WATCHDOG_PID` is absent or is `pid`.
    init?(environment: [String: String], pid: pid_t, log: GALog) {
        self.log = log
        guard let socketName = environment["NOTIFY_SOCKET"], let first = socketName.utf8.first,
              first == UInt8(ascii: "/") || first == UInt8(ascii: "@") else { return nil }
        var name = Array(socketName.utf8)
        // The abstract namespace: a leading NUL, and no NUL at the end.
        if first == UInt8(ascii: "@") { name[0] = 0 } else { name.append(0) }
        guard name.count <= MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: name) }
        addressLength = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + name.count)
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        let forUs = environment["WATCHDOG_PID"].map { UInt64($0) == UInt64(pid) } ?? true
        watchdogMicroseconds = environment["WATCHDOG_USEC"].flatMap { UInt64($0) }.flatMap { $0 > 0 && forUs ? $0 : nil }
    }

    isolated deinit { close(descriptor) }

    /// The notifier of this process's environment. The variables are
    /// removed from it, as sd_notify's `unset_environment` does, so that
    /// the programs the agent runs do not take them for theirs.
    static func fromEnvironment(log: GALog) -> SystemdNotifier? {
        let names = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"]
        let environment = names.reduce(into: [String: String]()) { found, name in
            found[name] = ProcessEnvironment.value(name)
        }
        names.forEach { unsetenv($0) }
        return SystemdNotifier(environment: environment, pid: getpid(), log: log)
    }

    /// One datagram, e.g. `READY=1`.
    func send(_ state: String) {
        let bytes = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(descriptor, bytes, bytes.count, Int32(MSG_DONTWAIT), $0, addressLength)
            }
        }
        if sent < 0 { log.debug("cannot notify systemd of \(state): \(SystemError.current)") }
    }

    /// `READY=1`, once: the channel accepts requests.
    func ready() {
        guard !readySent else { return }
        readySent = true
        send("READY=1")
    }

    /// `WATCHDOG=1` now and then from the main loop every quarter of the
    /// period, so that a late iteration still keeps within half of it; nil
    /// when systemd wants none. Nothing touches the disk, so this goes on
    /// while the filesystems are frozen.
    func startWatchdog() -> GLibSource? {
        guard let watchdogMicroseconds else { return nil }
        send("WATCHDOG=1")
        return GLibSource.timeout(milliseconds: UInt32(clamping: max(watchdogMicroseconds / 4000, 1))) { [unowned self] in
            send("WATCHDOG=1")
            return true
        }
    }
}

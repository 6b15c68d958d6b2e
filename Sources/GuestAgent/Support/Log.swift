import CGLib
import Glibc
import Synchronization

/// The agent's log: lines `<epoch>.<usec>: <level>: <message>` to stderr or a
/// log file for the levels enabled, and qemu-ga's `slog` lines to syslog.
/// Everything is suppressed while filesystems are frozen, as in qemu-ga.
///
/// It is also GLib's default log handler, which GLib may call from its worker
/// thread, so it is safe to use from any thread.
nonisolated package final class GALog: Sendable {
    package enum Level: Int, CaseIterable, Sendable {
        case error, critical, warning, message, info, debug

        var word: String {
            switch self {
            case .error: "error"
            case .critical: "critical"
            case .warning: "warning"
            case .message: "message"
            case .info: "info"
            case .debug: "debug"
            }
        }

        init(_ flags: GLogLevelFlags) {
            let value = flags.rawValue
            self = if value & G_LOG_LEVEL_ERROR.rawValue != 0 { .error }
                else if value & G_LOG_LEVEL_CRITICAL.rawValue != 0 { .critical }
                else if value & G_LOG_LEVEL_WARNING.rawValue != 0 { .warning }
                else if value & G_LOG_LEVEL_MESSAGE.rawValue != 0 { .message }
                else if value & G_LOG_LEVEL_INFO.rawValue != 0 { .info }
                else { .debug }
        }
    }

    private struct State {
        var verbose = false
        var isEnabled = true
        /// Where lines go: stderr until a log file is opened.
        var descriptor = STDERR_FILENO
    }

    private let state = Mutex(State())

    package init() {}

    /// All levels when true; qemu-ga's default is error and critical only.
    package var verbose: Bool {
        get { state.withLock { $0.verbose } }
        set { state.withLock { $0.verbose = newValue } }
    }

    /// False while frozen: nothing is written anywhere.
    package var isEnabled: Bool {
        get { state.withLock { $0.isEnabled } }
        set { state.withLock { $0.isEnabled = newValue } }
    }

    /// Appends to `path` from now on, as qemu-ga's `fopen(path, "a")`.
    package func openFile(_ path: String) throws(SystemError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw SystemError.current }
        state.withLock {
            if $0.descriptor != STDERR_FILENO { close($0.descriptor) }
            $0.descriptor = fd
        }
    }

    package func log(_ level: Level, _ message: @autoclosure () -> String) {
        let descriptor: Int32? = state.withLock { state in
            guard state.isEnabled, state.verbose || level == .error || level == .critical else { return nil }
            return state.descriptor
        }
        guard let descriptor else { return }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let microseconds = String(now.tv_nsec / 1000)
        let line = "\(now.tv_sec).\(String(repeating: "0", count: 6 - microseconds.count))\(microseconds): \(level.word): \(message())\n"
        writeAll(descriptor, Array(line.utf8))
    }

    package func debug(_ message: @autoclosure () -> String) { log(.debug, message()) }
    package func warning(_ message: @autoclosure () -> String) { log(.warning, message()) }
    package func critical(_ message: @autoclosure () -> String) { log(.critical, message()) }

    /// qemu-ga's `slog`: an info record to syslog under the program's name,
    /// whatever the log levels.
    package func syslog(_ message: String) {
        guard isEnabled else { return }
        cglib_syslog_info(message)
    }

    /// Makes this log GLib's default handler, so GLib's own messages are
    /// written in the same format, as qemu-ga does.
    func becomeGLibDefaultHandler() {
        g_log_set_default_handler({ _, flags, message, log in
            let log = Unmanaged<GALog>.fromOpaque(log!).takeUnretainedValue()
            log.log(GALog.Level(flags), message.map { String(cString: $0) } ?? "")
        }, Unmanaged.passRetained(self).toOpaque())
    }
}

/// Writes every byte to a blocking descriptor, retrying short writes.
nonisolated func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    bytes.withUnsafeBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}

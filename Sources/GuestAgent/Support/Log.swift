import CGLib
import Glibc

/// The agent's log: lines `<epoch>.<usec>: <level>: <message>` to stderr or a
/// log file for the levels enabled, and qemu-ga's `slog` lines to syslog.
/// Everything is suppressed while filesystems are frozen, as in qemu-ga.
public final class GALog {
    public enum Level: Int, CaseIterable, Sendable {
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
    }

    /// The levels written to the log; qemu-ga's default is error and critical,
    /// `-v` enables all.
    public var levels: Set<Level> = [.error, .critical]
    /// False while frozen: nothing is written anywhere.
    public var isEnabled = true
    /// Where lines go: stderr until a log file is opened.
    private var descriptor: Int32 = STDERR_FILENO

    public init() {}

    public var verbose: Bool {
        get { levels.count == Level.allCases.count }
        set { levels = newValue ? Set(Level.allCases) : [.error, .critical] }
    }

    /// Appends to `path` from now on; qemu-ga opens it with `fopen(path, "a")`.
    public func openFile(_ path: String) throws(SystemError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw SystemError(errno: errno) }
        if descriptor != STDERR_FILENO { close(descriptor) }
        descriptor = fd
    }

    public func log(_ level: Level, _ message: @autoclosure () -> String) {
        guard isEnabled, levels.contains(level) else { return }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let microseconds = String(now.tv_nsec / 1000)
        let line = "\(now.tv_sec).\(String(repeating: "0", count: 6 - microseconds.count))\(microseconds): \(level.word): \(message())\n"
        writeAll(descriptor, Array(line.utf8))
    }

    public func debug(_ message: @autoclosure () -> String) { log(.debug, message()) }
    public func warning(_ message: @autoclosure () -> String) { log(.warning, message()) }
    public func critical(_ message: @autoclosure () -> String) { log(.critical, message()) }

    /// qemu-ga's `slog`: an info record to syslog under the program's name,
    /// whatever the log levels.
    public func syslog(_ message: String) {
        guard isEnabled else { return }
        message.withCString { text in
            withVaList([text]) { vsyslog(LOG_INFO, "info: %s", $0) }
        }
    }
}

/// Writes every byte to a blocking descriptor, retrying short writes.
func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
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

/// A failed system call, described as `strerror` does.
public struct SystemError: Error, Equatable, CustomStringConvertible {
    public let errno: Int32
    public init(errno: Int32) { self.errno = errno }
    public var description: String { String(cString: strerror(errno)) }
}

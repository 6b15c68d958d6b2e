#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Testing

// Helpers of the daemon-level tests: guest-info, one-shot requests, the
// commands' registration order, a syslog stand-in.

/// The commands that stay enabled while frozen, whatever the lists say.
let freezeSafeCommands: Set<String> = [
    "guest-ping", "guest-info", "guest-sync", "guest-sync-delimited", "guest-fsfreeze-status", "guest-fsfreeze-thaw",
]

struct CommandInfo: Equatable, CustomStringConvertible {
    let name: String
    let enabled: Bool
    var description: String { "\(name)\(enabled ? "" : " (disabled)")" }
}

extension Agent {
    /// Sends `request` on a new connection and returns the first reply line.
    func ask(_ request: String, timeout: Duration = .seconds(10)) throws -> String {
        let client = try connect()
        defer { client.close() }
        try client.send(request)
        return String(decoding: try client.receive(lines: 1, timeout: timeout), as: UTF8.self)
    }

    /// guest-info's `supported_commands`, in the order of the reply.
    func supportedCommands() throws -> [CommandInfo] {
        let reply = try ask(#"{"execute":"guest-info"}"#)
        guard let object = try JSONSerialization.jsonObject(with: Data(reply.utf8)) as? [String: Any],
              let result = object["return"] as? [String: Any],
              let commands = result["supported_commands"] as? [[String: Any]]
        else { throw HarnessError("\(kind): unexpected guest-info reply: \(reply)") }
        return try commands.map { entry in
            guard let name = entry["name"] as? String, let enabled = entry["enabled"] as? Bool else {
                throw HarnessError("\(kind): unexpected guest-info entry \(entry)")
            }
            return CommandInfo(name: name, enabled: enabled)
        }
    }
}

/// The registered commands in registration order (what `-b help` lists),
/// derived from a running agent's guest-info (which lists them reversed).
func registeredCommands(_ kind: AgentBinary) throws -> [String] {
    try withAgent(kind) { agent in try agent.supportedCommands().reversed().map(\.name) }
}

/// The reply to a command that a block or allow list disables, as the
/// newest qemu-ga words it.
func disabledReply(_ command: String) -> String {
    Reply.error("Command \(command) has been disabled: the command is not allowed", class: "CommandNotFound")
}

/// The reply to a command disabled by the freeze, as qemu-ga 7.2 words it
/// (the newest says "not allowed" here too, which sends the operator looking
/// for a list instead of a thaw).
func frozenReply(_ command: String) -> String {
    Reply.error("Command \(command) has been disabled: the agent is in frozen state", class: "CommandNotFound")
}

/// The argument-free request for `command` (the reply to a disabled
/// command does not depend on the arguments).
func bareRequest(_ command: String) -> String { #"{"execute":"\#(command)"}"# }

// MARK: syslog

/// A datagram socket standing in for /dev/log (see `syslogLauncher`), or
/// for systemd's notify socket (`DaemonSystemdTests`).
final class SyslogListener {
    let path: String
    private var fd: Int32

    /// Bound to `path`, or to `@name` in the abstract namespace.
    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: \(errnoText())") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Bytes(path.utf8)
        let abstract = pathBytes.first == UInt8(ascii: "@")
        if abstract { pathBytes[0] = 0 }
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw HarnessError("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: pathBytes) }
        // An abstract name is as long as it is, with no NUL at its end.
        let length = abstract ? MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + pathBytes.count : MemoryLayout<sockaddr_un>.size
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(length))
            }
        }
        guard bound == 0 else {
            let text = errnoText()
            Glibc.close(fd)
            throw HarnessError("bind \(path): \(text)")
        }
    }

    deinit { Glibc.close(fd) }

    /// Every datagram queued now (syslog(3) has sent a command's record
    /// before the agent writes the command's reply).
    func drain(limit: Int = .max) -> [Bytes] {
        var result: [Bytes] = []
        var buffer = Bytes(repeating: 0, count: 65536)
        while result.count < limit {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if count < 0 { break }
            result.append(Bytes(buffer[0..<count]))
        }
        return result
    }

    /// The next datagram, waiting up to `timeout` for it.
    func next(timeout: Duration) -> Bytes? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let datagram = drain(limit: 1).first { return datagram }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, millisecondsLeft(until: deadline)) > 0 || ContinuousClock.now < deadline else { return nil }
        }
    }
}

/// One syslog(3) record as glibc sends it to /dev/log:
/// `<PRI>Mmm dd hh:mm:ss IDENT: MESSAGE` (no PID, no newline).
struct SyslogRecord: Equatable, CustomStringConvertible {
    let priority: Int
    let ident: String
    let message: String
    var description: String { "<\(priority)> \(ident): \(message)" }

    static var format: Regex<AnyRegexOutput> { try! Regex(#"^<([0-9]+)>(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} ([^ :\[]+): (.*)$"#) }

    init?(_ bytes: Bytes) {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let match = try? Self.format.wholeMatch(in: text),
              let priority = match.output[1].substring.flatMap({ Int($0) }),
              let ident = match.output[3].substring, let message = match.output[4].substring
        else { return nil }
        self.priority = priority
        self.ident = String(ident)
        self.message = String(message)
    }
}

/// Runs the agent in a private mount namespace whose /dev is a small tmpfs
/// holding /dev/null (bind-mounted from the real one) and /dev/log, a
/// symlink to DIR/syslog.sock, where a `SyslogListener` receives what the
/// agent's syslog(3) calls send. The host's /dev is untouched; the
/// namespace ends with the agent (the shell execs it, so the agent keeps
/// the spawned pid).
func syslogLauncher(_ directory: String) -> [String] {
    let script = """
        set -e
        dir=$1; shift
        mkdir "$dir/olddev"
        mount --bind /dev "$dir/olddev"
        mount -t tmpfs -o size=64k,mode=755 tmpfs /dev
        touch /dev/null
        mount --bind "$dir/olddev/null" /dev/null
        umount "$dir/olddev"
        ln -s "$dir/syslog.sock" /dev/log
        exec "$@"
        """
    return ["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh", directory]
}

import CGLib
import Glibc
import Testing
import TestRequirements
@testable import GuestAgent

// Helpers for the channel tests: they drive the real GLib default context on
// the main thread, with deadlines, and talk to the agent through ptys and
// sockets.

/// Runs the GLib loop until `condition` holds or `seconds` pass; true if it
/// held. A 5 ms tick keeps the loop waking up to re-check conditions that
/// depend on things outside GLib.
@discardableResult
func drive(for seconds: Double = 5, until condition: () -> Bool) -> Bool {
    let tick = GLibSource.timeout(milliseconds: 5) { true }
    defer { tick.cancel() }
    let deadline = monotonicSeconds() + seconds
    while !condition() {
        if monotonicSeconds() > deadline { return false }
        g_main_context_iteration(nil, 1)
    }
    return true
}

/// Runs the GLib loop for `seconds`, with no tick of its own; returns how
/// many iterations dispatched something.
func driveIdle(for seconds: Double) -> Int {
    let deadline = monotonicSeconds() + seconds
    var dispatched = 0
    // A wake-up at the deadline at the latest.
    let end = GLibSource.timeout(milliseconds: UInt32(seconds * 1000)) { false }
    defer { end.cancel() }
    while monotonicSeconds() < deadline {
        if g_main_context_iteration(nil, 1) != 0 { dispatched += 1 }
    }
    return dispatched
}

func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// A fresh directory under /tmp, removed by `remove()`.
struct ScratchDirectory {
    let path: String

    init() {
        var template = Array("/tmp/qga-channel-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    func remove() {
        _ = system("rm -rf '\(path)'")
    }
}

/// An agent (GAState) with a verbose log written to a file the test reads.
@MainActor
final class TestAgent {
    let state: GAState
    let logPath: String
    private(set) var fatalErrors = 0
    private(set) var disconnects = 0

    init(scratch: ScratchDirectory) {
        let log = GALog()
        log.verbose = true
        logPath = scratch.file("agent.log")
        try! log.openFile(logPath)
        state = GAState(system: .host(), log: log)
    }

    var log: GALog { state.log }

    /// Gives the channel to the agent, counting fatal errors and disconnects.
    func attach(_ channel: GAChannel) {
        state.channel = channel
        channel.onFatalError = { [unowned self] in self.fatalErrors += 1 }
        let reset = channel.onDisconnect
        channel.onDisconnect = { [unowned self] in
            self.disconnects += 1
            reset()
        }
    }

    var logText: String {
        let fd = open(logPath, O_RDONLY)
        defer { close(fd) }
        return String(decoding: readAll(fd), as: UTF8.self)
    }

    /// The log's messages without their timestamps (`level: text`).
    var logMessages: [String] {
        logText.split(separator: "\n").map { line in
            guard let colon = line.firstIndex(of: ":") else { return String(line) }
            return String(line[line.index(colon, offsetBy: 2)...])
        }
    }
}

/// Everything readable from a descriptor now (it must be non-blocking).
func readAll(_ fd: Int32) -> [UInt8] {
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count <= 0 { return result }
        result += buffer[0..<count]
    }
}

func writeString(_ fd: Int32, _ text: String) {
    let bytes = Array(text.utf8)
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    precondition(written == bytes.count, "short write to \(fd): \(written), errno \(errno)")
}

func setNonBlocking(_ fd: Int32) {
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
}

/// Collects what the agent writes to `fd` while driving the loop, until a
/// whole line containing `needle` has arrived; returns all lines read.
func readLines(from fd: Int32, until needle: String, timeout: Double = 5) -> [String] {
    var received: [UInt8] = []
    func lines() -> [String] {
        received.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast().map {
            String(decoding: $0, as: UTF8.self)
        }
    }
    drive(for: timeout) {
        received += readAll(fd)
        return lines().contains { $0.contains(needle) }
    }
    return lines()
}

// MARK: Pseudo-terminals

/// A pty pair: the test holds the master (the "host"); the agent opens the
/// slave by path.
struct PseudoTerminal {
    let master: Int32
    let slavePath: String

    init() {
        master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)
        precondition(master >= 0, "posix_openpt: \(errno)")
        precondition(grantpt(master) == 0 && unlockpt(master) == 0)
        var name = [CChar](repeating: 0, count: 128)
        precondition(ptsname_r(master, &name, name.count) == 0)
        slavePath = name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        setNonBlocking(master)
    }

    /// Opens the slave for the test's own use (settings, hang-up).
    func openSlave() -> Int32 {
        let fd = open(slavePath, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        precondition(fd >= 0, "open \(slavePath): \(errno)")
        return fd
    }

    /// Sets the slave's line discipline: `configure` edits the settings.
    func configureSlave(_ configure: (inout termios) -> Void) {
        let fd = openSlave()
        defer { close(fd) }
        var settings = termios()
        tcgetattr(fd, &settings)
        configure(&settings)
        precondition(tcsetattr(fd, TCSANOW, &settings) == 0)
    }

    func slaveSettings() -> termios {
        let fd = openSlave()
        defer { close(fd) }
        var settings = termios()
        tcgetattr(fd, &settings)
        return settings
    }

    func closeMaster() { close(master) }
}

func controlCharacter(_ settings: termios, _ index: Int32) -> UInt8 {
    withUnsafeBytes(of: settings.c_cc) { $0[Int(index)] }
}

func setControlCharacter(_ settings: inout termios, _ index: Int32, _ value: UInt8) {
    withUnsafeMutableBytes(of: &settings.c_cc) { $0[Int(index)] = value }
}

// MARK: Sockets

func unixClient(_ path: String) -> Int32? {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    guard connected == 0 else {
        close(fd)
        return nil
    }
    setNonBlocking(fd)
    return fd
}

/// A listening unix socket bound at `path` (not through the agent).
func unixListener(_ path: String) -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    precondition(bound == 0 && listen(fd, 1) == 0, "listener at \(path): \(errno)")
    return fd
}

/// True once `fd` has bytes to read.
func isReadable(_ fd: Int32) -> Bool {
    var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    return poll(&entry, 1, 0) == 1
}

/// How many bytes wait in `fd`'s receive queue.
func bytesReadable(_ fd: Int32) -> Int {
    var count: Int32 = 0
    return ioctl(fd, UInt(FIONREAD), &count) == 0 ? Int(count) : -1
}

// MARK: Processes

/// The agent built with these tests (`<scratch>/debug/qemu-ga`), found next
/// to the test bundle.
func builtAgent() -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
    let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard count > 0 else { return nil }
    var directory = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    for _ in 0..<4 {
        guard let slash = directory.lastIndex(of: "/") else { return nil }
        directory = String(directory[..<slash])
        let candidate = directory + "/qemu-ga"
        var status = stat()
        if stat(candidate, &status) == 0, status.st_mode & S_IFMT == S_IFREG, access(candidate, X_OK) == 0 {
            return candidate
        }
    }
    return nil
}

/// A child process with its stderr on a pipe.
struct ChildProcess {
    let pid: pid_t
    let stderr: Int32

    /// Starts `arguments` (argv[0] is the program path) with stdin and stdout
    /// on /dev/null; `descriptor3` becomes the child's fd 3.
    init(_ arguments: [String], environment: [String]? = nil, descriptor3: Int32? = nil) {
        var pipeEnds: [Int32] = [0, 0]
        precondition(pipe(&pipeEnds) == 0)
        pipeEnds.forEach { _ = fcntl($0, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 2)
        if let descriptor3 {
            precondition(descriptor3 != 3)
            posix_spawn_file_actions_adddup2(&actions, descriptor3, 3)
        }
        let argv = arguments.map { strdup($0) } + [nil]
        let environ = (environment ?? currentEnvironment()).map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            environ.forEach { free($0) }
        }
        var child: pid_t = 0
        let status = posix_spawn(&child, arguments[0], &actions, nil, argv, environ)
        precondition(status == 0, "posix_spawn \(arguments[0]): \(status)")
        close(pipeEnds[1])
        pid = child
        stderr = pipeEnds[0]
        setNonBlocking(stderr)
    }

    /// Waits up to `timeout` for the child to exit; its exit status, or nil
    /// if it is still running.
    func wait(timeout: Double) -> Int32? {
        let deadline = monotonicSeconds() + timeout
        var status: Int32 = 0
        while monotonicSeconds() < deadline {
            if waitpid(pid, &status, WNOHANG) == pid {
                return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            }
            usleep(2000)
        }
        return nil
    }

    func kill() -> Int32 {
        _ = Glibc.kill(pid, SIGKILL)
        return wait(timeout: 5) ?? -1
    }

    /// Everything the child wrote to stderr so far.
    func errorOutput() -> String { String(decoding: readAll(stderr), as: UTF8.self) }
}

func currentEnvironment() -> [String] {
    var result: [String] = []
    var entry = environ
    while let pointer = entry.pointee {
        result.append(String(cString: pointer))
        entry += 1
    }
    return result
}

/// The first critical message the reference agent logs for these
/// arguments, without its timestamp (it must fail at startup).
func referenceCritical(_ arguments: [String]) -> String? {
    let child = ChildProcess([SystemRequirements.referenceAgent] + arguments)
    defer { close(child.stderr) }
    guard child.wait(timeout: 5) != nil else {
        _ = child.kill()
        return nil
    }
    let output = child.errorOutput()
    guard let line = output.split(separator: "\n").first, let range = line.firstRange(of: ": critical: ") else {
        return nil
    }
    return String(line[range.upperBound...])
}

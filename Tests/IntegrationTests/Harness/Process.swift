#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing

// Running the agent binary as a plain process: to completion (command-line
// and config-file behaviour, `-D`, `-d`), in a temporary directory, with a
// chosen environment, working directory and argv[0].

/// The environment an agent process gets: the test runner's own, without
/// the variables that change qemu-ga's behaviour (`QGA_CONF`, socket
/// activation), then `overrides` (a nil value removes the variable).
func agentEnvironment(_ overrides: [String: String?] = [:]) -> [String] {
    let controlled: Set<String> = ["QGA_CONF", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]
    var result: [String] = []
    var pointer = environ
    while let entry = pointer.pointee {
        let text = String(cString: entry)
        let name = String(text.prefix { $0 != "=" })
        if !controlled.contains(name) && overrides[name] == nil { result.append(text) }
        pointer += 1
    }
    for (name, value) in overrides.sorted(by: { $0.key < $1.key }) {
        if let value { result.append(name + "=" + value) }
    }
    return result
}

/// `posix_spawn` with the harness's conventions: stdin from /dev/null,
/// stdout and stderr to files (stderr to the stdout file if nil), default
/// signal dispositions and an empty signal mask in the child.
func spawnProcess(
    executable: String, argv: [String], environment: [String],
    stdout: String, stderr: String?, workingDirectory: String? = nil
) throws -> pid_t {
    var fileActions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&fileActions)
    defer { posix_spawn_file_actions_destroy(&fileActions) }
    if let workingDirectory {
        // glibc ≥ 2.29; not imported into Swift, so looked up by name.
        typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "posix_spawn_file_actions_addchdir_np") else {
            throw HarnessError("posix_spawn_file_actions_addchdir_np is not available")
        }
        let result = unsafeBitCast(symbol, to: AddChdir.self)(&fileActions, workingDirectory)
        guard result == 0 else { throw HarnessError("posix_spawn_file_actions_addchdir_np: \(errnoText(result))") }
    }
    posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&fileActions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    if let stderr {
        posix_spawn_file_actions_addopen(&fileActions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    } else {
        posix_spawn_file_actions_adddup2(&fileActions, 1, 2)
    }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var defaults = sigset_t()
    sigfillset(&defaults)
    sigdelset(&defaults, SIGKILL)
    sigdelset(&defaults, SIGSTOP)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    var mask = sigset_t()
    sigemptyset(&mask)
    posix_spawnattr_setsigmask(&attributes, &mask)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

    var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    var cEnvironment: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
    defer {
        cArguments.forEach { free($0) }
        cEnvironment.forEach { free($0) }
    }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, executable, &fileActions, &attributes, &cArguments, &cEnvironment)
    guard spawned == 0 else { throw HarnessError("posix_spawn \(executable): \(errnoText(spawned))") }
    return pid
}

/// Waits for child `pid` (a direct child, or an orphan adopted through
/// `Subreaper`); its raw wait status, or nil at the deadline.
func waitForChild(_ pid: pid_t, timeout: Duration) -> Int32? {
    let deadline = ContinuousClock.now + timeout
    while true {
        var raw: Int32 = 0
        let result = waitpid(pid, &raw, WNOHANG)
        if result == pid { return raw }
        if result < 0 && errno != EINTR { return nil }
        if ContinuousClock.now >= deadline { return nil }
        usleep(2_000)
    }
}

func describeWaitStatus(_ status: Int32?) -> String {
    guard let status else { return "still running" }
    if status & 0x7F == 0 { return "exit status \((status >> 8) & 0xFF)" }
    return "killed by signal \(status & 0x7F)"
}

func exitCode(of status: Int32?) -> Int32? {
    guard let status, status & 0x7F == 0 else { return nil }
    return (status >> 8) & 0xFF
}

/// The test process adopts orphaned descendants (PR_SET_CHILD_SUBREAPER),
/// so that a daemonized agent becomes our child when its parent exits and
/// its exit status can be collected with `waitpid` (pid 1 here reaps nothing).
enum Subreaper {
    private static let result: Int32 = {
        typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "prctl") else { return -1 }
        let prctl = unsafeBitCast(symbol, to: Prctl.self)
        let PR_SET_CHILD_SUBREAPER: Int32 = 36
        return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? 0 : errno
    }()

    static func enable() throws {
        guard result == 0 else { throw HarnessError("prctl(PR_SET_CHILD_SUBREAPER): \(errnoText(result))") }
    }
}

/// A fresh temporary directory, removed with everything in it on deinit.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/qga-dt.XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw HarnessError("mkdtemp: \(errnoText())") }
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit { removeTree(path) }

    func callAsFunction(_ name: String) -> String { path + "/" + name }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        try writeFile(self(name), Bytes(text.utf8))
        return self(name)
    }
}

func writeFile(_ path: String, _ bytes: Bytes) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw HarnessError("open \(path): \(errnoText())") }
    defer { close(fd) }
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
        guard written > 0 else { throw HarnessError("write \(path): \(errnoText())") }
        offset += written
    }
}

/// The file's bytes, or nil if it cannot be opened (e.g. does not exist).
func readFile(_ path: String) -> Bytes? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var result = Bytes()
    var buffer = Bytes(repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if count <= 0 { break }
        result += buffer[0..<count]
    }
    return result
}

func fileExists(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0
}

/// The names in directory `path`, without `.` and `..`.
func directoryEntries(_ path: String) throws -> [String] {
    guard let dir = opendir(path) else { throw HarnessError("opendir \(path): \(errnoText())") }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// Removes `path` and, for a directory, everything below it (symlinks are
/// removed, never followed).
func removeTree(_ path: String) {
    var info = stat()
    guard lstat(path, &info) == 0 else { return }
    if info.st_mode & S_IFMT == S_IFDIR {
        for name in (try? directoryEntries(path)) ?? [] { removeTree(path + "/" + name) }
        rmdir(path)
    } else {
        unlink(path)
    }
}

/// Polls `condition` every 5 ms until it holds or `timeout` passes.
@discardableResult
func poll(timeout: Duration = .seconds(5), _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        usleep(5_000)
    }
}

/// A finished agent process.
struct Completed: CustomStringConvertible {
    let arguments: [String]
    let rawStatus: Int32?
    let stdout: Bytes
    let stderr: Bytes

    var exitStatus: Int32? { exitCode(of: rawStatus) }
    var statusText: String { describeWaitStatus(rawStatus) }
    var out: String { String(decoding: stdout, as: UTF8.self) }
    var err: String { String(decoding: stderr, as: UTF8.self) }

    var description: String {
        "\(arguments.joined(separator: " ")): \(statusText); stdout: \(render(stdout)); stderr: \(render(stderr))"
    }
}

/// Runs the agent binary with `arguments` until it exits (killed after
/// `timeout`), capturing stdout and stderr separately. argv[0] is the
/// binary's path unless `argv0` is given.
func runAgent(
    _ kind: AgentBinary, _ arguments: [String], argv0: String? = nil,
    environment: [String: String?] = [:], workingDirectory: String? = nil,
    timeout: Duration = .seconds(10)
) throws -> Completed {
    try runProgram(try kind.path(), arguments, argv0: argv0, environment: environment,
                   workingDirectory: workingDirectory, timeout: timeout)
}

/// Runs `binary` to its end (killed after `timeout`, which fails the test).
func runProgram(
    _ binary: String, _ arguments: [String], argv0: String? = nil,
    environment: [String: String?] = [:], workingDirectory: String? = nil,
    timeout: Duration = .seconds(10)
) throws -> Completed {
    let scratch = try TemporaryDirectory()
    let pid = try spawnProcess(executable: binary, argv: [argv0 ?? binary] + arguments,
                               environment: agentEnvironment(environment),
                               stdout: scratch("stdout"), stderr: scratch("stderr"),
                               workingDirectory: workingDirectory)
    var status = waitForChild(pid, timeout: timeout)
    if status == nil {
        kill(pid, SIGKILL)
        status = waitForChild(pid, timeout: .seconds(5))
        Issue.record("\(binary) \(arguments) did not exit within \(timeout); killed")
    }
    return Completed(arguments: [argv0 ?? binary] + arguments, rawStatus: status,
                     stdout: readFile(scratch("stdout")) ?? [], stderr: readFile(scratch("stderr")) ?? [])
}

// MARK: Diagnostics

/// Diagnostics with their run-dependent parts replaced, for comparing two
/// runs: GLib's default handler `** (process:PID): LEVEL **: HH:MM:SS.mmm: `
/// and the agent's own `<epoch>.<usec>: ` line prefix.
func normalizedDiagnostics(_ bytes: Bytes) -> String {
    var text = String(decoding: bytes, as: UTF8.self)
    text = text.replacing(try! Regex(#"\(process:[0-9]+\)"#), with: "(process:PID)")
    text = text.replacing(try! Regex(#"\*\*: [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}: "#), with: "**: TIME: ")
    text = text.replacing(try! Regex(#"(?m)^[0-9]+\.[0-9]{6}: "#), with: "EPOCH: ")
    return text
}

/// The text GLib's default log handler prints for a critical or warning
/// raised before the agent installs its own handler (normalized as by
/// `normalizedDiagnostics`).
func glibDefaultHandlerLine(_ level: String, _ message: String) -> String {
    "\n** (process:PID): \(level) **: TIME: \(message)\n"
}

/// GLib's default handler writes in the locale's charset, and qemu-ga never
/// calls setlocale: the typographic quotes of GLib's messages become `?`.
func asPrintedByGLib(_ message: String) -> String {
    String(message.unicodeScalars.map { $0.isASCII ? Character($0) : "?" })
}

/// One line of the agent's log (`-l` file or stderr): `<epoch>.<usec>: <level>: <message>`.
struct LogLine: Equatable, CustomStringConvertible {
    let seconds: Int
    let microseconds: Int
    let level: String
    let message: String
    var description: String { "\(level): \(message)" }

    static let levels: Set<String> = ["error", "critical", "warning", "message", "info", "debug", "user"]

    /// nil unless `line` has exactly the agent's format.
    init?(_ line: Substring) {
        guard let colon = line.firstIndex(of: ":"), let dot = line[..<colon].firstIndex(of: ".") else { return nil }
        let secondsText = line[..<dot], microsText = line[line.index(after: dot)..<colon]
        guard !secondsText.isEmpty, secondsText.allSatisfy(\.isASCIIDigit),
              microsText.count == 6, microsText.allSatisfy(\.isASCIIDigit),
              let seconds = Int(secondsText), let micros = Int(microsText) else { return nil }
        let rest = line[line.index(after: colon)...]
        guard rest.hasPrefix(" ") else { return nil }
        let afterSpace = rest.dropFirst()
        guard let levelEnd = afterSpace.range(of: ": ") else { return nil }
        let level = String(afterSpace[..<levelEnd.lowerBound])
        guard Self.levels.contains(level) else { return nil }
        self.seconds = seconds
        microseconds = micros
        self.level = level
        message = String(afterSpace[levelEnd.upperBound...])
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

/// Splits log output into agent log lines; anything else (GLib default
/// handler output, blank lines) is returned separately.
func parseLog(_ bytes: Bytes) -> (lines: [LogLine], other: [String]) {
    var lines: [LogLine] = [], other: [String] = []
    for raw in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
        if let line = LogLine(raw) { lines.append(line) } else if !raw.isEmpty { other.append(String(raw)) }
    }
    return (lines, other)
}

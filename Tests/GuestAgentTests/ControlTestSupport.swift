import Glibc
import QMPJSON
import Testing
@testable import GuestAgent

// The commands that change the machine are only ever pointed at a
// `FixtureMachine`: a temporary directory standing for `/`, with fake
// programs that record how they were called. Nothing here may reach the
// real machine: `agent()` refuses a real root, fixture mount tables only
// name mount points that do not exist (so no FIFREEZE/FITHAW/FITRIM is
// ever issued), and programs are only found inside the tree.

final class FixtureMachine {
    let root: String

    init() {
        var template = Array("/tmp/qga-machine-XXXXXX".utf8CString)
        root = String(cString: mkdtemp(&template)!)
        precondition(root.count > 1 && root != "/")
        try! makeDirectories(root + "/var/run")
    }

    deinit { removeTree(root) }

    /// The real path of a path of the fixture machine.
    func path(_ machinePath: String) -> String { root + machinePath }

    /// Programs are searched in these directories of the fixture.
    var system: SystemEnvironment { SystemEnvironment(root: root, searchPath: "/usr/sbin:/usr/bin:/sbin:/bin") }

    /// The agent's own state directory (qga.state.isfrozen).
    var stateDirectory: String { path("/var/run") }

    func agent(_ configure: (inout GAConfig) -> Void = { _ in }, frozen: Bool = false, log: GALog = GALog()) -> GAState {
        var config = GAConfig()
        config.stateDirectory = stateDirectory
        configure(&config)
        let system = self.system
        precondition(!system.isRealRoot)
        return GAState(config: config, system: system, log: log, frozen: frozen)
    }

    /// Writes a file of the fixture machine, making its directories.
    func write(_ machinePath: String, _ text: String, mode: mode_t = 0o644) {
        let real = path(machinePath)
        try! makeDirectories(String(real[..<real.lastIndex(of: "/")!]))
        writeFile(real, text)
        chmod(real, mode)
    }

    /// A shell script at `machinePath`, executable.
    func program(_ machinePath: String, _ body: String) {
        write(machinePath, "#!/bin/sh\n" + body + "\n", mode: 0o755)
    }

    /// A fake program that appends `<name> <arguments>` (and, with `input`,
    /// `<name> stdin: <what it read>`) to the fixture's call log, prints
    /// `output`, and exits with `status`.
    func fake(_ machinePath: String, status: Int32 = 0, output: String = "", input: Bool = false) {
        let log = path("/calls")
        var body = #"echo "$(basename "$0")${*:+ $*}" >> '\#(log)'"#
        if input { body += "\n" + #"echo "$(basename "$0") stdin: $(cat)" >> '\#(log)'"# }
        if !output.isEmpty { body += "\nprintf '%s' '\(output)'" }
        program(machinePath, body + "\nexit \(status)")
    }

    /// The call log of the fake programs, one line per call.
    var calls: [String] {
        (readFile(path("/calls")) ?? "").split(separator: "\n").map(String.init)
    }

    /// A mount table of mount points that do not exist: the freeze, thaw
    /// and trim code paths run, but every `open` fails before any ioctl.
    func mountTable(_ mountPoints: [String]) {
        var text = ""
        for (index, mountPoint) in mountPoints.enumerated() {
            precondition(access(path(mountPoint), F_OK) != 0, "fixture mount point \(mountPoint) must not exist")
            text += "\(30 + index) 1 253:\(index) / \(mountPoint) rw - ext4 /dev/fake\(index) rw\n"
        }
        write("/proc/self/mountinfo", text)
    }
}

/// Removes a tree without following symbolic links or crossing into other
/// filesystems.
nonisolated func removeTree(_ path: String) {
    var info = stat()
    guard lstat(path, &info) == 0 else { return }
    if (info.st_mode & S_IFMT) == S_IFDIR, let directory = opendir(path) {
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(directory)
        for name in names {
            var child = stat()
            if lstat(path + "/" + name, &child) == 0 && child.st_dev != info.st_dev { continue }
            removeTree(path + "/" + name)
        }
        rmdir(path)
    } else {
        unlink(path)
    }
}

/// The reply line the agent writes for `request` (nil: no reply).
func answer(_ request: String, agent: GAState) -> String? {
    var parser = JSONMessageParser()
    let outputs = parser.feed(Array(request.utf8) + [0x0A])
    guard outputs.count == 1, case .value(let value) = outputs[0] else {
        Issue.record("\(request) did not parse to one value: \(outputs)")
        return nil
    }
    return QMPDispatcher.response(to: value, agent: agent).map { String(decoding: JSONWriter.encode(.object($0)), as: UTF8.self) }
}

func errorReply(_ desc: String, class errorClass: String = "GenericError") -> String {
    // As the agent's JSON writer escapes: upper-case \uXXXX beyond ASCII.
    let escaped = desc.unicodeScalars.map { scalar -> String in
        switch scalar {
        case "\\": return "\\\\"
        case "\"": return "\\\""
        case "\n": return "\\n"
        case _ where !scalar.isASCII:
            let hex = String(scalar.value, radix: 16, uppercase: true)
            return "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        default: return String(scalar)
        }
    }.joined()
    return "{\"error\": {\"class\": \"\(errorClass)\", \"desc\": \"\(escaped)\"}}"
}

let emptyReturn = #"{"return": {}}"#

/// A verbose log written to a file, for the lines a test expects.
final class CapturedLog {
    let log = GALog()
    let path: String

    init(in machine: FixtureMachine) {
        path = machine.path("/agent.log")
        log.verbose = true
        try! log.openFile(path)
    }

    /// The messages logged, `<level>: <message>`, without time stamps.
    var lines: [String] {
        (readFile(path) ?? "").split(separator: "\n").map { line in
            line.firstRange(of: ": ").map { String(line[$0.upperBound...]) } ?? String(line)
        }
    }
}

/// Replaces a file's content with `bytes` (NUL bytes included).
func writeBytes(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    precondition(fd >= 0)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

/// The mode and owner of a file.
func fileMode(_ path: String) -> (mode: mode_t, uid: uid_t, gid: gid_t)? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return (info.st_mode & 0o7777, info.st_uid, info.st_gid)
}

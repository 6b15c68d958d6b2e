import Glibc
import QMPJSON
import Testing
@testable import GuestAgent

// The commands that change the machine are only ever pointed at a
// `FixtureTree`: a temporary directory standing for `/`, with fake programs
// that record how they were called. Nothing here may reach the real
// machine: `agent()` refuses a real root, fixture mount tables only name
// mount points that do not exist (so no FIFREEZE/FITHAW/FITRIM is ever
// issued), and programs are only found inside the tree.

extension FixtureTree {
    /// The real path of a path of the fixture machine.
    func path(_ machinePath: String) -> String { root + machinePath }

    /// A file of the machine with `mode`.
    func file(_ machinePath: String, _ text: String, mode: mode_t) throws {
        try file(machinePath, text)
        chmod(path(machinePath), mode)
    }

    /// A shell script at `machinePath`, executable. Written through a
    /// close-on-exec descriptor: tests run in parallel, and a program
    /// another test starts meanwhile must not hold it open for writing (its
    /// exec would fail with ETXTBSY).
    func program(_ machinePath: String, _ body: String) throws {
        try directory(String(machinePath[..<machinePath.lastIndex(of: "/")!]))
        let fd = open(path(machinePath), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw SystemError(errno: errno) }
        defer { close(fd) }
        let bytes = Array("#!/bin/sh\n\(body)\n".utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { throw SystemError(errno: errno) }
        fchmod(fd, 0o755)
    }

    /// A fake program that appends `<name> <arguments>` (and, with `input`,
    /// `<name> stdin: <what it read>`) to the fixture's call log, prints
    /// `output`, and exits with `status`.
    func fake(_ machinePath: String, status: Int32 = 0, output: String = "", input: Bool = false) throws {
        let log = path("/calls")
        var body = #"echo "$(basename "$0")${*:+ $*}" >> '\#(log)'"#
        if input { body += "\n" + #"echo "$(basename "$0") stdin: $(cat)" >> '\#(log)'"# }
        if !output.isEmpty { body += "\nprintf '%s' '\(output)'" }
        try program(machinePath, body + "\nexit \(status)")
    }

    /// The call log of the fake programs, one line per call.
    var calls: [String] {
        (readFile(path("/calls")) ?? "").split(separator: "\n").map(String.init)
    }

    /// A mount table of mount points that do not exist: the freeze, thaw
    /// and trim code paths run, but every `open` fails before any ioctl.
    func mountTable(_ mountPoints: [String]) throws {
        var text = ""
        for (index, mountPoint) in mountPoints.enumerated() {
            precondition(access(path(mountPoint), F_OK) != 0, "fixture mount point \(mountPoint) must not exist")
            text += "\(30 + index) 1 253:\(index) / \(mountPoint) rw - ext4 /dev/fake\(index) rw\n"
        }
        try file("/proc/self/mountinfo", text)
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

let emptyReturn = #"{"return": {}}"#

/// A verbose log written to a file, for the lines a test expects.
final class CapturedLog {
    let log = GALog()
    let path: String

    init(in machine: FixtureTree) {
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

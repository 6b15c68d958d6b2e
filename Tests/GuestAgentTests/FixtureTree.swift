import Foundation
import Glibc
import QMPJSON
import Testing
@testable import GuestAgent
import MachineFixtures

/// A machine's files under a temporary root, for the commands that read
/// /proc, /sys and /etc through the system root. Removed when released.
final class FixtureTree {
    let root: String

    init() throws {
        var template = Array("/tmp/qga-fixture-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw SystemError(errno: errno) }
        root = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// A stand-in for the kernel (see `FakeKernel`); nil: the real calls on
    /// the tree's files, and a clock that is a file.
    var kernel: (any SystemCalls)?

    /// The machine; programs named without a slash are looked up in these
    /// directories of the tree.
    var system: SystemEnvironment { SystemEnvironment.fixture(root: root, calls: kernel) }

    /// The agent's own state directory (qga.state.isfrozen), in the tree.
    var stateDirectory: String { root + "/var/run" }

    /// An agent on this machine (never on the real one).
    func agent(_ configure: (inout GAConfig) -> Void = { _ in }, frozen: Bool = false, log: GALog = GALog()) -> GAState {
        var config = GAConfig()
        config.stateDirectory = stateDirectory
        configure(&config)
        try? directory("/var/run")
        return GAState(config: config, system: system, log: log, frozen: frozen)
    }

    func directory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: root + path, withIntermediateDirectories: true)
    }

    func file(_ path: String, _ content: String) throws {
        try file(path, Array(content.utf8))
    }

    func file(_ path: String, _ bytes: [UInt8]) throws {
        try directory(parent(of: path))
        guard FileManager.default.createFile(atPath: root + path, contents: Data(bytes)) else {
            throw FixtureError("cannot create \(root + path)")
        }
    }

    /// A symbolic link at `path` to the machine path `target`, relative as
    /// sysfs's links are, so that it resolves inside the tree.
    func link(_ path: String, to target: String) throws {
        try directory(parent(of: path))
        let from = parent(of: path).split(separator: "/")
        let to = target.split(separator: "/")
        var common = 0
        while common < from.count, common < to.count, from[common] == to[common] { common += 1 }
        let relative = Array(repeating: "..", count: from.count - common) + to[common...].map(String.init)
        guard symlink(relative.joined(separator: "/"), root + path) == 0 else {
            throw FixtureError("symlink \(path): \(SystemError(errno: errno))")
        }
    }

    /// A block device node (only ever stat'ed by the commands).
    func blockDeviceNode(_ path: String, major: UInt32, minor: UInt32) throws {
        try directory(parent(of: path))
        let device = dev_t(major & 0xFFF) << 8 | dev_t(minor & 0xFF) | dev_t(minor & ~0xFF) << 12
        guard mknod(root + path, S_IFBLK | 0o600, device) == 0 else {
            throw FixtureError("mknod \(path) failed (\(SystemError(errno: errno))): the btrfs fixture needs root")
        }
    }

    /// The names in a directory of the tree in readdir order: the order
    /// qemu-ga lists sysfs directories in.
    func directoryOrder(_ path: String) -> [String] {
        ((try? system.directoryEntries(path)) ?? []).map(\.name)
    }

    /// `values` ordered by where their keys appear in a directory of the tree.
    func inDirectoryOrder(_ path: String, _ values: [String: String]) -> [String] {
        let order = directoryOrder(path)
        #expect(Set(values.keys).isSubset(of: Set(order)), "fixture names missing from \(path)")
        return order.compactMap { values[$0] }
    }

    private func parent(of path: String) -> String {
        String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The reply line to a command, as the agent writes it.
func replyLine(_ command: String, arguments: String? = nil, agent: GAState) -> String {
    let request = arguments.map { #"{"execute":"\#(command)","arguments":\#($0)}"# } ?? #"{"execute":"\#(command)"}"#
    var parser = JSONMessageParser()
    guard case .value(let value)? = parser.feed(Array(request.utf8) + [0x0A]).first,
          let response = QMPDispatcher.response(to: value, agent: agent) else { return "(no reply)" }
    return String(decoding: JSONWriter.encode(.object(response)), as: UTF8.self)
}

/// The reply line for a `return` value written with its members in schema
/// order (the order qemu-ga inserts them in), printed in qemu-ga's order.
func returnLine(_ valueInSchemaOrder: String) -> String {
    var parser = JSONMessageParser()
    let text = #"{"return": \#(valueInSchemaOrder)}"#
    guard case .value(let value)? = parser.feed(Array(text.utf8) + [0x0A]).first else {
        Issue.record("expected value does not parse: \(valueInSchemaOrder)")
        return ""
    }
    return String(decoding: JSONWriter.encode(value), as: UTF8.self)
}

func errorLine(_ desc: String) -> String {
    var error = JSONObject()
    error["class"] = .string("GenericError")
    error["desc"] = .string(desc)
    var response = JSONObject()
    response["error"] = .object(error)
    return String(decoding: JSONWriter.encode(.object(response)), as: UTF8.self)
}

/// Expects the exact reply of `command` on the fixture machine.
func expectReturn(_ command: String, _ expected: String, agent: GAState, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(replyLine(command, agent: agent) == returnLine(expected), sourceLocation: sourceLocation)
}

func expectError(_ command: String, _ desc: String, agent: GAState, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(replyLine(command, agent: agent) == errorLine(desc), sourceLocation: sourceLocation)
}

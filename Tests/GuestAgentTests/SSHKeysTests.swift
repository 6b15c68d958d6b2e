import Glibc
import Testing
@testable import GuestAgent

/// guest-ssh-*-authorized-keys for users of a fixture machine's /etc/passwd,
/// whose homes are in the fixture: the files before and after every case, with
/// their owners and modes.
@Suite struct SSHKeysTests {
    static let uid: uid_t = 4321
    static let gid: gid_t = 8765

    /// A machine with users alice (home /home/alice, existing) and nohome
    /// (home /home/nohome, missing).
    static func machine() throws -> FixtureTree {
        let machine = try FixtureTree()
        try machine.file("/etc/passwd", """
            root:x:0:0:root:/root:/bin/sh
            alice:x:\(uid):\(gid):Alice:/home/alice:/bin/sh
            nohome:x:1001:1001::/home/nohome:/bin/sh
            slash:x:1002:1002::/home/slash/:/bin/sh

            """)
        try machine.directory("/home/alice")
        try machine.directory("/home/slash")
        return machine
    }

    static let keysPath = "/home/alice/.ssh/authorized_keys"

    static func get(_ user: String = "alice") -> String {
        #"{"execute":"guest-ssh-get-authorized-keys","arguments":{"username":"\#(user)"}}"#
    }

    static func add(_ keys: String, user: String = "alice", reset: Bool? = nil) -> String {
        let resetMember = reset.map { #","reset":\#($0)"# } ?? ""
        return #"{"execute":"guest-ssh-add-authorized-keys","arguments":{"username":"\#(user)","keys":[\#(keys)]\#(resetMember)}}"#
    }

    static func remove(_ keys: String, user: String = "alice") -> String {
        #"{"execute":"guest-ssh-remove-authorized-keys","arguments":{"username":"\#(user)","keys":[\#(keys)]}}"#
    }

    static func expectUserFile(_ machine: FixtureTree, _ content: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(readFile(machine.path(keysPath)) == content, sourceLocation: sourceLocation)
        let file = fileMode(machine.path(keysPath))
        #expect(file?.mode == 0o600 && file?.uid == uid && file?.gid == gid, "\(String(describing: file))", sourceLocation: sourceLocation)
    }

    static func keysFile(_ machine: FixtureTree, _ content: String, mode: mode_t = 0o644) throws {
        try machine.directory("/home/alice/.ssh")
        try machine.file(keysPath, content, mode: mode)
    }

    // MARK: get

    @Test func getReturnsTheKeysNewestFirst() throws {
        let machine = try Self.machine()
        try Self.keysFile(machine, "key1\nkey2\n#c\n   key3  ")
        #expect(answer(Self.get(), agent: machine.agent()) == #"{"return": {"keys": ["key3", "key2", "key1"]}}"#)
        try Self.keysFile(machine, "\n  \n\t# indented comment\nssh-ed25519 AAAA x@y\r\nssh-ed25519 AAAA x@y\n\n")
        #expect(answer(Self.get(), agent: machine.agent())
                    == #"{"return": {"keys": ["ssh-ed25519 AAAA x@y", "ssh-ed25519 AAAA x@y"]}}"#)
        try Self.keysFile(machine, "")
        #expect(answer(Self.get(), agent: machine.agent()) == #"{"return": {"keys": []}}"#)
        // Text after a NUL byte is not seen.
        try Self.keysFile(machine, "")
        writeBytes(machine.path(Self.keysPath), Array("a\nb\0\nc".utf8))
        #expect(answer(Self.get(), agent: machine.agent()) == #"{"return": {"keys": ["b", "a"]}}"#)
    }

    @Test func getErrors() throws {
        let machine = try Self.machine()
        let path = machine.path(Self.keysPath)
        #expect(answer(Self.get(), agent: machine.agent())
                    == errorLine("failed to read '\(path)': Failed to open file “\(path)”: No such file or directory"))
        #expect(answer(Self.get("nosuchuser"), agent: machine.agent()) == errorLine("failed to lookup user 'nosuchuser': Success"))
        // Names are matched exactly.
        #expect(answer(Self.get("Alice"), agent: machine.agent()) == errorLine("failed to lookup user 'Alice': Success"))
        #expect(answer(Self.get(""), agent: machine.agent()) == errorLine("failed to lookup user '': Success"))
    }

    // MARK: remove

    @Test func removeFromNoFileCreatesNothing() throws {
        let machine = try Self.machine()
        #expect(answer(Self.remove(#""k""#), agent: machine.agent()) == emptyReturn)
        #expect(access(machine.path("/home/alice/.ssh"), F_OK) != 0)
        #expect(answer(Self.remove(#""k""#, user: "nohome"), agent: machine.agent()) == emptyReturn)
    }

    @Test func removeFromAnUnreadableFile() throws {
        let machine = try Self.machine()
        try machine.directory(Self.keysPath)
        let path = machine.path(Self.keysPath)
        #expect(answer(Self.remove(#""k""#), agent: machine.agent())
                    == errorLine("failed to read '\(path)': Error reading file “\(path)”: Is a directory"))
    }
}

func directoryNames(_ path: String) throws -> [String] {
    guard let directory = opendir(path) else { throw SystemError(errno: errno) }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}

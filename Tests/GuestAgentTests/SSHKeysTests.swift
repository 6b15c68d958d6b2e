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

    // MARK: add

    @Test func theFirstAddCreatesDirectoryAndFile() throws {
        let machine = try Self.machine()
        #expect(answer(Self.add(#""ssh-rsa AAAA1 one@x""#), agent: machine.agent()) == emptyReturn)
        let directory = fileMode(machine.path("/home/alice/.ssh"))
        #expect(directory?.mode == 0o700 && directory?.uid == Self.uid && directory?.gid == Self.gid, "\(String(describing: directory))")
        // No newline is added.
        Self.expectUserFile(machine, "ssh-rsa AAAA1 one@x")
        #expect(answer(Self.add(#""ssh-rsa AAAA2 two@x","ssh-rsa AAAA1 one@x""#), agent: machine.agent()) == emptyReturn)
        Self.expectUserFile(machine, "ssh-rsa AAAA1 one@x\nssh-rsa AAAA2 two@x")
        #expect(answer(Self.get(), agent: machine.agent()) == #"{"return": {"keys": ["ssh-rsa AAAA2 two@x", "ssh-rsa AAAA1 one@x"]}}"#)
    }

    /// Existing lines stay verbatim, the empty element after a final
    /// newline included; only exactly equal lines count as present.
    @Test func addKeepsTheFileVerbatim() throws {
        let machine = try Self.machine()
        try Self.keysFile(machine, "# mine\nssh-rsa AAAA3 three  \n\n")
        #expect(answer(Self.add(#""ssh-rsa AAAA4 four","ssh-rsa AAAA3 three","ssh-rsa AAAA3 three  ","ssh-rsa AAAA4 four""#),
                       agent: machine.agent()) == emptyReturn)
        Self.expectUserFile(machine, "# mine\nssh-rsa AAAA3 three  \n\n\nssh-rsa AAAA4 four\nssh-rsa AAAA3 three")
        // Anything but a comment or a newline is a key, the empty one too.
        #expect(answer(Self.add(#""", "not really a key""#), agent: machine.agent()) == emptyReturn)
        Self.expectUserFile(machine, "# mine\nssh-rsa AAAA3 three  \n\n\nssh-rsa AAAA4 four\nssh-rsa AAAA3 three\nnot really a key")
    }

    /// Owner and mode are set on every write, whatever they were.
    @Test func everyWriteMakesTheFileTheUsers() throws {
        let machine = try Self.machine()
        try Self.keysFile(machine, "k1\n", mode: 0o666)
        chown(machine.path(Self.keysPath), 0, 0)
        #expect(fileMode(machine.path(Self.keysPath))?.mode == 0o666)
        #expect(answer(Self.add(#""k1""#), agent: machine.agent()) == emptyReturn)
        Self.expectUserFile(machine, "k1\n")
        // An existing .ssh is left as it is.
        chmod(machine.path("/home/alice/.ssh"), 0o755)
        #expect(answer(Self.add(#""k2""#), agent: machine.agent()) == emptyReturn)
        #expect(fileMode(machine.path("/home/alice/.ssh"))?.mode == 0o755)
        #expect(fileMode(machine.path("/home/alice/.ssh"))?.uid == 0)
        Self.expectUserFile(machine, "k1\n\nk2")
    }

    /// The file is replaced (GLib's temporary file and rename): a symbolic
    /// link becomes a file of its own; nothing else is left behind.
    @Test func theFileIsReplacedAtomically() throws {
        let machine = try Self.machine()
        try machine.directory("/home/alice/.ssh")
        try machine.file("/elsewhere", "k0")
        symlink(machine.path("/elsewhere"), machine.path(Self.keysPath))
        #expect(answer(Self.add(#""k1""#), agent: machine.agent()) == emptyReturn)
        var info = stat()
        #expect(lstat(machine.path(Self.keysPath), &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG)
        Self.expectUserFile(machine, "k0\nk1")
        #expect(readFile(machine.path("/elsewhere")) == "k0")
        #expect(try directoryNames(machine.path("/home/alice/.ssh")) == ["authorized_keys"])
    }

    @Test func resetReplacesTheKeys() throws {
        let machine = try Self.machine()
        try Self.keysFile(machine, "old1\nold2\n")
        #expect(answer(Self.add(#""new1","new2","new1""#, reset: true), agent: machine.agent()) == emptyReturn)
        Self.expectUserFile(machine, "new1\nnew2")
        #expect(answer(Self.add("", reset: false), agent: machine.agent()) == emptyReturn)
        Self.expectUserFile(machine, "new1\nnew2")
        #expect(answer(Self.add("", reset: true), agent: machine.agent()) == emptyReturn)
        Self.expectUserFile(machine, "")
    }

    /// An unreadable file counts as empty; a missing home is not created.
    @Test func addWithoutAUsableFile() throws {
        let machine = try Self.machine()
        #expect(answer(Self.add(#""k""#, user: "nohome"), agent: machine.agent())
                    == errorLine("failed to create directory '\(machine.path("/home/nohome/.ssh"))': No such file or directory"))
        #expect(access(machine.path("/home/nohome"), F_OK) != 0)
        // A home given with a trailing slash: one separator.
        #expect(answer(Self.add(#""k""#, user: "slash"), agent: machine.agent()) == emptyReturn)
        #expect(readFile(machine.path("/home/slash/.ssh/authorized_keys")) == "k")
        // `.ssh` is a file: not a directory, so mkdir is tried.
        try machine.file("/home/alice/.ssh", "")
        #expect(answer(Self.add(#""k""#), agent: machine.agent())
                    == errorLine("failed to create directory '\(machine.path("/home/alice/.ssh"))': File exists"))
    }

    @Test func keysAreCheckedBeforeTheUser() throws {
        let machine = try Self.machine()
        let agent = machine.agent()
        #expect(answer(Self.add(##""ok","#comment""##, user: "nosuchuser"), agent: agent) == errorLine("invalid OpenSSH public key: '#comment'"))
        #expect(answer(Self.add(#""a\nb""#), agent: agent) == errorLine("invalid OpenSSH public key: 'a\nb'"))
        #expect(answer(Self.remove(##""x","# y""##, user: "nosuchuser"), agent: agent) == errorLine("invalid OpenSSH public key: '# y'"))
        #expect(answer(Self.add(#""ok""#, user: "nosuchuser"), agent: agent) == errorLine("failed to lookup user 'nosuchuser': Success"))
        #expect(answer(Self.remove(#""ok""#, user: "nosuchuser"), agent: agent) == errorLine("failed to lookup user 'nosuchuser': Success"))
        // A key with a # later on is fine.
        #expect(answer(Self.add(#""ssh-rsa AAAA #1""#), agent: agent) == emptyReturn)
        #expect(access(machine.path("/home/alice/.ssh"), F_OK) == 0)
    }

    // MARK: remove

    @Test func removeDropsEveryEqualLine() throws {
        let machine = try Self.machine()
        try Self.keysFile(machine, "algo key1 comments\nalgo key1 comments\n# a commented line\nalgo some-key another\n  algo key1 comments\n")
        #expect(answer(Self.remove(#""algo key2 comments""#), agent: machine.agent()) == emptyReturn)
        Self.expectUserFile(machine, "algo key1 comments\nalgo key1 comments\n# a commented line\nalgo some-key another\n  algo key1 comments\n")
        #expect(answer(Self.remove(#""algo key1 comments","algo key2""#), agent: machine.agent()) == emptyReturn)
        Self.expectUserFile(machine, "# a commented line\nalgo some-key another\n  algo key1 comments\n")
        // An empty key removes the empty lines.
        #expect(answer(Self.remove(#""""#), agent: machine.agent()) == emptyReturn)
        Self.expectUserFile(machine, "# a commented line\nalgo some-key another\n  algo key1 comments")
    }

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

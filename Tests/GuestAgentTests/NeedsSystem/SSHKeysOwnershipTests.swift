import Glibc
import Testing
import TestRequirements
@testable import GuestAgent

extension NeedsSystem {
    /// guest-ssh-*-authorized-keys writing a user's files: as root, so that
    /// the files and directories can be given to the user (chown).
    @Suite struct SSHKeysOwnershipTests {
        private typealias Keys = SSHKeysTests

        // MARK: add

        @Test func theFirstAddCreatesDirectoryAndFile() throws {
            let machine = try Keys.machine()
            #expect(answer(Keys.add(#""ssh-rsa AAAA1 one@x""#), agent: machine.agent()) == emptyReturn)
            let directory = fileMode(machine.path("/home/alice/.ssh"))
            #expect(directory?.mode == 0o700 && directory?.uid == Keys.uid && directory?.gid == Keys.gid, "\(String(describing: directory))")
            // No newline is added.
            Keys.expectUserFile(machine, "ssh-rsa AAAA1 one@x")
            #expect(answer(Keys.add(#""ssh-rsa AAAA2 two@x","ssh-rsa AAAA1 one@x""#), agent: machine.agent()) == emptyReturn)
            Keys.expectUserFile(machine, "ssh-rsa AAAA1 one@x\nssh-rsa AAAA2 two@x")
            #expect(answer(Keys.get(), agent: machine.agent()) == #"{"return": {"keys": ["ssh-rsa AAAA2 two@x", "ssh-rsa AAAA1 one@x"]}}"#)
        }

        /// Existing lines stay verbatim, the empty element after a final
        /// newline included; only exactly equal lines count as present.
        @Test func addKeepsTheFileVerbatim() throws {
            let machine = try Keys.machine()
            try Keys.keysFile(machine, "# mine\nssh-rsa AAAA3 three  \n\n")
            #expect(answer(Keys.add(#""ssh-rsa AAAA4 four","ssh-rsa AAAA3 three","ssh-rsa AAAA3 three  ","ssh-rsa AAAA4 four""#),
                           agent: machine.agent()) == emptyReturn)
            Keys.expectUserFile(machine, "# mine\nssh-rsa AAAA3 three  \n\n\nssh-rsa AAAA4 four\nssh-rsa AAAA3 three")
            // Anything but a comment or a newline is a key, the empty one too.
            #expect(answer(Keys.add(#""", "not really a key""#), agent: machine.agent()) == emptyReturn)
            Keys.expectUserFile(machine, "# mine\nssh-rsa AAAA3 three  \n\n\nssh-rsa AAAA4 four\nssh-rsa AAAA3 three\nnot really a key")
        }

        /// Owner and mode are set on every write, whatever they were.
        @Test func everyWriteMakesTheFileTheUsers() throws {
            let machine = try Keys.machine()
            try Keys.keysFile(machine, "k1\n", mode: 0o666)
            chown(machine.path(Keys.keysPath), 0, 0)
            #expect(fileMode(machine.path(Keys.keysPath))?.mode == 0o666)
            #expect(answer(Keys.add(#""k1""#), agent: machine.agent()) == emptyReturn)
            Keys.expectUserFile(machine, "k1\n")
            // An existing .ssh is left as it is.
            chmod(machine.path("/home/alice/.ssh"), 0o755)
            #expect(answer(Keys.add(#""k2""#), agent: machine.agent()) == emptyReturn)
            #expect(fileMode(machine.path("/home/alice/.ssh"))?.mode == 0o755)
            #expect(fileMode(machine.path("/home/alice/.ssh"))?.uid == 0)
            Keys.expectUserFile(machine, "k1\n\nk2")
        }

        /// The file is replaced (GLib's temporary file and rename): a symbolic
        /// link becomes a file of its own; nothing else is left behind.
        @Test func theFileIsReplacedAtomically() throws {
            let machine = try Keys.machine()
            try machine.directory("/home/alice/.ssh")
            try machine.file("/elsewhere", "k0")
            symlink(machine.path("/elsewhere"), machine.path(Keys.keysPath))
            #expect(answer(Keys.add(#""k1""#), agent: machine.agent()) == emptyReturn)
            var info = stat()
            #expect(lstat(machine.path(Keys.keysPath), &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG)
            Keys.expectUserFile(machine, "k0\nk1")
            #expect(readFile(machine.path("/elsewhere")) == "k0")
            #expect(try directoryNames(machine.path("/home/alice/.ssh")) == ["authorized_keys"])
        }

        @Test func resetReplacesTheKeys() throws {
            let machine = try Keys.machine()
            try Keys.keysFile(machine, "old1\nold2\n")
            #expect(answer(Keys.add(#""new1","new2","new1""#, reset: true), agent: machine.agent()) == emptyReturn)
            Keys.expectUserFile(machine, "new1\nnew2")
            #expect(answer(Keys.add("", reset: false), agent: machine.agent()) == emptyReturn)
            Keys.expectUserFile(machine, "new1\nnew2")
            #expect(answer(Keys.add("", reset: true), agent: machine.agent()) == emptyReturn)
            Keys.expectUserFile(machine, "")
        }

        /// An unreadable file counts as empty; a missing home is not created.
        @Test func addWithoutAUsableFile() throws {
            let machine = try Keys.machine()
            #expect(answer(Keys.add(#""k""#, user: "nohome"), agent: machine.agent())
                        == errorLine("failed to create directory '\(machine.path("/home/nohome/.ssh"))': No such file or directory"))
            #expect(access(machine.path("/home/nohome"), F_OK) != 0)
            // A home given with a trailing slash: one separator.
            #expect(answer(Keys.add(#""k""#, user: "slash"), agent: machine.agent()) == emptyReturn)
            #expect(readFile(machine.path("/home/slash/.ssh/authorized_keys")) == "k")
            // `.ssh` is a file: not a directory, so mkdir is tried.
            try machine.file("/home/alice/.ssh", "")
            #expect(answer(Keys.add(#""k""#), agent: machine.agent())
                        == errorLine("failed to create directory '\(machine.path("/home/alice/.ssh"))': File exists"))
        }

        @Test func keysAreCheckedBeforeTheUser() throws {
            let machine = try Keys.machine()
            let agent = machine.agent()
            #expect(answer(Keys.add(##""ok","#comment""##, user: "nosuchuser"), agent: agent) == errorLine("invalid OpenSSH public key: '#comment'"))
            #expect(answer(Keys.add(#""a\nb""#), agent: agent) == errorLine("invalid OpenSSH public key: 'a\nb'"))
            #expect(answer(Keys.remove(##""x","# y""##, user: "nosuchuser"), agent: agent) == errorLine("invalid OpenSSH public key: '# y'"))
            #expect(answer(Keys.add(#""ok""#, user: "nosuchuser"), agent: agent) == errorLine("failed to lookup user 'nosuchuser': Success"))
            #expect(answer(Keys.remove(#""ok""#, user: "nosuchuser"), agent: agent) == errorLine("failed to lookup user 'nosuchuser': Success"))
            // A key with a # later on is fine.
            #expect(answer(Keys.add(#""ssh-rsa AAAA #1""#), agent: agent) == emptyReturn)
            #expect(access(machine.path("/home/alice/.ssh"), F_OK) == 0)
        }

        // MARK: remove

        @Test func removeDropsEveryEqualLine() throws {
            let machine = try Keys.machine()
            try Keys.keysFile(machine, "algo key1 comments\nalgo key1 comments\n# a commented line\nalgo some-key another\n  algo key1 comments\n")
            #expect(answer(Keys.remove(#""algo key2 comments""#), agent: machine.agent()) == emptyReturn)
            Keys.expectUserFile(machine, "algo key1 comments\nalgo key1 comments\n# a commented line\nalgo some-key another\n  algo key1 comments\n")
            #expect(answer(Keys.remove(#""algo key1 comments","algo key2""#), agent: machine.agent()) == emptyReturn)
            Keys.expectUserFile(machine, "# a commented line\nalgo some-key another\n  algo key1 comments\n")
            // An empty key removes the empty lines.
            #expect(answer(Keys.remove(#""""#), agent: machine.agent()) == emptyReturn)
            Keys.expectUserFile(machine, "# a commented line\nalgo some-key another\n  algo key1 comments")
        }
    }
}

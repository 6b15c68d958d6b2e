import Testing
@testable import GuestAgent

/// guest-set-user-password with a fake chpasswd (found through PATH inside
/// the fixture machine).
@Suite struct UserPasswordTests {
    static func request(_ username: String, _ password: String, crypted: Bool) -> String {
        #"{"execute":"guest-set-user-password","arguments":{"username":"\#(username)","password":"\#(password)","crypted":\#(crypted)}}"#
    }

    @Test func chpasswdGetsTheLineOnStdin() throws {
        let machine = try FixtureTree()
        try machine.fake("/usr/sbin/chpasswd", input: true)
        let agent = machine.agent()
        // "s3cret pass"
        #expect(answer(Self.request("alice", "czNjcmV0IHBhc3M=", crypted: false), agent: agent) == emptyReturn)
        // "$6$salt$hash", with GLib's lenient decoding of a newline inside.
        #expect(answer(Self.request("bob", "JDYk\\nc2FsdCRoYXNo", crypted: true), agent: agent) == emptyReturn)
        // A NUL byte ends the password (a C string): "ab\0cd".
        #expect(answer(Self.request("carol", "YWIAY2Q=", crypted: false), agent: agent) == emptyReturn)
        #expect(machine.calls == [
            "chpasswd", "chpasswd stdin: alice:s3cret pass",
            "chpasswd -e", "chpasswd stdin: bob:$6$salt$hash",
            "chpasswd", "chpasswd stdin: carol:ab",
        ])
    }

    @Test func refusedBeforeChpasswdRuns() throws {
        let machine = try FixtureTree()
        try machine.fake("/usr/sbin/chpasswd", input: true)
        let agent = machine.agent()
        let cases = [
            (Self.request("alice", "*", crypted: false), "Base64 data contains invalid characters"),
            // "a\nb"
            (Self.request("alice", "YQpi", crypted: false), "forbidden characters in raw password"),
            (Self.request("al:ice", "YQ==", crypted: false), "forbidden characters in username"),
            (Self.request("al\\nice", "YQ==", crypted: false), "forbidden characters in username"),
            (Self.request("alice\\r\\n", "YQ==", crypted: true), "forbidden characters in username"),
            // The password is checked first.
            (Self.request("a:b", "YQpi", crypted: false), "forbidden characters in raw password"),
        ]
        for (request, text) in cases {
            #expect(answer(request, agent: agent) == errorLine(text), "\(request)")
        }
        #expect(machine.calls.isEmpty)
    }

    @Test func chpasswdsComplaintIsTheError() throws {
        let machine = try FixtureTree()
        // It reads its input before it complains, as chpasswd does: a fake
        // that exits first races the agent's write (EPIPE under TSan's load).
        try machine.fake("/usr/sbin/chpasswd", status: 1, output: "chpasswd: line 1: user nobody2 does not exist\nchpasswd: error detected, changes ignored\n",
                         input: true)
        #expect(answer(Self.request("nobody2", "eA==", crypted: false), agent: machine.agent())
                    == errorLine("child process has failed to set user password: chpasswd: line 1: user nobody2 does not exist\nchpasswd: error detected, changes ignored\n"))
        let missing = try FixtureTree()
        #expect(answer(Self.request("x", "eA==", crypted: false), agent: missing.agent())
                    == errorLine("child process has failed to set user password: failed to exec 'chpasswd': No such file or directory\n"))
    }
}

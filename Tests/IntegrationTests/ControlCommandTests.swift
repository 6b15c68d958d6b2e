#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
import TestRequirements

/// The built agent's power, clock, password and SSH-key commands on a
/// fixture machine (QGA_SYSTEM_ROOT) with fake programs: which program ran
/// with which arguments and input, and the reply, or none.
@Suite("Control: shutdown, suspend, set-time, passwords and SSH keys of a fixture machine")
struct ControlCommandTests {
    @Test("guest-shutdown runs /sbin/poweroff, /sbin/halt or /sbin/reboot and answers nothing")
    func shutdown() throws {
        let fixture = try FixtureRoot()
        for name in ["poweroff", "halt", "reboot", "shutdown"] { try fixture.fake("/sbin/" + name) }
        try withFixtureAgent(fixture) { agent throws in
            try agent.expectNoReply(#"{"execute":"guest-shutdown"}"#)
            try agent.expectNoReply(#"{"execute":"guest-shutdown","arguments":{"mode":"halt"},"id":1}"#)
            try agent.expectNoReply(#"{"execute":"guest-shutdown","arguments":{"mode":"reboot"}}"#)
            #expect(fixture.calls == ["poweroff", "halt", "reboot"])
        }
    }

    @Test("guest-suspend-*: systemd, then pm-utils, then /sys/power/state; nothing answered on success")
    func suspend() throws {
        let fixture = try FixtureRoot()
        try fixture.program("/usr/bin/systemctl", """
            echo "systemctl $*" >> '\(fixture.path("/calls"))'
            [ "$1 $2" = "status systemd-suspend" ] && exit 3
            [ "$1" = status ] && exit 4
            exit 0
            """)
        try fixture.fake("/usr/sbin/pm-is-supported")
        try fixture.fake("/usr/sbin/pm-hibernate")
        try fixture.write("/sys/power/state", "freeze mem disk\n")
        try withFixtureAgent(fixture) { agent throws in
            try agent.expectNoReply(#"{"execute":"guest-suspend-ram"}"#)
            try agent.expectNoReply(#"{"execute":"guest-suspend-disk"}"#)
            #expect(fixture.calls == [
                "systemctl status systemd-suspend", "systemctl suspend",
                "systemctl status systemd-hibernate", "pm-is-supported --hibernate", "pm-hibernate",
            ])
            try fixture.fake("/usr/sbin/pm-is-supported", status: 1)
            #expect(try agent.ask(#"{"execute":"guest-suspend-hybrid"}"#)
                        == Reply.error("the requested suspend mode is not supported by the guest"))
            try agent.expectNoReply(#"{"execute":"guest-suspend-disk"}"#)
            #expect(String(decoding: readFile(fixture.path("/sys/power/state")) ?? [], as: UTF8.self) == "diskze mem disk\n")
        }
    }

    /// Better than 7.2: when the strategy that claimed support fails and
    /// none after it can act, the host hears about it.
    @Test("guest-suspend-*: a failed strategy with nothing after it is answered (qemu-ga stays silent)")
    func suspendFailure() throws {
        let fixture = try FixtureRoot()
        try fixture.program("/usr/bin/systemctl", "[ \"$1\" = status ] && exit 3; exit 1")
        try withFixtureAgent(fixture) { agent throws in
            #expect(try agent.ask(#"{"execute":"guest-suspend-ram"}"#)
                        == Reply.error("the helper program 'systemctl suspend' returned an unexpected exit status code (1)"))
        }
    }

    @Test("guest-set-time: the fixture's clock, then hwclock -w; without a time, hwclock -s")
    func setTime() throws {
        let fixture = try FixtureRoot()
        try fixture.fake("/sbin/hwclock")
        try withFixtureAgent(fixture) { agent throws in
            #expect(try agent.ask(#"{"execute":"guest-set-time","arguments":{"time":1700000000987654321}}"#) == Reply.pong)
            #expect(readFile(fixture.path("/settimeofday")) == Bytes("1700000000 987654\n".utf8))
            #expect(try agent.ask(#"{"execute":"guest-set-time"}"#) == Reply.pong)
            #expect(fixture.calls == ["hwclock -w", "hwclock -s"])
            #expect(try agent.ask(#"{"execute":"guest-set-time","arguments":{"time":4102444800000000000}}"#) == Reply.error("Invalid time"))
            try fixture.fake("/sbin/hwclock", status: 1)
            #expect(try agent.ask(#"{"execute":"guest-set-time"}"#)
                        == Reply.error("child process has failed to set hardware clock to system time: exit status 1"))
        }
    }

    @Test("guest-set-user-password: chpasswd from PATH gets `user:password` on stdin, -e when crypted")
    func setUserPassword() throws {
        let fixture = try FixtureRoot()
        try fixture.fake("/usr/sbin/chpasswd", input: true)
        try withFixtureAgent(fixture) { agent throws in
            let request = { (user: String, password: String, crypted: Bool) in
                #"{"execute":"guest-set-user-password","arguments":{"username":"\#(user)","password":"\#(password)","crypted":\#(crypted)}}"#
            }
            #expect(try agent.ask(request("alice", "b3BlbiBzZXNhbWU=", false)) == Reply.pong)
            #expect(try agent.ask(request("bob", "JDYkeHl6JGFiYw==", true)) == Reply.pong)
            #expect(fixture.calls == ["chpasswd", "chpasswd stdin: alice:open sesame", "chpasswd -e", "chpasswd stdin: bob:$6$xyz$abc"])
        }
    }

}

extension NeedsSystem {
    /// The control command tests that need root: a private /dev/log (the
    /// syslog launcher), and chown for a user's SSH keys.
    @Suite("Control: as root (syslog records, the owner of SSH keys)") struct ControlCommandTestsNeedingSystem {
        @Test("guest-shutdown falls back to /sbin/shutdown -h FLAG +0 and answers its failure")
        func shutdownFallback() throws {
            let fixture = try FixtureRoot()
            try fixture.fake("/sbin/shutdown")
            var listener: SyslogListener?
            let agent = try fixtureAgent(fixture, prepare: { directory in
                listener = try SyslogListener(path: directory + "/syslog.sock")
            }, launcher: syslogLauncher)
            defer { agent.finish() }
            try agent.expectNoReply(#"{"execute":"guest-shutdown","arguments":{"mode":"powerdown"}}"#)
            try agent.expectNoReply(#"{"execute":"guest-shutdown"}"#)
            #expect(fixture.calls == ["shutdown -h -P +0 hypervisor initiated shutdown", "shutdown -h -P +0 hypervisor initiated shutdown"])
            try fixture.program("/sbin/shutdown", "echo Failed to connect to bus >&2; exit 1")
            #expect(try agent.ask(#"{"execute":"guest-shutdown","arguments":{"mode":"reboot"},"id":"r"}"#)
                        == #"{"id": "r", "error": {"class": "GenericError", "desc": "child process has failed to shutdown: Failed to connect to bus\n"}}"# + "\n")
            // (expectNoReply's pings in between)
            #expect(listener?.drain().compactMap { SyslogRecord($0)?.message } == [
                "info: guest-shutdown called, mode: powerdown", "info: guest-ping called",
                "info: guest-shutdown called, mode: (null)", "info: guest-ping called", "info: guest-shutdown called, mode: reboot",
            ])
        }

        @Test("guest-ssh-*: the fixture's passwd and home; file 0600 and .ssh 0700, both the user's")
        func sshKeys() throws {
            let fixture = try FixtureRoot()
            try fixture.write("/etc/passwd", "carol:x:2345:3456::/home/carol:/bin/sh\n")
            try makeDirectory(fixture.path("/home/carol"))
            try withFixtureAgent(fixture) { agent throws in
                let add = #"{"execute":"guest-ssh-add-authorized-keys","arguments":{"username":"carol","keys":["ssh-ed25519 AAAA1 a","ssh-ed25519 AAAA2 b"]}}"#
                #expect(try agent.ask(add) == Reply.pong)
                #expect(try agent.ask(#"{"execute":"guest-ssh-get-authorized-keys","arguments":{"username":"carol"}}"#)
                            == Reply.return(#"{"keys": ["ssh-ed25519 AAAA2 b", "ssh-ed25519 AAAA1 a"]}"#))
                #expect(try agent.ask(#"{"execute":"guest-ssh-remove-authorized-keys","arguments":{"username":"carol","keys":["ssh-ed25519 AAAA1 a"]}}"#)
                            == Reply.pong)
                let file = fixture.path("/home/carol/.ssh/authorized_keys")
                #expect(readFile(file) == Bytes("ssh-ed25519 AAAA2 b".utf8))
                var info = stat()
                #expect(stat(file, &info) == 0 && info.st_mode & 0o7777 == 0o600 && info.st_uid == 2345 && info.st_gid == 3456)
                #expect(stat(fixture.path("/home/carol/.ssh"), &info) == 0 && info.st_mode & 0o7777 == 0o700 && info.st_uid == 2345)
                #expect(try agent.ask(#"{"execute":"guest-ssh-get-authorized-keys","arguments":{"username":"root"}}"#)
                            == Reply.error("failed to lookup user 'root': Success"))
            }
        }
    }
}

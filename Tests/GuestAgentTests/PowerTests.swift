import Glibc
import Testing
@testable import GuestAgent

/// guest-shutdown and guest-suspend-* against fake programs of a fixture
/// machine: which program runs with which arguments, and the reply or none.
@Suite struct ShutdownTests {
    @Test(arguments: [
        (#"{"execute":"guest-shutdown"}"#, "poweroff"),
        (#"{"execute":"guest-shutdown","arguments":{"mode":"powerdown"}}"#, "poweroff"),
        (#"{"execute":"guest-shutdown","arguments":{"mode":"halt"}}"#, "halt"),
        (#"{"execute":"guest-shutdown","arguments":{"mode":"reboot"}}"#, "reboot"),
    ])
    func theModesOwnProgramRunsWithoutArguments(request: String, program: String) throws {
        let machine = try FixtureTree()
        for name in ["poweroff", "halt", "reboot", "shutdown"] { try machine.fake("/sbin/" + name) }
        #expect(answer(request, agent: machine.agent()) == nil)
        #expect(machine.calls == [program])
    }

    @Test(arguments: [
        (nil, "shutdown -h -P +0 hypervisor initiated shutdown"),
        ("powerdown", "shutdown -h -P +0 hypervisor initiated shutdown"),
        ("halt", "shutdown -h -H +0 hypervisor initiated shutdown"),
        ("reboot", "shutdown -h -r +0 hypervisor initiated shutdown"),
    ] as [(String?, String)])
    func withoutItShutdownRuns(mode: String?, call: String) throws {
        let machine = try FixtureTree()
        try machine.fake("/sbin/shutdown")
        // Not executable: not used.
        for name in ["poweroff", "halt", "reboot"] { try machine.file("/sbin/" + name, "") }
        let request = mode.map { #"{"execute":"guest-shutdown","arguments":{"mode":"\#($0)"}}"# } ?? #"{"execute":"guest-shutdown"}"#
        #expect(answer(request, agent: machine.agent()) == nil)
        #expect(machine.calls == [call])
    }

    /// The one argument of shutdown is one argv element, spaces and all.
    @Test func theMessageIsOneArgument() throws {
        let machine = try FixtureTree()
        try machine.program("/sbin/shutdown", #"[ $# = 4 ] && [ "$4" = "hypervisor initiated shutdown" ] || exit 9"#)
        #expect(answer(#"{"execute":"guest-shutdown"}"#, agent: machine.agent()) == nil)
    }

    @Test func failuresAreAnswered() throws {
        let machine = try FixtureTree()
        try machine.fake("/sbin/poweroff", status: 1, output: "Failed to talk to init daemon.\n")
        try machine.fake("/sbin/shutdown", status: 2)
        let agent = machine.agent()
        #expect(answer(#"{"execute":"guest-shutdown","id":4}"#, agent: agent)
                    == #"{"id": 4, "error": {"class": "GenericError", "desc": "child process has failed to shutdown: Failed to talk to init daemon.\n"}}"#)
        #expect(answer(#"{"execute":"guest-shutdown","arguments":{"mode":"halt"}}"#, agent: agent)
                    == errorLine("child process has failed to shutdown: exit status 2"))
        let empty = try FixtureTree()
        #expect(answer(#"{"execute":"guest-shutdown","arguments":{"mode":"reboot"}}"#, agent: empty.agent())
                    == errorLine("child process has failed to shutdown: failed to exec '/sbin/shutdown': No such file or directory\n"))
    }

    @Test(arguments: ["", "Halt", "poweroff", "reboot "])
    func anUnknownModeRunsNothing(mode: String) throws {
        let machine = try FixtureTree()
        for name in ["poweroff", "halt", "reboot", "shutdown"] { try machine.fake("/sbin/" + name) }
        #expect(answer(#"{"execute":"guest-shutdown","arguments":{"mode":"\#(mode)"}}"#, agent: machine.agent())
                    == errorLine("mode is invalid (valid values are: halt|powerdown|reboot"))
        #expect(machine.calls.isEmpty)
    }
}

@Suite struct SuspendTests {
    static let requests: [(String, SuspendMode)] = [
        (#"{"execute":"guest-suspend-disk"}"#, .disk),
        (#"{"execute":"guest-suspend-ram"}"#, .ram),
        (#"{"execute":"guest-suspend-hybrid"}"#, .hybrid),
    ]

    static func request(_ mode: SuspendMode) -> String { requests.first { $0.1 == mode }!.0 }

    /// `systemctl` that answers `status` with `statusCode` and the action with `actionCode`.
    static func systemctl(_ machine: FixtureTree, status statusCode: Int32, action actionCode: Int32) throws {
        let log = machine.path("/calls")
        try machine.program("/usr/bin/systemctl", """
            echo "systemctl $*" >> '\(log)'
            [ "$1" = status ] && exit \(statusCode)
            exit \(actionCode)
            """)
    }

    @Test(arguments: [SuspendMode.disk, .ram, .hybrid], [1, 2, 3] as [Int32])
    func systemdFirst(mode: SuspendMode, status: Int32) throws {
        let machine = try FixtureTree()
        try Self.systemctl(machine, status: status, action: 0)
        try machine.fake("/usr/bin/pm-is-supported")
        #expect(answer(Self.request(mode), agent: machine.agent()) == nil)
        #expect(machine.calls == ["systemctl status \(mode.systemdService)", "systemctl \(mode.systemctlVerb)"])
    }

    /// systemctl status 0 or 4+: not this way; pm-utils next.
    @Test(arguments: [SuspendMode.disk, .ram, .hybrid], [0, 4, 5] as [Int32])
    func thenPmUtils(mode: SuspendMode, status: Int32) throws {
        let machine = try FixtureTree()
        try Self.systemctl(machine, status: status, action: 0)
        try machine.fake("/usr/sbin/pm-is-supported")
        try machine.fake("/usr/sbin/" + mode.pmUtilsProgram)
        #expect(answer(Self.request(mode), agent: machine.agent()) == nil)
        #expect(machine.calls == ["systemctl status \(mode.systemdService)", "pm-is-supported \(mode.pmUtilsOption)", mode.pmUtilsProgram])
    }

    /// Without systemd and pm-utils, the state is written to /sys/power/state.
    @Test(arguments: [(SuspendMode.disk, "disk"), (.ram, "mem")])
    func thenSysfs(mode: SuspendMode, state: String) throws {
        let machine = try FixtureTree()
        try machine.file("/sys/power/state", "freeze mem disk\n")
        #expect(answer(Self.request(mode), agent: machine.agent()) == nil)
        // Written at the start, not truncated (sysfs files need neither).
        #expect(readFile(machine.path("/sys/power/state")) == state + "freeze mem disk\n".dropFirst(state.count))
    }

    @Test func nothingSupportedIsAnError() throws {
        let machine = try FixtureTree()
        try Self.systemctl(machine, status: 4, action: 0)
        try machine.fake("/usr/bin/pm-is-supported", status: 1)
        try machine.file("/sys/power/state", "freeze\n")
        for (request, _) in Self.requests {
            #expect(answer(request, agent: machine.agent()) == errorLine("the requested suspend mode is not supported by the guest"))
        }
        // No helper, no state file at all: the same.
        let bare = try FixtureTree()
        for (request, _) in Self.requests {
            #expect(answer(request, agent: bare.agent()) == errorLine("the requested suspend mode is not supported by the guest"))
        }
        #expect(!machine.calls.contains { !$0.hasPrefix("systemctl status") && !$0.hasPrefix("pm-is-supported") })
    }

    /// Hybrid has no sysfs form: once something claimed support and failed,
    /// qemu-ga's sysfs probe says "unknown guest suspend mode".
    @Test func hybridAfterAFailedStrategy() throws {
        let machine = try FixtureTree()
        try Self.systemctl(machine, status: 3, action: 1)
        #expect(answer(#"{"execute":"guest-suspend-hybrid"}"#, agent: machine.agent()) == errorLine("unknown guest suspend mode"))
        #expect(machine.calls == ["systemctl status systemd-hybrid-sleep", "systemctl hybrid-sleep"])
    }

    /// A failed systemd action falls through to pm-utils, then to sysfs.
    @Test func failuresFallThrough() throws {
        let machine = try FixtureTree()
        try Self.systemctl(machine, status: 3, action: 1)
        try machine.fake("/usr/bin/pm-is-supported")
        try machine.fake("/usr/bin/pm-suspend", status: 1)
        try machine.file("/sys/power/state", "mem")
        #expect(answer(#"{"execute":"guest-suspend-ram"}"#, agent: machine.agent()) == nil)
        #expect(machine.calls == ["systemctl status systemd-suspend", "systemctl suspend", "pm-is-supported --suspend", "pm-suspend"])
        #expect(readFile(machine.path("/sys/power/state")) == "mem")
    }

    /// Better than qemu-ga: a strategy that claimed support and failed, with
    /// nothing after it, is an error reply (qemu-ga answers nothing).
    @Test func aFailedStrategyWithNothingAfterItIsAnswered() throws {
        let machine = try FixtureTree()
        try Self.systemctl(machine, status: 3, action: 1)
        #expect(answer(#"{"execute":"guest-suspend-ram"}"#, agent: machine.agent())
                    == errorLine("the helper program 'systemctl suspend' returned an unexpected exit status code (1)"))
        let pm = try FixtureTree()
        try pm.fake("/usr/bin/pm-is-supported")
        try pm.file("/usr/bin/pm-hibernate", "not executable")
        #expect(answer(#"{"execute":"guest-suspend-disk"}"#, agent: pm.agent())
                    == errorLine("failed to create child process, error 'Failed to execute child process “pm-hibernate” (Permission denied)'"))
        let missing = try FixtureTree()
        try missing.fake("/usr/bin/pm-is-supported")
        #expect(answer(#"{"execute":"guest-suspend-disk"}"#, agent: missing.agent())
                    == errorLine("the helper program 'pm-hibernate' was not found"))
    }
}

import Glibc
import Testing
@testable import GuestAgent

/// Frozen mode and the fsfreeze commands against fixture machines whose
/// mount points do not exist: the freeze, thaw and hook paths all run, no
/// filesystem ioctl is ever issued. (The real FIFREEZE/FITHAW on a loop
/// device is in the integration tests.)
@Suite struct FsfreezeTests {
    static let freezeSafe: Set<String> = [
        "guest-ping", "guest-info", "guest-sync", "guest-sync-delimited", "guest-fsfreeze-status", "guest-fsfreeze-thaw",
    ]

    static func expectFrozen(_ agent: GAState, _ frozen: Bool, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(agent.isFrozen == frozen, sourceLocation: sourceLocation)
        #expect(answer(#"{"execute":"guest-fsfreeze-status"}"#, agent: agent)
                    == (frozen ? #"{"return": "frozen"}"# : #"{"return": "thawed"}"#), sourceLocation: sourceLocation)
        #expect((access(agent.frozenMarkerPath, F_OK) == 0) == frozen, "marker", sourceLocation: sourceLocation)
    }

    static func frozenReply(_ command: String, id: Int) -> String {
        #"{"id": \#(id), "error": {"class": "CommandNotFound", "desc": "Command \#(command) has been disabled: the agent is in frozen state"}}"#
    }

    static func notAllowedReply(_ command: String, id: Int) -> String {
        #"{"id": \#(id), "error": {"class": "CommandNotFound", "desc": "Command \#(command) has been disabled: the command is not allowed"}}"#
    }

    /// While frozen the freeze-safe commands run whatever the lists say, so
    /// that a frozen guest can always be asked and thawed; after the thaw
    /// the lists hold again.
    @Test(arguments: [
        (blocked: ["guest-ping", "guest-fsfreeze-thaw", "guest-fsfreeze-status", "guest-get-time"], allowed: [String]()),
        (blocked: [], allowed: ["guest-get-time", "guest-info"]),
    ])
    func freezeSafeCommandsWinOverTheLists(blocked: [String], allowed: [String]) throws {
        let machine = try FixtureTree()
        try machine.file("/proc/self/mountinfo", "")
        let agent = machine.agent({ $0.blockedRPCs = blocked; $0.allowedRPCs = allowed })
        let enabledBefore = agent.commands.entries.map(\.name).filter(agent.commands.isEnabled)
        #expect(!agent.commands.isEnabled("guest-ping"))
        agent.setFrozen()
        for entry in agent.commands.entries {
            #expect(agent.commands.isEnabled(entry.name) == Self.freezeSafe.contains(entry.name), "\(entry.name)")
        }
        #expect(answer(#"{"execute":"guest-ping","id":1}"#, agent: agent) == #"{"return": {}, "id": 1}"#)
        #expect(answer(#"{"execute":"guest-get-time","id":2}"#, agent: agent) == Self.frozenReply("guest-get-time", id: 2))
        let info = try #require(answer(#"{"execute":"guest-info"}"#, agent: agent))
        #expect(info.contains(#"{"enabled": true, "name": "guest-fsfreeze-thaw", "success-response": true}"#))
        #expect(info.contains(#"{"enabled": true, "name": "guest-ping", "success-response": true}"#))
        #expect(info.contains(#"{"enabled": false, "name": "guest-get-time", "success-response": true}"#))

        #expect(answer(#"{"execute":"guest-fsfreeze-thaw","id":3}"#, agent: agent) == #"{"return": 0, "id": 3}"#)
        #expect(!agent.isFrozen)
        #expect(agent.commands.entries.map(\.name).filter(agent.commands.isEnabled) == enabledBefore)
        #expect(answer(#"{"execute":"guest-ping","id":4}"#, agent: agent) == Self.notAllowedReply("guest-ping", id: 4))
        #expect(answer(#"{"execute":"guest-fsfreeze-thaw","id":5}"#, agent: agent) == Self.notAllowedReply("guest-fsfreeze-thaw", id: 5))
    }

    /// A start with the frozen marker takes the same rules from the first request on.
    @Test func startingFrozenWithABlockList() throws {
        let machine = try FixtureTree()
        let agent = machine.agent({ $0.blockedRPCs = ["guest-fsfreeze-thaw", "guest-get-time"] }, frozen: true)
        #expect(agent.commands.isEnabled("guest-fsfreeze-thaw"))
        #expect(answer(#"{"execute":"guest-get-time","id":1}"#, agent: agent) == Self.frozenReply("guest-get-time", id: 1))
        agent.unsetFrozen()
        #expect(!agent.commands.isEnabled("guest-fsfreeze-thaw"))
        #expect(answer(#"{"execute":"guest-get-time","id":1}"#, agent: agent) == Self.notAllowedReply("guest-get-time", id: 1))
    }

    @Test func enteringAndLeavingFrozenMode() throws {
        let machine = try FixtureTree()
        let captured = CapturedLog(in: machine)
        let agent = machine.agent({ $0.blockedRPCs = ["guest-get-time", "guest-fstrim"] }, log: captured.log)
        let before = captured.lines.count
        agent.setFrozen()
        Self.expectFrozen(agent, true)
        for entry in agent.commands.entries {
            #expect(agent.commands.isEnabled(entry.name) == Self.freezeSafe.contains(entry.name), "\(entry.name)")
        }
        #expect(answer(#"{"execute":"guest-set-time","id":1}"#, agent: agent) == Self.frozenReply("guest-set-time", id: 1))
        // Blocked as well as frozen: the freeze is the reason given.
        #expect(answer(#"{"execute":"guest-fstrim","id":2}"#, agent: agent) == Self.frozenReply("guest-fstrim", id: 2))
        // The warning is the last line before logging stops.
        agent.log.warning("not written while frozen")
        agent.log.critical("nor this")
        let frozenLines = Array(captured.lines[before...])
        #expect(frozenLines.last == "warning: disabling logging due to filesystem freeze")
        #expect(frozenLines.dropLast() == ArraySlice(agent.commands.entries.map(\.name)
            .filter { !Self.freezeSafe.contains($0) && !agent.config.blockedRPCs.contains($0) }.map { "debug: disabling command: \($0)" }))
        // Entering twice changes nothing.
        agent.setFrozen()
        #expect(captured.lines.count == before + frozenLines.count)

        agent.unsetFrozen()
        Self.expectFrozen(agent, false)
        let thawLines = Array(captured.lines[(before + frozenLines.count)...])
        #expect(thawLines.first == "warning: logging re-enabled due to filesystem unfreeze")
        #expect(thawLines.dropFirst() == ArraySlice(agent.commands.entries.map(\.name)
            .filter { !Self.freezeSafe.contains($0) && !agent.config.blockedRPCs.contains($0) }.map { "debug: enabling command: \($0)" }))
        // The block list still holds.
        #expect(!agent.commands.isEnabled("guest-fstrim"))
        #expect(agent.commands.isEnabled("guest-shutdown"))
    }

    @Test func aMarkerThatCannotBeCreatedOrDeletedIsWarnedAbout() throws {
        let machine = try FixtureTree()
        let captured = CapturedLog(in: machine)
        let agent = machine.agent({ $0.stateDirectory = machine.path("/missing") }, log: captured.log)
        agent.setFrozen()
        let marker = machine.path("/missing/qga.state.isfrozen")
        #expect(Array(captured.lines.suffix(3)) == [
            "warning: unable to open/create file \(marker): No such file or directory",
            "warning: unable to create \(marker), fsfreeze may not function properly",
            "warning: disabling logging due to filesystem freeze",
        ])
        agent.unsetFrozen()
        #expect(captured.lines.contains("warning: unable to delete file: \(marker): No such file or directory"))
        #expect(captured.lines.contains("warning: unable to delete \(marker), fsfreeze may not function properly"))
        #expect(!agent.isFrozen)
    }

    /// A start in frozen mode puts off the log file and the pid file; the
    /// thaw creates them.
    @Test func theThawCreatesTheDeferredFiles() throws {
        let machine = try FixtureTree()
        try machine.mountTable([])
        try machine.file("/var/run/qga.state.isfrozen", "")
        let log = GALog()
        log.verbose = true
        log.isEnabled = false
        let agent = machine.agent(frozen: true, log: log)
        agent.deferredLogFile = machine.path("/deferred.log")
        agent.deferredPidFile = machine.path("/deferred.pid")
        Self.expectFrozen(agent, true)
        #expect(readFile(machine.path("/deferred.log")) == nil)
        #expect(answer(#"{"execute":"guest-fsfreeze-thaw"}"#, agent: agent) == #"{"return": 0}"#)
        Self.expectFrozen(agent, false)
        #expect(readFile(machine.path("/deferred.pid")) == "\(getpid())\n")
        let logged = readFile(machine.path("/deferred.log")) ?? ""
        #expect(logged.contains(": warning: logging re-enabled due to filesystem unfreeze\n"), "\(logged)")
        #expect(logged.contains(": debug: enabling command: guest-shutdown\n"), "\(logged)")
        agent.pidFile?.remove()
        #expect(readFile(machine.path("/deferred.pid")) == nil)
    }

    @Test func aFreezeThatFreezesNothingLeavesFrozenModeAtOnce() throws {
        let machine = try FixtureTree()
        try machine.mountTable([])
        try machine.fake("/etc/qemu/fsfreeze-hook")
        let agent = machine.agent { $0.fsfreezeHook = "/etc/qemu/fsfreeze-hook" }
        #expect(answer(#"{"execute":"guest-fsfreeze-freeze"}"#, agent: agent) == #"{"return": 0}"#)
        Self.expectFrozen(agent, false)
        #expect(machine.calls == ["fsfreeze-hook freeze"])
    }

    @Test func freezeListOnlyOpensTheMountPointsNamedExactly() throws {
        let machine = try FixtureTree()
        try machine.mountTable(["/top", "/srv/data", "/srv"])
        let agent = machine.agent()
        for list in [#"[]"#, #"["/srv/data/", "srv", "/nonexistent"]"#] {
            #expect(answer(#"{"execute":"guest-fsfreeze-freeze-list","arguments":{"mountpoints":\#(list)}}"#, agent: agent)
                        == #"{"return": 0}"#, "\(list)")
        }
        // Reverse mount order: /srv is the first one tried.
        #expect(answer(#"{"execute":"guest-fsfreeze-freeze-list","arguments":{"mountpoints":["/srv/data","/srv"]}}"#, agent: agent)
                    == errorLine("failed to open /srv: No such file or directory"))
        #expect(answer(#"{"execute":"guest-fsfreeze-freeze-list"}"#, agent: agent)
                    == errorLine("failed to open /srv: No such file or directory"))
        Self.expectFrozen(agent, false)
    }

    /// A failed freeze thaws everything, hook included, and is an error.
    @Test func aFailedFreezeThawsEverything() throws {
        let machine = try FixtureTree()
        try machine.mountTable(["/top", "/gone"])
        try machine.fake("/etc/qemu/fsfreeze-hook")
        let agent = machine.agent { $0.fsfreezeHook = "/etc/qemu/fsfreeze-hook" }
        #expect(answer(#"{"execute":"guest-fsfreeze-freeze"}"#, agent: agent)
                    == errorLine("failed to open /gone: No such file or directory"))
        Self.expectFrozen(agent, false)
        #expect(machine.calls == ["fsfreeze-hook freeze", "fsfreeze-hook thaw"])
        #expect(agent.commands.isEnabled("guest-fsfreeze-freeze"))
    }

    @Test func aFailingFreezeHookFreezesNothing() throws {
        let machine = try FixtureTree()
        try machine.mountTable([])
        try machine.fake("/etc/qemu/fsfreeze-hook", status: 2, output: "database busy\n")
        try machine.fake("/hooks/silent", status: 7)
        try machine.program("/hooks/killed", "kill -KILL $$")
        let cases = [
            ("/etc/qemu/fsfreeze-hook", "child process has failed to execute fsfreeze hook: database busy\n"),
            ("/hooks/silent", "child process has failed to execute fsfreeze hook: exit status 7"),
            ("/hooks/killed", "child process has terminated abnormally"),
            ("/hooks/missing", "child process has failed to execute fsfreeze hook: failed to exec '/hooks/missing': No such file or directory\n"),
        ]
        for (hook, text) in cases {
            let agent = machine.agent { $0.fsfreezeHook = hook }
            #expect(answer(#"{"execute":"guest-fsfreeze-freeze"}"#, agent: agent) == errorLine(text), "\(hook)")
            Self.expectFrozen(agent, false)
        }
        // Only ever run with `freeze`: a failed freeze hook is not undone.
        #expect(machine.calls == ["fsfreeze-hook freeze", "silent freeze"])
    }

    /// Thaw works when not frozen (0) and still runs the hook; a failing
    /// thaw hook makes an error of a thaw that happened.
    @Test func thawRunsTheHookAndReportsItsFailure() throws {
        let machine = try FixtureTree()
        try machine.mountTable(["/gone"])
        try machine.fake("/etc/qemu/fsfreeze-hook")
        let agent = machine.agent { $0.fsfreezeHook = "/etc/qemu/fsfreeze-hook" }
        #expect(answer(#"{"execute":"guest-fsfreeze-thaw"}"#, agent: agent) == #"{"return": 0}"#)
        #expect(machine.calls == ["fsfreeze-hook thaw"])

        try machine.fake("/etc/qemu/fsfreeze-hook", status: 3)
        try machine.file("/var/run/qga.state.isfrozen", "")
        let frozen = machine.agent({ $0.fsfreezeHook = "/etc/qemu/fsfreeze-hook" }, frozen: true)
        #expect(answer(#"{"execute":"guest-fsfreeze-thaw"}"#, agent: frozen)
                    == errorLine("child process has failed to execute fsfreeze hook: exit status 3"))
        Self.expectFrozen(frozen, false)
    }

    @Test func aThawWithoutMountListStaysFrozen() throws {
        let machine = try FixtureTree()
        try machine.fake("/etc/qemu/fsfreeze-hook")
        try machine.file("/var/run/qga.state.isfrozen", "")
        let agent = machine.agent({ $0.fsfreezeHook = "/etc/qemu/fsfreeze-hook" }, frozen: true)
        #expect(answer(#"{"execute":"guest-fsfreeze-thaw"}"#, agent: agent)
                    == errorLine("failed to open mtab file: '/proc/self/mounts'"))
        Self.expectFrozen(agent, true)
        #expect(machine.calls.isEmpty)
        // Exit through another path: the clean-up tries again.
        try machine.mountTable([])
        Fsfreeze.cleanUp(agent: agent)
        Self.expectFrozen(agent, false)
        #expect(machine.calls == ["fsfreeze-hook thaw"])
    }

    /// Better (`kill-hook-after`): a hanging hook is killed, the freeze
    /// fails, and the hook's thaw undoes whatever it did.
    @Test func aHangingHookIsKilledAfterTheTimeout() throws {
        let machine = try FixtureTree()
        try machine.mountTable([])
        let log = machine.path("/calls")
        let grandchild = machine.path("/grandchild")
        try machine.program("/etc/qemu/fsfreeze-hook", """
            echo "hook $1" >> '\(log)'
            [ "$1" = thaw ] && exit 0
            sleep 60 & echo $! > '\(grandchild)'
            wait
            """)
        let agent = machine.agent {
            $0.fsfreezeHook = "/etc/qemu/fsfreeze-hook"
            $0.killHookAfter = 1
        }
        #expect(answer(#"{"execute":"guest-fsfreeze-freeze"}"#, agent: agent)
                    == errorLine("child process has failed to execute fsfreeze hook: timed out after 1 s and was killed"))
        Self.expectFrozen(agent, false)
        #expect(machine.calls == ["hook freeze", "hook thaw"])
        let pid = try #require(readFile(grandchild).flatMap { pid_t($0.split(separator: "\n").first ?? "") })
        #expect(processGone(pid))
    }

    /// Better (`thaw-after`): frozen longer than that without a thaw, the
    /// agent thaws by itself.
    @Test func theAutoThawTimerThaws() throws {
        let machine = try FixtureTree()
        try machine.mountTable([])
        try machine.fake("/etc/qemu/fsfreeze-hook")
        try machine.file("/var/run/qga.state.isfrozen", "")
        let agent = machine.agent({
            $0.fsfreezeHook = "/etc/qemu/fsfreeze-hook"
            $0.thawAfter = 1
        }, frozen: true)
        Self.expectFrozen(agent, true)
        let started = monotonicSeconds()
        #expect(drive(for: 30) { !agent.isFrozen })
        #expect(monotonicSeconds() - started >= 0.9)
        Self.expectFrozen(agent, false)
        #expect(machine.calls == ["fsfreeze-hook thaw"])
        #expect(!drive(for: 1.3) { machine.calls.count > 1 }, "the timer fired again")
    }

    /// While the thaw fails, the timer keeps trying.
    @Test func theAutoThawRetries() throws {
        let machine = try FixtureTree()
        try machine.file("/var/run/qga.state.isfrozen", "")
        let agent = machine.agent({ $0.thawAfter = 1 }, frozen: true)
        #expect(!drive(for: 1.5) { !agent.isFrozen })
        try machine.mountTable([])
        #expect(drive(for: 30) { !agent.isFrozen })
    }

    @Test func noTimerWithoutThawAfter() throws {
        let machine = try FixtureTree()
        try machine.mountTable([])
        try machine.file("/var/run/qga.state.isfrozen", "")
        let agent = machine.agent({ $0.thawAfter = 0 }, frozen: true)
        #expect(!drive(for: 1.2) { !agent.isFrozen })
    }
}

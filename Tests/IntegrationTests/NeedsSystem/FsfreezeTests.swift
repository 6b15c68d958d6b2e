#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
import TestRequirements

extension NeedsSystem {
    /// guest-fsfreeze-* and guest-fstrim of the built agent with real FIFREEZE,
    /// FITHAW and FITRIM, on an ext4 image of ours loop-mounted inside a fixture
    /// root whose mount table lists that mount only (root, loop devices).
    @Suite("Control: fsfreeze and fstrim on a loop-mounted ext4 image", .serialized)
    struct FsfreezeLoopTests {
        static let freeze = #"{"execute":"guest-fsfreeze-freeze"}"#
        static let thaw = #"{"execute":"guest-fsfreeze-thaw"}"#
        static let status = #"{"execute":"guest-fsfreeze-status"}"#
        static let fstrim = #"{"execute":"guest-fstrim"}"#

        @Test("freeze -> status -> a disabled command -> thaw -> enabled again, with the kernel's view at each step")
        func freezeCycle() throws {
            let fixture = try FixtureRoot()
            let loop = try fixture.mountLoop()
            try withFixtureAgent(fixture, extraArguments: ["-v", "-l", "$DIR/agent.log"]) { agent throws in
                #expect(try agent.ask(Self.status) == Reply.return(#""thawed""#))
                #expect(try agent.ask(Self.freeze) == Reply.return("1"))
                #expect(try loop.isFrozen())
                #expect(try agent.ask(Self.status) == Reply.return(#""frozen""#))
                #expect(fileExists(agent.directory + "/qga.state.isfrozen"))
                #expect(try agent.ask(Self.fstrim) == frozenReply("guest-fstrim"))
                #expect(try agent.ask(Self.freeze) == frozenReply("guest-fsfreeze-freeze"))
                for command in try agent.supportedCommands() {
                    #expect(command.enabled == freezeSafeCommands.contains(command.name), "\(command)")
                }
                // A frozen agent ignores SIGTERM.
                kill(agent.pid, SIGTERM)
                #expect(!agent.waitForExit(timeout: .milliseconds(500)), "exited on SIGTERM while frozen")
                let logWhileFrozen = readFile(agent.directory + "/agent.log") ?? []

                #expect(try agent.ask(Self.thaw) == Reply.return("1"))
                #expect(try !loop.isFrozen())
                #expect(try agent.ask(Self.status) == Reply.return(#""thawed""#))
                #expect(!fileExists(agent.directory + "/qga.state.isfrozen"))
                let trimmed = try agent.ask(Self.fstrim)
                // Members in qemu-ga's hash order.
                #expect(trimmed.hasPrefix(#"{"return": {"paths": [{"minimum": "#) && trimmed.contains(#", "path": "/mnt/data", "trimmed": "#),
                        "\(trimmed)")
                #expect(try agent.ask(Self.thaw) == Reply.return("0"))
                for command in try agent.supportedCommands() { #expect(command.enabled, "\(command)") }

                // Nothing was logged while frozen: the freeze's warning is the last line.
                let frozenLog = parseLog(logWhileFrozen).lines.map(\.description)
                #expect(frozenLog.last == "warning: disabling logging due to filesystem freeze", "\(frozenLog.suffix(3))")
                #expect(frozenLog.contains("debug: disabling command: guest-fstrim"))
                let whole = parseLog(readFile(agent.directory + "/agent.log") ?? []).lines.map(\.description)
                let next = whole.dropFirst(frozenLog.count).first
                #expect(next == "warning: logging re-enabled due to filesystem unfreeze", "\(String(describing: next))")
                #expect(whole.contains("debug: enabling command: guest-fstrim"))
            }
        }

        /// After guest-fsfreeze-freeze, as after a frozen start-up: a blocked
        /// status and thaw are enabled while frozen, and blocked again after.
        @Test("-b guest-fsfreeze-thaw,guest-fsfreeze-status: both still work while frozen, blocked again after the thaw")
        func blockedThawStillThaws() throws {
            let fixture = try FixtureRoot()
            let loop = try fixture.mountLoop()
            try withFixtureAgent(fixture, extraArguments: ["-b", "guest-fsfreeze-thaw,guest-fsfreeze-status,guest-ping"]) { agent throws in
                #expect(try agent.ask(Self.thaw) == disabledReply("guest-fsfreeze-thaw"))
                #expect(try agent.ask(Self.freeze) == Reply.return("1"))
                #expect(try loop.isFrozen())
                #expect(try agent.ask(Self.status) == Reply.return(#""frozen""#))
                #expect(try agent.ask(Request.ping) == Reply.pong)
                #expect(try agent.ask(Self.fstrim) == frozenReply("guest-fstrim"))
                #expect(try agent.ask(Self.thaw) == Reply.return("1"))
                #expect(try !loop.isFrozen())
                #expect(try agent.ask(Self.status) == disabledReply("guest-fsfreeze-status"))
                #expect(try agent.ask(Request.ping) == disabledReply("guest-ping"))
            }
        }

        @Test("freeze-list freezes only the mount points named exactly")
        func freezeList() throws {
            let fixture = try FixtureRoot()
            let loop = try fixture.mountLoop()
            try withFixtureAgent(fixture) { agent throws in
                let request = { (list: String) in #"{"execute":"guest-fsfreeze-freeze-list","arguments":{"mountpoints":\#(list)}}"# }
                #expect(try agent.ask(request(#"["/mnt/data/", "/mnt", "/"]"#)) == Reply.return("0"))
                #expect(try agent.ask(Self.status) == Reply.return(#""thawed""#))
                #expect(try !loop.isFrozen())
                #expect(try agent.ask(request(#"["/nowhere", "/mnt/data"]"#)) == Reply.return("1"))
                #expect(try loop.isFrozen())
                #expect(try agent.ask(Self.thaw) == Reply.return("1"))
                #expect(try !loop.isFrozen())
            }
        }

        /// EBUSY (frozen already, by someone else) is not counted; the thaw
        /// thaws what others froze too.
        @Test("A filesystem frozen by someone else: freeze counts 0, thaw counts 1")
        func frozenElsewhere() throws {
            let fixture = try FixtureRoot()
            let loop = try fixture.mountLoop()
            try loop.freeze()
            try withFixtureAgent(fixture) { agent throws in
                #expect(try agent.ask(Self.freeze) == Reply.return("0"))
                #expect(try agent.ask(Self.status) == Reply.return(#""thawed""#))
                #expect(try agent.ask(Self.thaw) == Reply.return("1"))
                #expect(try !loop.isFrozen())
            }
        }

        @Test("fstrim: what the kernel trimmed; a minimum it refuses is that path's error")
        func fstrim() throws {
            let fixture = try FixtureRoot()
            try fixture.mountLoop()
            try withFixtureAgent(fixture) { agent throws in
                let reply = try agent.ask(#"{"execute":"guest-fstrim","arguments":{"minimum":4096}}"#)
                let match = try #require(try Regex(#"^\{"return": \{"paths": \[\{"minimum": ([0-9]+), "path": "/mnt/data", "trimmed": ([0-9]+)\}\]\}\}\n$"#).wholeMatch(in: reply), "\(reply)")
                #expect(Int(match.output[1].substring ?? "") ?? 0 >= 4096, "\(reply)")
                #expect(try agent.ask(#"{"execute":"guest-fstrim","arguments":{"minimum":1073741824}}"#)
                            == Reply.return(#"{"paths": [{"path": "/mnt/data", "error": "failed to trim: Invalid argument"}]}"#))
            }
        }

        /// Without CAP_SYS_ADMIN the ioctls fail with EPERM: the failed freeze
        /// thaws everything, hook included.
        @Test("Errors of the ioctls: failed to freeze (full thaw follows), failed to trim")
        func ioctlErrors() throws {
            let fixture = try FixtureRoot()
            let loop = try fixture.mountLoop()
            try fixture.hook()
            try withFixtureAgent(fixture, extraArguments: ["-F"], launcher: withoutMachineCapabilities) { agent throws in
                #expect(try agent.ask(Self.freeze) == Reply.error("failed to freeze /mnt/data: Operation not permitted"))
                #expect(try agent.ask(Self.status) == Reply.return(#""thawed""#))
                #expect(fixture.calls == ["hook freeze", "hook thaw"])
                #expect(try agent.ask(Self.fstrim)
                            == Reply.return(#"{"paths": [{"path": "/mnt/data", "error": "failed to trim: Operation not permitted"}]}"#))
            }
            #expect(try !loop.isFrozen())
        }

        @Test("A failing freeze hook: an error, nothing frozen, the hook not run with thaw")
        func failingHook() throws {
            let fixture = try FixtureRoot()
            let loop = try fixture.mountLoop()
            try fixture.hook(freeze: "echo cannot quiesce the database; exit 2")
            try withFixtureAgent(fixture, extraArguments: ["-F"]) { agent throws in
                #expect(try agent.ask(Self.freeze)
                            == Reply.error(#"child process has failed to execute fsfreeze hook: cannot quiesce the database\n"#))
                #expect(try agent.ask(Self.status) == Reply.return(#""thawed""#))
                #expect(try !loop.isFrozen())
                #expect(fixture.calls == ["hook freeze"])
                // A failing thaw hook: an error, although everything is thawed.
                try fixture.hook(thaw: "exit 3")
                #expect(try agent.ask(Self.freeze) == Reply.return("1"))
                #expect(try agent.ask(Self.thaw) == Reply.error("child process has failed to execute fsfreeze hook: exit status 3"))
                #expect(try agent.ask(Self.status) == Reply.return(#""thawed""#))
                #expect(try !loop.isFrozen())
            }
        }

        /// A hook that hangs hangs qemu-ga (and us by default) until it ends.
        @Test("A hanging hook without kill-hook-after: the agent waits for it")
        func hangingHook() throws {
            let fixture = try FixtureRoot()
            let loop = try fixture.mountLoop()
            let pidFile = fixture.path("/hook.pid")
            try fixture.hook(freeze: "echo $$ > '\(pidFile)'; exec sleep 600")
            try withFixtureAgent(fixture, extraArguments: ["-F"]) { agent throws in
                let client = try agent.connect()
                try client.send(Self.freeze)
                #expect(throws: HarnessError.self) { try client.receive(lines: 1, timeout: .milliseconds(1500)) }
                let pid = try #require(readFile(pidFile).flatMap { pid_t(String(decoding: $0, as: UTF8.self).split(separator: "\n")[0]) })
                kill(pid, SIGKILL)
                expectBytes(try client.receive(lines: 1), wire(Reply.error("child process has terminated abnormally")), "reply")
                // One client at a time: this one goes before the next asks.
                client.close()
                #expect(try agent.ask(Self.status) == Reply.return(#""thawed""#))
                #expect(try !loop.isFrozen())
            }
        }

        @Test("A hanging hook with --kill-hook-after=1: killed, the freeze fails, the hook's thaw runs")
        func killedHook() throws {
            let fixture = try FixtureRoot()
            let loop = try fixture.mountLoop()
            let grandchild = fixture.path("/grandchild.pid")
            try fixture.hook(freeze: "sleep 600 & echo $! > '\(grandchild)'; wait")
            try withFixtureAgent(fixture, extraArguments: ["-F", "--kill-hook-after=1"]) { agent throws in
                let started = ContinuousClock.now
                #expect(try agent.ask(Self.freeze)
                            == Reply.error("child process has failed to execute fsfreeze hook: timed out after 1 s and was killed"))
                // Not before the timeout; not after the hook's 600 s either, which
                // the text and the end of the hook's child prove without a clock.
                #expect(ContinuousClock.now - started >= .milliseconds(900))
                #expect(fixture.calls == ["hook freeze", "hook thaw"])
                #expect(try agent.ask(Self.status) == Reply.return(#""thawed""#))
                #expect(try !loop.isFrozen())
                let pid = try #require(readFile(grandchild).flatMap { pid_t(String(decoding: $0, as: UTF8.self).split(separator: "\n")[0]) })
                #expect(poll(timeout: .seconds(5)) { readFile("/proc/\(pid)/stat").map { String(decoding: $0, as: UTF8.self).contains(") Z ") } ?? true },
                        "the hook's child \(pid) survived")
            }
        }

        /// The frozen marker (`qga.state.isfrozen` in the state directory) left by
        /// an agent killed while frozen makes the next one start frozen; its thaw
        /// thaws for real and creates the log file it put off.
        @Test("Restart while frozen: the next agent starts frozen and its thaw thaws the filesystem")
        func restartWhileFrozen() throws {
            let fixture = try FixtureRoot()
            let loop = try fixture.mountLoop()
            let first = try fixtureAgent(fixture)
            #expect(try first.ask(Self.freeze) == Reply.return("1"))
            let marker = readFile(first.directory + "/qga.state.isfrozen")
            #expect(marker == [])
            kill(first.pid, SIGKILL)
            _ = first.waitForExit(timeout: .seconds(5))
            first.finish(checkSync: false, expectRunning: false)
            #expect(try loop.isFrozen())

            try withFixtureAgent(fixture, extraArguments: ["-v", "-l", "$DIR/agent.log"], prepare: { directory in
                try writeFile(directory + "/qga.state.isfrozen", marker ?? [])
            }) { agent throws in
                #expect(try agent.ask(Self.status) == Reply.return(#""frozen""#))
                #expect(try agent.ask(Self.fstrim) == frozenReply("guest-fstrim"))
                kill(agent.pid, SIGTERM)
                #expect(!agent.waitForExit(timeout: .milliseconds(500)), "exited on SIGTERM while frozen")
                #expect(!fileExists(agent.directory + "/agent.log"))
                #expect(try agent.ask(Self.thaw) == Reply.return("1"))
                #expect(try !loop.isFrozen())
                #expect(!fileExists(agent.directory + "/qga.state.isfrozen"))
                let log = parseLog(readFile(agent.directory + "/agent.log") ?? []).lines.map(\.description)
                #expect(log.first == "warning: logging re-enabled due to filesystem unfreeze", "\(log.prefix(3))")
                #expect(log.contains("debug: enabling command: guest-fstrim"))
            }
        }

        /// Better (`--thaw-after`): nobody thaws, the agent does, and says so in syslog.
        @Test("--thaw-after=1: frozen filesystems are thawed automatically, with a syslog line")
        func autoThaw() throws {
            let fixture = try FixtureRoot()
            let loop = try fixture.mountLoop()
            var listener: SyslogListener?
            let agent = try fixtureAgent(fixture, extraArguments: ["--thaw-after=1"], prepare: { directory in
                listener = try SyslogListener(path: directory + "/syslog.sock")
            }, launcher: syslogLauncher)
            defer { agent.finish() }
            #expect(try agent.ask(Self.freeze) == Reply.return("1"))
            #expect(try loop.isFrozen())
            #expect(poll(timeout: .seconds(5)) { (try? agent.ask(Self.status)) == Reply.return(#""thawed""#) })
            #expect(try !loop.isFrozen())
            let messages = listener?.drain().compactMap { SyslogRecord($0)?.message } ?? []
            #expect(messages == ["info: guest-fsfreeze called", "info: guest-fsthaw called",
                                 "info: filesystems frozen for 1 s without guest-fsfreeze-thaw: thawed 1 automatically"], "\(messages)")
            // Not again.
            #expect(try agent.ask(Self.freeze) == Reply.return("1"))
            #expect(try agent.ask(Self.thaw) == Reply.return("1"))
            usleep(1_500_000)
            #expect(listener?.drain().compactMap { SyslogRecord($0)?.message } == [
                "info: guest-fsfreeze called", "info: guest-fsthaw called",
            ])
        }

        @Test("The syslog lines of freeze, thaw, the hook and fstrim (none while frozen)")
        func syslogLines() throws {
            let fixture = try FixtureRoot()
            try fixture.mountLoop()
            try fixture.hook()
            var listener: SyslogListener?
            let agent = try fixtureAgent(fixture, extraArguments: ["-F"], prepare: { directory in
                listener = try SyslogListener(path: directory + "/syslog.sock")
            }, launcher: syslogLauncher)
            defer { agent.finish() }
            #expect(try agent.ask(Self.freeze) == Reply.return("1"))
            #expect(try agent.ask(Request.ping) == Reply.pong)
            #expect(try agent.ask(Self.thaw) == Reply.return("1"))
            _ = try agent.ask(Self.fstrim)
            let records = listener?.drain().compactMap(SyslogRecord.init) ?? []
            #expect(records.map(\.message) == [
                "info: guest-fsfreeze called", "info: executing fsfreeze hook with arg 'freeze'",
                "info: guest-fsthaw called", "info: executing fsfreeze hook with arg 'thaw'", "info: guest-fstrim called",
            ])
            // The ident is the program's name: the fixture build's here
        // (DaemonSyslogTests check qemu-ga's own).
        #expect(records.allSatisfy { $0.priority == 14 && $0.ident == "qemu-ga-fixture" })
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
import TestRequirements

/// The state directory: `qga.state` and the frozen marker `qga.state.isfrozen`
/// at start-up.
@Suite("Daemon: state directory and frozen start-up")
struct DaemonStateTests {
    static let defaultState = Bytes("[global]\nfd_counter=1000\n".utf8)

    @Test("qga.state is created at start-up with fd_counter=1000", arguments: [AgentBinary.ours])
    func stateFileCreated(kind: AgentBinary) throws {
        try withAgent(kind) { agent throws in
            expectBytes(readFile(agent.directory + "/qga.state") ?? [], Self.defaultState, "\(kind) qga.state")
            var info = stat()
            #expect(stat(agent.directory + "/qga.state", &info) == 0 && info.st_mode & S_IFMT == S_IFREG)
            // Written atomically through a temporary file: nothing else is left behind.
            let leftovers = try directoryEntries(agent.directory).filter { $0.hasPrefix("qga.state.") }
            #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
        }
    }

    static let existingStates = [
        "[global]\nfd_counter=4321\n", "# written by hand\n[global]\nfd_counter = 77\nother=1\n[x]\ny=z\n",
        "[global]\n", "[global]\nfd_counter=abc\n",
    ]

    @Test("An existing qga.state is read, not rewritten", arguments: [AgentBinary.ours], existingStates)
    func stateFileKept(kind: AgentBinary, content: String) throws {
        let agent = try Agent(kind, prepare: { try writeFile($0 + "/qga.state", Bytes(content.utf8)) })
        agent.expectAnswersSync()
        expectBytes(readFile(agent.directory + "/qga.state") ?? [], Bytes(content.utf8), "\(kind) qga.state while running")
        let directory = agent.directory
        // 7.2's SIGTERM handler deadlocks now and then (see `Agent.finish`).
        kill(agent.pid, kind == .ours ? SIGTERM : SIGKILL)
        #expect(agent.waitForExit(timeout: .seconds(5)), "\(kind) ignored SIGTERM")
        expectBytes(readFile(directory + "/qga.state") ?? [], Bytes(content.utf8), "\(kind) qga.state after exit")
        agent.finish(expectRunning: false)
    }

    /// Newest (10.0+): an initialization failure exits 1 (7.2: 0).
    @Test("A state file that cannot be created: criticals, exit 1 (newest)")
    func stateFileUncreatable() throws {
        let directory = try TemporaryDirectory()
        let state = directory("missing") + "/qga.state"
        let run = try runAgent(.ours, ["-m", "unix-listen", "-p", directory("sock"), "-t", directory("missing")])
        #expect(run.exitStatus == 1, "\(run)")
        let (lines, other) = parseLog(run.stderr)
        #expect(other.isEmpty, "\(run)")
        let messages = lines.map(\.message)
        #expect(lines.allSatisfy { $0.level == "critical" }, "\(run)")
        #expect(messages.count == 4, "\(run)")
        if messages.count == 4 {
            #expect(messages[0].hasPrefix("failed to write persistent state to \(state): Failed to create file “\(state)."),
                    "\(messages[0])")
            #expect(messages[0].hasSuffix("”: No such file or directory"), "\(messages[0])")
            #expect(Array(messages[1...]) == ["unable to create state file at path \(state)", "failed to load persistent state",
                                              "error initializing guest agent"], "\(run)")
        }
    }

    @Test("An unparsable state file: criticals, exit 1 (newest)")
    func stateFileUnparsable() throws {
        let directory = try TemporaryDirectory()
        try directory.write("qga.state", "garbage\n")
        let run = try runAgent(.ours, ["-m", "unix-listen", "-p", directory("sock"), "-t", directory.path])
        #expect(run.exitStatus == 1, "\(run)")
        #expect(parseLog(run.stderr).lines.map(\.message) == [
            "error loading persistent state from path: \(directory("qga.state")), Key file contains line “garbage” which is not a key-value pair, group, or comment",
            "failed to load persistent state", "error initializing guest agent",
        ], "\(run)")
        #expect(readFile(directory("qga.state")) == Bytes("garbage\n".utf8))
    }

    // MARK: Frozen start-up

    static func frozenWarning(_ marker: String) -> String {
        glibDefaultHandlerLine("WARNING",
            "previous instance appears to have exited with frozen filesystems. deferring logging/pidfile creation and "
                + "disabling non-fsfreeze-safe commands until guest-fsfreeze-thaw is issued, or filesystems are manually "
                + "unfrozen and the file \(marker) is removed")
    }

    static func startFrozen(_ kind: AgentBinary, _ arguments: [String] = []) throws -> Agent {
        // Ours on a machine that does not exist: these tests send every
        // disabled command, and a filter bug must not reach this machine.
        try Agent(kind == .ours ? .oursOnFixture : kind, extraArguments: arguments,
                  environment: kind == .ours ? ["QGA_SYSTEM_ROOT": "/nonexistent-qga-machine"] : [:],
                  prepare: { directory in try writeFile(directory + "/qga.state.isfrozen", []) })
    }

    /// Ends a frozen agent: SIGTERM is ignored while frozen (checked), then SIGKILL.
    static func expectIgnoresSIGTERM(_ agent: Agent, sourceLocation: SourceLocation = #_sourceLocation) {
        kill(agent.pid, SIGTERM)
        #expect(!agent.waitForExit(timeout: .milliseconds(500)), "\(agent.kind) exited on SIGTERM while frozen",
                sourceLocation: sourceLocation)
        if agent.isAlive() {
            agent.expectAnswersSync(sourceLocation: sourceLocation)
        }
        kill(agent.pid, SIGINT)
        #expect(!agent.waitForExit(timeout: .milliseconds(300)), "\(agent.kind) exited on SIGINT while frozen",
                sourceLocation: sourceLocation)
        kill(agent.pid, SIGKILL)
        _ = agent.waitForExit(timeout: .seconds(5))
        agent.finish(checkSync: false, expectRunning: false, sourceLocation: sourceLocation)
    }

    @Test("Frozen marker at start-up: the GLib warning, only the freeze-safe commands enabled",
          arguments: [AgentBinary.ours])
    func frozenStartup(kind: AgentBinary) throws {
        let agent = try Self.startFrozen(kind)
        defer { Self.expectIgnoresSIGTERM(agent) }
        let commands = try agent.supportedCommands()
        #expect(!commands.isEmpty)
        for command in commands {
            #expect(command.enabled == freezeSafeCommands.contains(command.name), "\(kind): \(command)")
        }
        #expect(try agent.ask(Request.ping) == Reply.pong)
        #expect(try agent.ask(Request.sync(5)) == Reply.return("5"))
        // The marker is kept, the state file is not created, no pidfile.
        #expect(fileExists(agent.directory + "/qga.state.isfrozen"))
        #expect(!fileExists(agent.directory + "/qga.state"), "\(kind) created qga.state while frozen")
        #expect(normalizedDiagnostics(agent.output) == Self.frozenWarning(agent.directory + "/qga.state.isfrozen"),
                "\(kind) output: \(agent.log)")
    }

    @Test("Frozen start-up: every other command answers `the agent is in frozen state` (7.2's text)",
          arguments: [AgentBinary.ours])
    func frozenStartupReplies(kind: AgentBinary) throws {
        let agent = try Self.startFrozen(kind)
        defer { Self.expectIgnoresSIGTERM(agent) }
        // 7.2 lists guest-get-devices, disabled for good on Linux with a text of its own.
        for command in try agent.supportedCommands()
        where !freezeSafeCommands.contains(command.name) && command.name != "guest-get-devices" {
            #expect(try agent.ask(bareRequest(command.name)) == frozenReply(command.name), "\(kind)")
        }
    }

    /// Better than qemu-ga 7.2: while frozen, the freeze-safe commands are
    /// enabled whatever the lists say (a blocked thaw would leave the guest
    /// frozen for good); after the thaw the lists apply again.
    @Test("Frozen start-up with block and allow lists: the freeze-safe commands win until the thaw",
          arguments: [
            ["-b", "guest-ping,guest-fsfreeze-thaw,guest-fsfreeze-status,guest-get-time"],
            ["-a", "guest-get-time,guest-info,guest-sync-delimited"],
          ])
    func frozenStartupWithLists(lists: [String]) throws {
        let fixture = try FixtureRoot()
        try fixture.write("/proc/self/mountinfo", "")
        try withFixtureAgent(fixture, extraArguments: lists, prepare: { directory in
            try writeFile(directory + "/qga.state.isfrozen", [])
        }) { agent throws in
            for command in try agent.supportedCommands() {
                #expect(command.enabled == freezeSafeCommands.contains(command.name), "\(command)")
            }
            #expect(try agent.ask(Request.ping) == Reply.pong)
            #expect(try agent.ask(#"{"execute":"guest-fsfreeze-status"}"#) == Reply.return(#""frozen""#))
            #expect(try agent.ask(bareRequest("guest-get-time")) == frozenReply("guest-get-time"))
            #expect(try agent.ask(#"{"execute":"guest-fsfreeze-thaw"}"#) == Reply.return("0"))
            #expect(!fileExists(agent.directory + "/qga.state.isfrozen"))
            let enabled = Set(try agent.supportedCommands().filter(\.enabled).map(\.name))
            if lists[0] == "-b" {
                #expect(try agent.ask(Request.ping) == disabledReply("guest-ping"))
                #expect(try agent.ask(#"{"execute":"guest-fsfreeze-thaw"}"#) == disabledReply("guest-fsfreeze-thaw"))
                #expect(try agent.ask(bareRequest("guest-get-time")) == disabledReply("guest-get-time"))
                #expect(!enabled.contains("guest-fsfreeze-status") && enabled.contains("guest-get-osinfo"))
            } else {
                #expect(enabled == ["guest-get-time", "guest-info", "guest-sync-delimited"])
                #expect(try agent.ask(Request.ping) == disabledReply("guest-ping"))
                #expect(try agent.ask(bareRequest("guest-get-time")).hasPrefix(#"{"return": "#))
            }
        }
    }

    /// Logging is off while frozen: with `-v` and no `-l` nothing but the
    /// start-up lines reaches stderr; with `-l` the file is not even created.
    @Test("Frozen start-up: no log output, the log file is deferred", arguments: [AgentBinary.ours])
    func frozenNoLogging(kind: AgentBinary) throws {
        let verbose = try Self.startFrozen(kind, ["-v"])
        #expect(try verbose.ask(Request.ping) == Reply.pong)
        let client = try verbose.connect()
        try client.send("}")  // a parse error: logged under -v when logging is on
        _ = try client.receive(lines: 1)
        client.close()
        #expect(try verbose.ask(Request.sync(6)) == Reply.return("6"))
        let (lines, other) = parseLog(verbose.output)
        // Only the version line may precede the switch-off (it does in 7.2 and upstream).
        #expect(lines.allSatisfy { $0.message.hasPrefix("Guest agent version ") }, "\(kind): \(verbose.log)")
        #expect(other.count == 1 && other[0].contains("previous instance appears to have exited with frozen filesystems"),
                "\(kind): \(verbose.log)")
        Self.expectIgnoresSIGTERM(verbose)

        let withFile = try Self.startFrozen(kind, ["-v", "-l", "$DIR/agent.log"])
        #expect(try withFile.ask(Request.ping) == Reply.pong)
        #expect(!fileExists(withFile.directory + "/agent.log"), "\(kind) created the log file while frozen")
        Self.expectIgnoresSIGTERM(withFile)
    }
}

extension NeedsSystem {
    /// Our agent's cases above, run on qemu-ga 7.2 itself: its behaviour is
    /// what ours is held to.
    @Suite("Daemon: state directory and frozen start-up, on qemu-ga 7.2") struct DaemonStateTestsNeedingSystem {
        @Test func stateFileCreated() throws { try DaemonStateTests().stateFileCreated(kind: .reference) }

        @Test(arguments: DaemonStateTests.existingStates)
        func stateFileKept(content: String) throws { try DaemonStateTests().stateFileKept(kind: .reference, content: content) }

        @Test func frozenStartup() throws { try DaemonStateTests().frozenStartup(kind: .reference) }

        @Test func frozenStartupReplies() throws { try DaemonStateTests().frozenStartupReplies(kind: .reference) }

        @Test func frozenNoLogging() throws { try DaemonStateTests().frozenNoLogging(kind: .reference) }
    }
}

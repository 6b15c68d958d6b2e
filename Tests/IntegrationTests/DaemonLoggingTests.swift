#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
import TestRequirements

/// The log file and stderr logging (qemu-ga(8), LOGGING): the line format, the
/// default levels, `-v`, the debug texts of a request.
@Suite("Daemon: logging")
struct DaemonLoggingTests {
    static func now() -> Int { Int(time(nil)) }

    /// Waits until `text` has a line whose message is `message` (after `after` lines).
    static func waitForMessage(_ read: () -> Bytes, _ message: String, timeout: Duration = .seconds(5)) -> Bool {
        poll(timeout: timeout) { parseLog(read()).lines.contains { $0.message == message } }
    }

    /// The messages from the first `read data` line on.
    static func requestMessages(_ lines: [LogLine]) -> [String] {
        guard let first = lines.firstIndex(where: { $0.message.hasPrefix("read data, ") }) else { return [] }
        return lines[first...].map(\.message)
    }

    static let pingTranscript = [
        #"read data, count: 24, data: {"execute":"guest-ping"}"#,
        "process_event: called",
        "processing command",
        "sending data, count: 15",
        "received EOF",
    ]

    @Test("-l appends `<epoch>.<usec>: <level>: <message>` lines; -v logs a request's debug texts",
          arguments: [AgentBinary.ours])
    func logFileFormat(kind: AgentBinary) throws {
        let started = Self.now()
        let previous = "an earlier line\n"
        let agent = try Agent(kind, extraArguments: ["-v", "-l", "$DIR/agent.log"],
                              prepare: { try writeFile($0 + "/agent.log", Bytes(previous.utf8)) })
        defer { agent.finish() }
        let logFile = agent.directory + "/agent.log"
        let client = try agent.connect()
        try client.send(Request.ping)
        #expect(try client.receive(lines: 1) == wire(Reply.pong))
        client.close()
        #expect(poll { Self.requestMessages(parseLog(readFile(logFile) ?? []).lines).last == "received EOF" },
                "no `received EOF` after the request: \(render(readFile(logFile) ?? []))")
        let content = readFile(logFile) ?? []
        #expect(content.starts(with: Bytes(previous.utf8)), "the log file was not appended to: \(render(content))")
        let (lines, other) = parseLog(Bytes(content.dropFirst(previous.utf8.count)))
        #expect(other.isEmpty, "malformed lines: \(other)")
        #expect(content.last == 0x0A)
        for line in lines {
            #expect(line.seconds >= started - 2 && line.seconds <= Self.now() + 2, "timestamp \(line.seconds) is not now (UTC epoch)")
        }
        #expect(Self.requestMessages(lines) == Self.pingTranscript, "\(kind): \(lines)")
        #expect(lines.filter { $0.message.hasPrefix("read data") }.allSatisfy { $0.level == "debug" })
    }

    @Test("Default levels: no debug or warning lines without -v", arguments: [AgentBinary.ours])
    func defaultLevels(kind: AgentBinary) throws {
        try withAgent(kind, extraArguments: ["-l", "$DIR/agent.log"]) { agent throws in
            #expect(try agent.ask(Request.ping) == Reply.pong)
            let client = try agent.connect()
            try client.send("}")
            #expect(try client.receive(lines: 1) == wire(Reply.parseError("expecting value")))
            client.close()
            agent.expectAnswersSync()  // the previous client was served and closed
            #expect(readFile(agent.directory + "/agent.log") == [], "\(kind) log: \(render(readFile(agent.directory + "/agent.log") ?? []))")
            #expect(agent.output.isEmpty, "\(kind) stderr: \(agent.log)")
        }
    }

    /// Criticals are logged without `-v`: a state directory that does not
    /// exist makes start-up fail after the log file is open.
    @Test("Criticals reach the log file without -v", arguments: [AgentBinary.ours])
    func criticalsLogged(kind: AgentBinary) throws {
        let directory = try TemporaryDirectory()
        let state = directory("missing/qga.state")
        let run = try runAgent(kind, ["-m", "unix-listen", "-p", directory("sock"), "-t", directory("missing"),
                                      "-l", directory("agent.log")])
        let (lines, other) = parseLog(readFile(directory("agent.log")) ?? [])
        #expect(other.isEmpty)
        #expect(lines.allSatisfy { $0.level == "critical" }, "\(lines)")
        #expect(lines.map(\.message).dropFirst() == ["unable to create state file at path \(state)",
                                                     "failed to load persistent state", "error initializing guest agent"],
                "\(kind): \(lines); \(run)")
        #expect(run.stderr.isEmpty, "\(run)")
    }

    @Test("Without -l, log lines go to stderr", arguments: [AgentBinary.ours])
    func stderrLogging(kind: AgentBinary) throws {
        try withAgent(kind, extraArguments: ["-v"]) { agent throws in
            let client = try agent.connect()
            try client.send(Request.ping)
            _ = try client.receive(lines: 1)
            client.close()
            #expect(poll { Self.requestMessages(parseLog(agent.output).lines).last == "received EOF" }, "\(agent.log)")
            let (lines, other) = parseLog(agent.output)
            #expect(other.isEmpty, "\(kind): \(other)")
            #expect(Self.requestMessages(lines) == Self.pingTranscript, "\(kind): \(lines)")
        }
    }

    /// The start-up line is logged before the log file is opened: stderr.
    @Test("-v -l: the version line goes to stderr, not to the file", arguments: [AgentBinary.ours])
    func versionLine(kind: AgentBinary) throws {
        try withAgent(kind, extraArguments: ["-v", "-l", "$DIR/agent.log"]) { agent throws in
            let (lines, other) = parseLog(agent.output)
            #expect(other.isEmpty, "\(agent.log)")
            #expect(lines.count == 1 && lines[0].level == "debug" && lines[0].message.hasPrefix("Guest agent version ")
                        && lines[0].message.hasSuffix(" started"), "\(kind) stderr: \(agent.log)")
            let inFile = parseLog(readFile(agent.directory + "/agent.log") ?? []).lines
            #expect(!inFile.contains { $0.message.hasPrefix("Guest agent version ") })
        }
    }

    @Test("verbose=true in the config file is -v", arguments: [AgentBinary.ours])
    func verboseKey(kind: AgentBinary) throws {
        let directory = try TemporaryDirectory()
        let conf = try directory.write("qemu-ga.conf", "[general]\nverbose=true\n")
        try withAgent(kind, extraArguments: ["-l", "$DIR/agent.log"], environment: ["QGA_CONF": conf]) { agent throws in
            #expect(try agent.ask(Request.ping) == Reply.pong)
            let logFile = agent.directory + "/agent.log"
            #expect(poll { Self.requestMessages(parseLog(readFile(logFile) ?? []).lines).last == "received EOF" },
                    "\(kind): \(render(readFile(logFile) ?? []))")
            #expect(Self.requestMessages(parseLog(readFile(logFile) ?? []).lines) == Self.pingTranscript)
        }
    }

    /// Ours only: 7.2 logs from inside its signal handler and now and then
    /// aborts or hangs there (seen here: SIGABRT after SIGTERM with -v).
    @Test("SIGTERM is logged under -v: `received signal num 15, quitting`, exit 0")
    func signalLogged() throws {
        let kind = AgentBinary.ours
        let agent = try Agent(kind, extraArguments: ["-v", "-l", "$DIR/agent.log"])
        agent.expectAnswersSync()
        kill(agent.pid, SIGTERM)
        #expect(agent.waitForExit(timeout: .seconds(5)))
        #expect(agent.statusText == "exit status 0")
        let lines = parseLog(readFile(agent.directory + "/agent.log") ?? []).lines
        // (The sync client's EOF may be handled after the signal, before the loop ends.)
        #expect(lines.contains { $0.message == "received signal num 15, quitting" && $0.level == "debug" }, "\(kind): \(lines)")
        agent.finish(expectRunning: false)
    }

    // MARK: An unopenable log file

    @Test("An unopenable log file: the critical texts on stderr", arguments: [AgentBinary.ours])
    func logFileUnopenable(kind: AgentBinary) throws {
        let directory = try TemporaryDirectory()
        let run = try runAgent(kind, ["-m", "unix-listen", "-p", directory("sock"), "-t", directory.path,
                                      "-l", directory("missing/agent.log")])
        let (lines, other) = parseLog(run.stderr)
        #expect(other.isEmpty, "\(run)")
        #expect(lines.map(\.description) == ["critical: unable to open specified log file: No such file or directory",
                                             "critical: error initializing guest agent"], "\(run)")
        #expect(!fileExists(directory("qga.state")), "the state file was created after the failure")
    }

    @Test("An unopenable log file: exit status 1 (newest)")
    func logFileUnopenableExit() throws {
        let directory = try TemporaryDirectory()
        let run = try runAgent(.ours, ["-m", "unix-listen", "-p", directory("sock"), "-t", directory.path, "-l", directory.path])
        #expect(run.exitStatus == 1, "\(run)")
        #expect(parseLog(run.stderr).lines.first?.message == "unable to open specified log file: Is a directory", "\(run)")
    }
}

extension NeedsSystem {
    /// The tests above that compare with qemu-ga 7.2, and our agent's
    /// cases run on 7.2 itself: its answers are what ours are held to.
    @Suite("Daemon: logging, on qemu-ga 7.2") struct DaemonLoggingTestsNeedingSystem {
        /// The same exchange on both agents gives the same debug texts.
        @Test("-v debug texts: the same as 7.2")
        func debugTextsDifferential() throws {
            let steps: [(String, Int)] = [
                (Request.ping + Request.sync(1), 2),
                ("}", 1),
                (#"{"execute":"no-such-command","id":"x"}"#, 1),
                (#"{"execute":"guest-sync","arguments":{"id":"#, 0),
                (#"2}}"#, 1),
                (#"{"execute":"guest-ping","arguments":{"x":1}}"#, 1),
                ("[1,2]\n", 1),
                (String(repeating: " ", count: 5000) + Request.ping, 1),
            ]
            var transcripts: [[String]] = []
            for kind in [AgentBinary.ours, .reference] {
                try withAgent(kind, extraArguments: ["-v", "-l", "$DIR/agent.log"]) { agent throws in
                    let client = try agent.connect()
                    for (input, replies) in steps {
                        try client.send(input)
                        if replies > 0 { _ = try client.receive(lines: replies) } else { _ = try client.receiveUntilQuiet() }
                    }
                    client.close()
                    let logFile = agent.directory + "/agent.log"
                    #expect(poll { DaemonLoggingTests.requestMessages(parseLog(readFile(logFile) ?? []).lines).last == "received EOF" })
                    transcripts.append(DaemonLoggingTests.requestMessages(parseLog(readFile(logFile) ?? []).lines))
                }
            }
            #expect(transcripts[0] == transcripts[1], "ours:\n\(transcripts[0].joined(separator: "\n"))\n7.2:\n\(transcripts[1].joined(separator: "\n"))")
            #expect(transcripts[1].count > 10)
        }

        // The cases of our agent above, on qemu-ga 7.2 (the same bodies).

        @Test func logFileFormat() throws { try DaemonLoggingTests().logFileFormat(kind: .reference) }

        @Test func defaultLevels() throws { try DaemonLoggingTests().defaultLevels(kind: .reference) }

        @Test func criticalsLogged() throws { try DaemonLoggingTests().criticalsLogged(kind: .reference) }

        @Test func stderrLogging() throws { try DaemonLoggingTests().stderrLogging(kind: .reference) }

        @Test func versionLine() throws { try DaemonLoggingTests().versionLine(kind: .reference) }

        @Test func verboseKey() throws { try DaemonLoggingTests().verboseKey(kind: .reference) }

        @Test func logFileUnopenable() throws { try DaemonLoggingTests().logFileUnopenable(kind: .reference) }
    }
}

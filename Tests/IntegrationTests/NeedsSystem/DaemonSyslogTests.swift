#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
import TestRequirements

extension NeedsSystem {
    /// The syslog records (qemu-ga(8), LOGGING), received for real: the agent runs
    /// in a private mount namespace whose /dev/log leads to a datagram socket of
    /// the test (`syslogLauncher`): root, for `unshare --mount`.
    @Suite("Daemon: syslog")
    struct DaemonSyslogTests {
        /// An agent whose syslog(3) records arrive at `listener`.
        static func start(_ kind: AgentBinary, _ arguments: [String] = [], frozen: Bool = false) throws -> (Agent, SyslogListener) {
            var listener: SyslogListener?
            let agent = try Agent(kind, extraArguments: arguments, prepare: { directory in
                listener = try SyslogListener(path: directory + "/syslog.sock")
                if frozen { try writeFile(directory + "/qga.state.isfrozen", []) }
            }, launcher: syslogLauncher)
            return (agent, listener!)
        }

        static func records(_ listener: SyslogListener) -> [SyslogRecord?] { listener.drain().map(SyslogRecord.init) }

        @Test("guest-ping: `<14>… qemu-ga: info: guest-ping called`", arguments: [AgentBinary.ours, .reference])
        func ping(kind: AgentBinary) throws {
            let (agent, listener) = try Self.start(kind)
            defer { agent.finish() }
            #expect(Self.records(listener).isEmpty, "records at start-up")
            let client = try agent.connect()
            try client.send(Request.ping)
            #expect(try client.receive(lines: 1) == wire(Reply.pong))
            let raw = listener.drain()
            #expect(raw.count == 1, "\(kind): \(raw.map { render($0) })")
            let record = raw.first.flatMap(SyslogRecord.init)
            #expect(record == SyslogRecord(priority: 14, ident: "qemu-ga", message: "info: guest-ping called"),
                    "\(kind): \(raw.map { render($0) })")
            // One record per call, also for pipelined calls.
            try client.send(Request.ping + Request.sync(3) + Request.ping)
            _ = try client.receive(lines: 3)
            #expect(Self.records(listener) == Array(repeating: record, count: 2))
        }

        @Test("Commands without a syslog line send nothing; neither does -v add any", arguments: [AgentBinary.ours, .reference])
        func quietCommands(kind: AgentBinary) throws {
            let (agent, listener) = try Self.start(kind, ["-v"])
            defer { agent.finish() }
            let client = try agent.connect()
            try client.send(Request.sync(1) + Request.syncDelimited(2) + #"{"execute":"guest-info"}"# + "}"
                            + #"{"execute":"no-such-command"}"#)
            _ = try client.receive(lines: 5)
            client.close()
            agent.expectAnswersSync()
            #expect(listener.drain().map { render($0) } == [])
        }

        @Test("A blocked guest-ping sends no record", arguments: [AgentBinary.ours, .reference])
        func blocked(kind: AgentBinary) throws {
            let (agent, listener) = try Self.start(kind, ["-b", "guest-ping"])
            defer { agent.finish() }
            _ = try agent.ask(Request.ping)
            #expect(listener.drain().map { render($0) } == [])
        }

        @Test("Frozen: nothing is sent to syslog", arguments: [AgentBinary.ours, .reference])
        func frozen(kind: AgentBinary) throws {
            let (agent, listener) = try Self.start(kind, frozen: true)
            defer { DaemonStateTests.expectIgnoresSIGTERM(agent) }
            #expect(try agent.ask(Request.ping) == Reply.pong)
            #expect(listener.drain().map { render($0) } == [])
        }

        /// The same requests to both agents: the same records (timestamps aside).
        @Test("The same records as 7.2")
        func differential() throws {
            var results: [[String]] = []
            for kind in [AgentBinary.ours, .reference] {
                let (agent, listener) = try Self.start(kind)
                let client = try agent.connect()
                try client.send(Request.ping + Request.sync(1) + Request.ping + #"{"execute":"guest-ping","arguments":{"a":1}}"#)
                _ = try client.receive(lines: 4)
                results.append(listener.drain().map { bytes in
                    SyslogRecord(bytes).map { "<\($0.priority)>\($0.ident): \($0.message)" } ?? "malformed: " + render(bytes)
                })
                agent.finish()
            }
            #expect(results[0] == results[1], "ours: \(results[0])\n7.2: \(results[1])")
            #expect(results[1].count == 2)
        }
    }
}

extension SyslogRecord {
    init(priority: Int, ident: String, message: String) {
        self.init(Bytes("<\(priority)>Jan  1 00:00:00 \(ident): \(message)".utf8))!
    }
}

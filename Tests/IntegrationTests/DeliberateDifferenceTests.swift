import Foundation
import Testing

/// Where our agent deliberately differs from qemu-ga 7.2 (numbered as in
/// the project brief). These tests fail against the reference binary.
@Suite("Our agent: deliberate differences from 7.2")
struct DeliberateDifferenceTests {
    typealias R = Reply

    // MARK: 1. 0xFF is a silent flush (7.2: `JSON parse error, stray '\uFFFD'`)

    /// Partial inputs that leave the lexer or the streamer in the middle of
    /// something. Observed rows 45-48 are in `ObservedPairs.ours`.
    static let partials: [(String, String)] = [
        ("an unfinished argument", #"{"execute":"guest-sync","arguments":{"id":"#),
        ("an unfinished string", #"{"execute":"guest-sy"#),
        ("a backslash in a string", #""abc\"#),
        ("an unfinished \\u escape", #""\u12"#),
        ("a single-quoted string", "'abc"),
        ("a top-level number", "123"),
        ("a number awaiting its exponent", "1.5e"),
        ("a lone minus", "-"),
        ("a keyword", "tru"),
        ("open containers", #"[[[{"a":["#),
        ("a complete key and value in an open object", #"{"execute":"guest-ping""#),
    ]

    static let flushCases: [WireCase] = partials.enumerated().map { index, partial in
        let id = 700_000 + index
        return WireCase("0xFF after \(partial.0): the standard resync answers only the sync",
                        steps: [(partial.1, ""), ("«ff»" + Request.syncDelimited(id), "«ff»" + R.return("\(id)"))])
    } + [
        WireCase("0xFF while recovering from a lexical error",
                 steps: [("@", R.parseError("stray '@'")), ("«ff»" + Request.syncDelimited(9), "«ff»" + R.return("9"))]),
        WireCase("several 0xFF in a row", "«ff ff ff»" + Request.ping, R.pong),
        WireCase("0xFF between pipelined requests", Request.ping + "«ff»" + Request.ping, R.pong + R.pong),
        WireCase("0xFF inside an object, then a new request",
                 #"{"execute":«ff»{"execute":"guest-ping"}"#, R.pong),
        // 7.2 would be in lexical recovery after the 0xFF and skip `"abc"`.
        WireCase("0xFF restarts the lexer in its start state", "«ff»\"abc\"\n", R.notAnObject),
        WireCase("0xFF discards a 100 KB partial string", timeout: .seconds(30),
                 input: { [0x22] + Bytes(repeating: 0x61, count: 100_000) + wire("«ff»" + Request.ping) },
                 expected: { wire(R.pong) }),
        WireCase("0xFF discards a 1000-deep partial message", timeout: .seconds(30),
                 input: { wire(String(repeating: "[", count: 1000) + "«ff»" + Request.ping) },
                 expected: { wire(R.pong) }),
    ]

    @Test("0xFF flush", arguments: flushCases)
    func flush(_ exchange: WireCase) throws {
        try withAgent { agent in try exchange.check(on: agent) }
    }

    // MARK: 2. The newest interface

    @Test("guest-info reports version 11.1.0 and the registered commands")
    func guestInfo() throws {
        try withAgent { agent in
            let client = try agent.connect()
            try client.send(#"{"execute":"guest-info","id":"i"}"#)
            let reply = try client.receive(lines: 1)
            let text = String(decoding: reply, as: UTF8.self)
            #expect(text.hasPrefix(#"{"return": {"version": "11.1.0", "supported_commands": ["#), "\(text)")
            #expect(text.hasSuffix(#"]}, "id": "i"}"# + "\n"), "\(text)")
            for name in ["guest-sync-delimited", "guest-sync", "guest-ping", "guest-info"] {
                #expect(text.contains(#"{"enabled": true, "name": "\#(name)", "success-response": true}"#),
                        "\(name) missing from \(text)")
            }
            #expect(!text.contains("guest-get-devices"))
            let object = try JSONSerialization.jsonObject(with: Data(reply)) as? [String: Any]
            let result = try #require(object?["return"] as? [String: Any])
            let commands = try #require(result["supported_commands"] as? [[String: Any]])
            let names = commands.compactMap { $0["name"] as? String }
            #expect(names.count == commands.count && Set(names).count == names.count, "names: \(names)")
            for command in commands {
                #expect(Set(command.keys) == ["enabled", "name", "success-response"], "\(command)")
            }
        }
    }

    @Test("guest-get-devices is not registered")
    func guestGetDevices() throws {
        try withAgent { agent in
            try WireCase("guest-get-devices", #"{"execute":"guest-get-devices","id":1}"#,
                         #"{"id": 1, "error": {"class": "CommandNotFound", "desc": "The command guest-get-devices has not been found"}}"# + "\n")
                .check(on: agent)
        }
    }

    // MARK: 3 and 4. Clean parser per client; vanishing clients never hurt

    /// A client leaves in the middle of a message; the next client starts
    /// from a clean parser (7.2 would continue the stale partial).
    @Test("A client leaving mid-message leaves no partial input behind", arguments: partials.map(\.1))
    func vanishMidMessage(partial: String) throws {
        try withAgent { agent in
            let first = try agent.connect()
            try first.send(partial)
            first.close()
            try expectOnlySyncAnswer(agent, id: 31)
        }
    }

    @Test("A client half-closing mid-message leaves no partial input behind")
    func halfCloseMidMessage() throws {
        try withAgent { agent in
            let first = try agent.connect()
            try first.send(Request.ping + #"{"execute":"guest-sync","arguments":{"id":1"#)
            try first.halfClose()
            expectBytes(try first.receiveUntilClosed(), wire(R.pong), "answers before EOF")
            try expectOnlySyncAnswer(agent, id: 32)
        }
    }

    /// The client closes with a reply queued unread (the agent's next read
    /// gets ECONNRESET; 7.2 exits).
    @Test("A client closing with a reply unread")
    func vanishWithReplyUnread() throws {
        try withAgent { agent in
            let first = try agent.connect()
            try first.send(Request.ping)
            try first.waitUntilReplyQueued()
            first.close()
            try expectOnlySyncAnswer(agent, id: 33)
        }
    }

    @Test("A client closing mid-message with a reply unread")
    func vanishMidMessageWithReplyUnread() throws {
        try withAgent { agent in
            let first = try agent.connect()
            try first.send(Request.ping + #"{"execute":"guest-sync","arguments":"#)
            try first.waitUntilReplyQueued()
            first.close()
            try expectOnlySyncAnswer(agent, id: 34)
        }
    }

    /// 200,000 pipelined pings, never reading: the agent blocks writing its
    /// replies; then the client vanishes.
    @Test("A client vanishing with a large reply unread")
    func vanishWithLargeReplyUnread() throws {
        try withAgent { agent in
            let first = try agent.connect()
            let requests = wire(String(repeating: Request.ping, count: 200_000))
            let written = try first.sendWithoutReading(requests)
            #expect(written > 0 && written < requests.count, "the agent should have stopped reading: \(written) bytes")
            first.close()
            try expectOnlySyncAnswer(agent, id: 35, timeout: .seconds(30))
        }
    }

    /// The next client's guest-sync is answered, with nothing before it.
    func expectOnlySyncAnswer(_ agent: Agent, id: Int, timeout: Duration = .seconds(5),
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(agent.isAlive(), "agent exited: \(agent.statusText); log: \(agent.log)", sourceLocation: sourceLocation)
        let next = try agent.connect()
        try next.send(Request.sync(id))
        let answer = try next.receive(through: wire(R.return("\(id)")), timeout: timeout)
        expectBytes(answer, wire(R.return("\(id)")), "next client's first answer", sourceLocation: sourceLocation)
    }
}

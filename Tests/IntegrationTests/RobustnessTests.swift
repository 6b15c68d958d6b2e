import Testing

/// Pipelining, byte-wise input, huge tokens, deep nesting, invalid UTF-8,
/// garbage and connection handling, on our agent. Every test ends with the
/// agent still running and answering guest-sync (`withAgent`).
@Suite("Our agent: robustness")
struct RobustnessTests {
    @Test("Exact answer", arguments: RobustnessCases.all)
    func exactAnswer(_ exchange: WireCase) throws {
        try withAgent { agent in try exchange.check(on: agent) }
    }

    /// Random bytes (0xFF included), then the standard client resynchronisation
    /// (guest-sync-delimited in qemu-ga-ref(7)): 0xFF + guest-sync-delimited R
    /// must be answered with `\xff{"return": R}\n`, which ends the output;
    /// every earlier line is an error, and the only raw 0xFF is the sentinel.
    @Test("Garbage, then 0xFF resynchronisation", arguments: 1...4)
    func garbageThenResync(seed: Int) throws {
        try withAgent { agent in
            let client = try agent.connect()
            let id = 600_000 + seed
            let alphabet = seed.isMultiple(of: 2) ? jsonishAlphabet + [0xFF] : nil
            try client.send(garbage(seed: UInt64(seed), count: 65_536, alphabet: alphabet))
            try client.send(wire("«ff»" + Request.syncDelimited(id)))
            let output = try client.receive(through: wire("«ff»" + Reply.return("\(id)")), timeout: .seconds(30))
            #expect(output.filter { $0 == 0xFF }.count == 1, "a raw 0xFF outside the sentinel: \(render(output))")
            let errorPrefix = wire(#"{"error": {"class": "GenericError", "desc": ""#)
            let lines = output.split(separator: 0x0A).dropLast()
            for line in lines where !line.starts(with: errorPrefix) {
                Issue.record("a reply to garbage that is not an error: \(render(line))")
            }
            #expect(client.pending.isEmpty, "bytes after the sync reply: \(render(client.pending))")
        }
    }

    @Test("Half-close: requests before EOF are answered, then the agent closes")
    func halfClose() throws {
        try withAgent { agent in
            let transcript = try Scenarios.halfClose(agent)
            for (index, (actual, expected)) in zip(transcript, Scenarios.halfCloseExpected).enumerated() {
                expectBytes(actual, expected, "half-close transcript \(index)")
            }
        }
    }

    @Test("One client at a time; the next is served when the first leaves")
    func oneClientAtATime() throws {
        try withAgent { agent in
            let transcript = try Scenarios.oneClientAtATime(agent)
            for (index, (actual, expected)) in zip(transcript, Scenarios.oneClientAtATimeExpected).enumerated() {
                expectBytes(actual, expected, "one-client-at-a-time transcript \(index)")
            }
        }
    }

    /// A client that reads far slower than it writes: replies the socket
    /// cannot take yet wait in the agent's output queue (its input paused
    /// meanwhile) and all of them arrive, in order.
    @Test("A slow reader gets every reply")
    func slowReader() throws {
        try withAgent { agent in
            let client = try agent.connect()
            let batches = 40, perBatch = 1000, readPerBatch = 400
            let ping = wire(#"{"execute":"guest-ping"}"#)
            let batch = Array((0..<perBatch).map { _ in ping }.joined())
            var received: Bytes = []
            for _ in 0..<batches {
                try client.send(batch, timeout: .seconds(30))
                received += try client.receive(lines: readPerBatch, timeout: .seconds(30))
            }
            received += try client.receive(lines: batches * (perBatch - readPerBatch), timeout: .seconds(30))
            #expect(received == Array(repeating: wire(Reply.return("{}")), count: batches * perBatch).flatMap { $0 })
            #expect(client.pending.isEmpty)
        }
    }
}

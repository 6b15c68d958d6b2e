import Testing
import TestRequirements

extension NeedsSystem {
    /// The same inputs to our agent and to the reference qemu-ga 7.2 (both
    /// started in each test), comparing the answers byte for byte.
    ///
    /// Excluded, because they are deliberate differences:
    /// - any input containing 0xFF: observed rows 45-48 (`ObservedPairs.ours`),
    ///   the 0xFF flush cases, garbage containing 0xFF (difference 1);
    /// - guest-info's answer, guest-get-devices and disabled-command texts
    ///   (difference 2); the commands that reach the machine are compared in
    ///   `ControlDifferentialTests` and `GuestInfoDifferentialTests` instead;
    /// - input spread over several clients where one leaves mid-message
    ///   (difference 3) or with replies unread (difference 4; 7.2 exits).
    /// Observed rows 53-58 are not replayed here (see `ObservedPairs`).
    @Suite("Differential: our agent vs qemu-ga 7.2")
    struct DifferentialTests {
        @Test("Same answer",
              arguments: ObservedPairs.shared + RobustnessCases.all + DifferentialInputs.all + DifferentialInputs.garbageCases)
        func sameAnswer(_ exchange: WireCase) throws {
            try withBothAgents { ours, reference in
                try exchange.compare(ours: ours, reference: reference)
            }
        }

        @Test("Same answers, one byte per write",
              arguments: DifferentialInputs.all.map(\.fedBytewise))
        func sameAnswerFedBytewise(_ exchange: WireCase) throws {
            try withBothAgents { ours, reference in
                try exchange.compare(ours: ours, reference: reference)
            }
        }

        @Test("Same half-close transcript")
        func halfClose() throws {
            try withBothAgents { ours, reference in
                compare(try Scenarios.halfClose(ours), try Scenarios.halfClose(reference), "half-close")
            }
        }

        @Test("Same one-client-at-a-time transcript")
        func oneClientAtATime() throws {
            try withBothAgents { ours, reference in
                compare(try Scenarios.oneClientAtATime(ours), try Scenarios.oneClientAtATime(reference),
                        "one client at a time")
            }
        }

        /// The expectations of the differential tests are the reference's
        /// answers, so the reference must be the 7.2 binary they were written for.
        @Test("The reference is qemu-ga 7.2")
        func referenceIs72() throws {
            try withAgent(.reference) { reference in
                let client = try reference.connect()
                try client.send(#"{"execute":"guest-info"}"#)
                let reply = String(decoding: try client.receive(lines: 1), as: UTF8.self)
                #expect(reply.hasPrefix(#"{"return": {"version": "7.2."#), "reference \(reference.binary) says \(reply.prefix(80))")
            }
        }

        func compare(_ ours: [Bytes], _ reference: [Bytes], _ what: String,
                     sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(ours.count == reference.count, sourceLocation: sourceLocation)
            for (index, (mine, theirs)) in zip(ours, reference).enumerated() {
                expectBytes(mine, theirs, "\(what), part \(index): ours (actual) vs 7.2 (expected)",
                            sourceLocation: sourceLocation)
            }
        }
    }
}

import Testing

/// Our agent answers every observed-7.2 protocol-level pair byte for byte (rows
/// 53-58 are covered elsewhere, see `ObservedPairs`).
@Suite("Our agent: observed 7.2 request/response pairs")
struct ObservedPairsTests {
    @Test("Exact answer", arguments: ObservedPairs.shared + ObservedPairs.ours)
    func exactAnswer(_ exchange: WireCase) throws {
        try withAgent { agent in try exchange.check(on: agent) }
    }

    /// The same, with every byte in its own write: message boundaries must
    /// not depend on how the input is split into reads.
    @Test("Exact answer, one byte per write",
          arguments: (ObservedPairs.shared + ObservedPairs.ours).filter { !$0.large }.map(\.fedBytewise))
    func exactAnswerFedBytewise(_ exchange: WireCase) throws {
        try withAgent { agent in try exchange.check(on: agent) }
    }
}

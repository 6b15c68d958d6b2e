@testable import GuestAgent

/// An agent on a host channel in memory, in the spirit of swift-nio's
/// EmbeddedChannel: the test is the host, writes bytes in and reads the
/// agent's reply bytes out, synchronously, with no descriptor and no main
/// loop. Each `writeInbound` is one chunk the agent read; each send of the
/// agent is kept apart, so that a test can tell one write from two.
final class InMemoryChannel {
    let agent: GAState
    // The agent holds the endpoint and the endpoint's callbacks hold the
    // agent unowned: this object owns both, so there is no cycle to leak.
    private let endpoint = Endpoint()

    private final class Endpoint: HostChannel {
        var onInput: (UnsafeRawBufferPointer) -> Void = { _ in }
        var onDisconnect: () -> Void = {}
        var writes: [[UInt8]] = []

        func send(_ bytes: [UInt8]) { writes.append(bytes) }
    }

    /// `agent` (by default one with the default configuration: enough for
    /// the sync, ping and parse-error paths) answering this channel.
    init(agent: GAState = GAState(system: .host())) {
        self.agent = agent
        agent.attach(endpoint)
    }

    /// The host sends `bytes`; the agent reads them as one chunk.
    func writeInbound(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { endpoint.onInput($0) }
    }

    func writeInbound(_ text: String) { writeInbound(Array(text.utf8)) }

    /// Everything the agent sent since the last read, in order.
    func readOutbound() -> [UInt8] { readWrites().flatMap { $0 } }

    /// The agent's sends since the last read, each on its own.
    func readWrites() -> [[UInt8]] {
        defer { endpoint.writes = [] }
        return endpoint.writes
    }

    /// The host goes away (EOF, a hang-up).
    func hangUp() { endpoint.onDisconnect() }
}

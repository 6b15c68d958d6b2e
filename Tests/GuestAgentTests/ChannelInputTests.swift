import QMPJSON
import Testing
@testable import GuestAgent

/// The channel's input path on an in-memory channel: chunks in, the exact
/// reply bytes out, each send of the agent on its own. (The transports
/// themselves are the pty and socket tests.)
@Suite struct ChannelInputTests {
    private static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
    private static let sync7 = bytes(#"{"execute":"guest-sync","arguments":{"id":7}}"#)
    private static let return7 = bytes(#"{"return": 7}"#) + [0x0A]
    private static func delimited(_ id: Int) -> [UInt8] {
        bytes(#"{"execute":"guest-sync-delimited","arguments":{"id":\#(id)}}"#)
    }
    private static func delimitedReturn(_ id: Int) -> [UInt8] { [0xFF] + bytes(#"{"return": \#(id)}"#) + [0x0A] }
    private static let ping = bytes(#"{"execute":"guest-ping"}"#)
    private static let pong = bytes(#"{"return": {}}"#) + [0x0A]
    private static func error(_ desc: String) -> [UInt8] {
        bytes(#"{"error": {"class": "GenericError", "desc": "\#(desc)"}}"#) + [0x0A]
    }

    @Test func aRequestSplitAtEveryByteIsAnsweredOnceItIsWhole() {
        for request in [Self.sync7, [0xFF] + Self.delimited(42)] {
            let expected = request == Self.sync7 ? Self.return7 : Self.delimitedReturn(42)
            for split in 1..<request.count {
                let host = InMemoryChannel()
                host.writeInbound(Array(request[..<split]))
                #expect(host.readWrites().isEmpty, "split at \(split)")
                host.writeInbound(Array(request[split...]))
                #expect(host.readWrites() == [expected], "split at \(split)")
            }
            // One byte per read.
            let host = InMemoryChannel()
            for byte in request.dropLast() {
                host.writeInbound([byte])
                #expect(host.readWrites().isEmpty)
            }
            host.writeInbound([request.last!])
            #expect(host.readOutbound() == expected)
        }
    }

    /// The host's 0xFF discards whatever part of a request the agent holds,
    /// wherever it was cut, without an error reply.
    @Test func a0xFFFlushesThePartialInputAtEveryPosition() {
        for cut in 0..<Self.sync7.count {
            let partial = Array(Self.sync7[..<cut])
            let host = InMemoryChannel()
            host.writeInbound(partial + [0xFF] + Self.sync7)
            #expect(host.readOutbound() == Self.return7, "cut at \(cut), one chunk")
            // The flush in a chunk of its own, between the two halves.
            host.writeInbound(partial)
            host.writeInbound([0xFF])
            host.writeInbound(Self.sync7)
            #expect(host.readOutbound() == Self.return7, "cut at \(cut), three chunks")
        }
        // A flush ends the recovery after a stray byte too: one error, then the request.
        let host = InMemoryChannel()
        host.writeInbound(Self.bytes("@ garbage") + [0xFF] + Self.sync7)
        #expect(host.readOutbound() == Self.error("JSON parse error, stray '@'") + Self.return7)
    }

    /// guest-sync-delimited's reply, and only that reply, starts with 0xFF.
    @Test func guestSyncDelimitedPutsOne0xFFBeforeItsOwnReply() {
        let host = InMemoryChannel()
        host.writeInbound([0xFF] + Self.delimited(1) + Self.ping + Self.delimited(2) + Self.sync7)
        // The replies to one chunk go out in one write.
        #expect(host.readWrites() == [Self.delimitedReturn(1) + Self.pong + Self.delimitedReturn(2) + Self.return7])
        // The flag was spent: the next chunk's reply has no 0xFF.
        host.writeInbound(Self.ping)
        #expect(host.readOutbound() == Self.pong)
        // Refused arguments: the command did not run, no 0xFF either.
        host.writeInbound(Self.bytes(#"{"execute":"guest-sync-delimited","arguments":{"id":"x"}}"#) + Self.ping)
        #expect(host.readOutbound() == Self.error("Invalid parameter type for 'id', expected: integer") + Self.pong)
        #expect(!host.agent.delimitResponse)
    }

    @Test func severalRequestsInOneChunkAreAnsweredInOrderInOneWrite() {
        let host = InMemoryChannel()
        let requests = (1...20).flatMap { Self.bytes(#"{"execute":"guest-sync","arguments":{"id":\#($0)}}"#) }
        // The last one is cut: its reply comes with the next chunk.
        host.writeInbound(requests + Self.sync7.prefix(10))
        #expect(host.readWrites() == [(1...20).flatMap { Self.bytes(#"{"return": \#($0)}"#) + [0x0A] }])
        host.writeInbound(Array(Self.sync7.dropFirst(10)) + Self.ping)
        #expect(host.readWrites() == [Self.return7 + Self.pong])
    }

    /// A command that may end the machine without a reply (shutdown,
    /// suspend): what was answered before it goes out first. Blocked here,
    /// so that it only answers an error.
    @Test func repliesBeforeACommandThatMayNotReturnGoOutFirst() {
        var config = GAConfig()
        config.blockedRPCs = ["guest-shutdown"]
        let host = InMemoryChannel(agent: GAState(config: config, system: .host()))
        host.writeInbound(Self.ping + Self.bytes(#"{"execute":"guest-shutdown"}"#) + Self.ping)
        let disabled = Self.bytes(#"{"error": {"class": "CommandNotFound", "desc": "Command guest-shutdown has been disabled: the command is not allowed"}}"#) + [0x0A]
        #expect(host.readWrites() == [Self.pong, disabled + Self.pong])
    }

    @Test func malformedInputGetsAnErrorPerMessageAndTheNextRequestIsAnswered() {
        let host = InMemoryChannel()
        host.writeInbound(Self.bytes(#"{"execute":"guest-sync","arguments":{"id":7}}}"#) + Self.ping)
        #expect(host.readOutbound() == Self.return7 + Self.error("JSON parse error, expecting value") + Self.pong)
        host.writeInbound(Self.bytes("[1,2]") + Self.bytes(#"{"execute":1}"#) + Self.ping)
        #expect(host.readOutbound() == Self.error("QMP input must be a JSON object")
                    + Self.error("QMP input member 'execute' must be a string") + Self.pong)
        // Invalid UTF-8: one error (written as JSON escapes), and the lexer
        // recovers before the next request.
        host.writeInbound([0xC3, 0x28] + Self.ping)
        #expect(host.readOutbound() == Self.error(#"JSON parse error, stray '\uFFFD'"#) + Self.pong)
    }

    @Test func oversizedInputGetsQEMUsLimitErrors() {
        let host = InMemoryChannel()
        // Nesting deeper than 1024: the message is dropped at the 1025th
        // bracket, and each closing bracket is then a stray one.
        let open = [UInt8](repeating: UInt8(ascii: "["), count: 1025)
        let close = [UInt8](repeating: UInt8(ascii: "]"), count: 1025)
        host.writeInbound(open + close + Self.ping)
        let strayClosers = (0..<1025).flatMap { _ in Self.error("JSON parse error, expecting value") }
        #expect(host.readOutbound() == Self.error("JSON nesting depth limit exceeded") + strayClosers + Self.pong)
        // A token over the size limit (the agent's parser given a small one:
        // the 64 MiB of QEMU's are the JSON module's tests' business); the
        // rest of it is flushed by the host's 0xFF.
        host.agent.parser = JSONMessageParser(limits: JSONLimits(maxTokenSize: 64))
        host.writeInbound(Self.bytes("\"" + String(repeating: "x", count: 70)) + [0xFF] + Self.ping)
        #expect(host.readOutbound() == Self.error("JSON token size limit exceeded") + Self.pong)
    }

    /// A new host does not inherit half a message from the last one.
    @Test func aHostThatLeavesTakesItsPartialInputWithIt() {
        let host = InMemoryChannel()
        host.writeInbound(Array(Self.sync7.prefix(20)))
        host.hangUp()
        host.writeInbound(Self.ping)
        #expect(host.readOutbound() == Self.pong)
    }
}

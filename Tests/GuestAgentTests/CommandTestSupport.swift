import Glibc
import QMPJSON
import Testing
@testable import GuestAgent

/// Talks to a GAState as the channel does: request bytes are fed to a
/// JSONMessageParser in 4 KiB chunks (the channel's read size, so long
/// strings take the lexer's long-string path) and each parsed request is
/// dispatched; the reply lines come back without their newline.
@MainActor
final class CommandClient {
    let agent: GAState
    private var parser = JSONMessageParser()

    init(_ agent: GAState) { self.agent = agent }

    /// An agent whose state directory is `directory`.
    convenience init(stateDirectory directory: String) throws {
        self.init(GAState(system: .host(), persistentState: try PersistentState.load(directory: directory, create: true)))
    }

    func replies(_ request: [UInt8], chunkSize: Int = 4096) -> [String] {
        var lines: [String] = []
        var offset = 0
        repeat {
            let end = min(request.count, offset + chunkSize)
            for output in parser.feed(request[offset..<end]) {
                var bytes: [UInt8] = []
                agent.answer(output, into: &bytes)
                if !bytes.isEmpty {
                    bytes.removeLast()
                    lines.append(String(decoding: bytes, as: UTF8.self))
                }
            }
            offset = end
        } while offset < request.count
        return lines
    }

    /// The one reply to `request`.
    func ask(_ request: String, sourceLocation: SourceLocation = #_sourceLocation) -> String {
        let lines = replies(Array(request.utf8))
        #expect(lines.count == 1, "replies to \(request.prefix(200)): \(lines)", sourceLocation: sourceLocation)
        return lines.first ?? ""
    }

    /// The `return` value of `request` (recorded as an issue if it failed).
    func value(_ request: String, sourceLocation: SourceLocation = #_sourceLocation) -> JSONValue {
        let line = ask(request, sourceLocation: sourceLocation)
        // Replies may be bigger than requests can be (a 48 MiB read).
        var parser = JSONMessageParser(limits: JSONLimits(maxTokenSize: 1 << 30))
        guard case .value(.object(let reply))? = parser.feed(Array(line.utf8) + [0x0A]).first,
              let result = reply["return"] else {
            Issue.record("\(request.prefix(200)) failed: \(line.prefix(300))", sourceLocation: sourceLocation)
            return .null
        }
        return result
    }
}

func errorReply(_ desc: String) -> String { #"{"error": {"class": "GenericError", "desc": "\#(desc)"}}"# }

extension JSONValue {
    subscript(member: String) -> JSONValue? {
        if case .object(let object) = self { return object[member] }
        return nil
    }

    var int: Int64? { if case .int(let value) = self { value } else { nil } }
    var string: String? { if case .string(let value) = self { value } else { nil } }
    var bool: Bool? { if case .bool(let value) = self { value } else { nil } }
    /// A base64 string, decoded as UTF-8 text.
    var base64Text: String? { string.flatMap { try? Base64.decode($0) }.map { String(decoding: $0, as: UTF8.self) } }
}

/// A file's bytes, or nil if it cannot be read.
func fileBytes(_ path: String) -> [UInt8]? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    return bytes
}

/// Deterministic pseudo-random bytes.
func testBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    var bytes = [UInt8]()
    bytes.reserveCapacity(count + 8)
    while bytes.count < count {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        withUnsafeBytes(of: z) { bytes.append(contentsOf: $0) }
    }
    bytes.removeLast(bytes.count - count)
    return bytes
}

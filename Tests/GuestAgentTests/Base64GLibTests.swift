import CGLib
import Glibc
import QMPJSON
import Testing

// Our Base64 against what qemu-ga runs: QEMU's character check, then
// GLib's g_base64_decode; GLib's g_base64_encode for output.

/// qemu-ga's qbase64_decode: nil for "Base64 data contains invalid characters".
private func referenceDecode(_ text: [UInt8]) -> [UInt8]? {
    let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n".utf8)
    guard text.allSatisfy(allowed.contains) else { return nil }
    var length: gsize = 0
    let decoded = (text + [0]).withUnsafeBufferPointer { buffer in
        buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) { g_base64_decode($0, &length) }
    }
    defer { g_free(decoded) }
    return Array(UnsafeBufferPointer(start: decoded, count: Int(length)))
}

private func referenceEncode(_ bytes: [UInt8]) -> String {
    let encoded = bytes.withUnsafeBufferPointer { g_base64_encode($0.baseAddress, gsize($0.count)) }
    defer { g_free(encoded) }
    return String(cString: encoded!)
}

private func ourDecode(_ text: [UInt8]) -> [UInt8]? {
    text.withUnsafeBytes { try? Base64.decode($0) }
}

/// Pseudo-random text over `alphabet`, `count` characters.
private func randomText(_ rng: inout SystemRandomNumberGenerator, count: Int, alphabet: [UInt8]) -> [UInt8] {
    (0..<count).map { _ in alphabet.randomElement(using: &rng)! }
}

@Suite("Base64 against QEMU's check and GLib")
struct Base64GLibTests {
    static let edgeCases: [String] = [
        "", "\n", "\n\n\n", "=", "==", "===", "====", "=====", "========", "A", "AB", "ABC", "ABCD", "ABCDE",
        "QUJ", "QUJDRA", "QQ", "QQ==", "QQ=", "QQ===", "QQ==QUJD", "Q===", "Q=Q=", "=QQQ", "==QQ", "A=B=",
        "QUJD\n", "\nQUJD", "QU\nJD", "Q\nU\nJ\nD", "QUJD\n\n\nRA==", "aGVsbG8gd29ybGQK", "aGVs\nbG8=\n",
        "++++", "////", "+/+/", "AAAA", "////////", "QUJDQUJDQUJD", "QUJDQUJDQUJDQQ", "QUJDQUJDQUJDQQ=",
        "QUJDQUJD=UJDQUJD", "QUJDQUJDQ=JDQUJD", "QUJDQUJDQU=DQUJD", "QUJDQUJDQUJ=QUJD", "QUJDQUJDQUJDQUJ=",
        "QUJDQUJ\nQUJDQUJD", "QUJDQUJDQUJDQUJDQUJD====", "aGVs bG8=", "aGVs@", "a-b_", "aGVs\r\n", "a\tb",
        "QUJD\u{0}", "é", "QUJDQUJDQUJDQUJD!", "QUJDQUJDQUJDQUJDQUJDQUJD,",
    ]

    @Test("Decoding: the edge cases qemu-ga 7.2 was observed on, and more")
    func edgeCasesDecodeAsQemuGa() {
        for text in Self.edgeCases {
            let bytes = Array(text.utf8)
            #expect(ourDecode(bytes) == referenceDecode(bytes), "\(text.debugDescription)")
        }
    }

    @Test("Decoding: random text near the alphabet, all lengths up to 70")
    func randomShortText() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("AQg/+=\n".utf8) + Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for _ in 0..<20_000 {
            let text = randomText(&rng, count: Int.random(in: 0...70, using: &rng), alphabet: alphabet)
            #expect(ourDecode(text) == referenceDecode(text), "\(String(decoding: text, as: UTF8.self).debugDescription)")
        }
    }

    @Test("Decoding: long text with padding and newlines sprinkled in, streamed in small pieces with limits")
    func longTextInPieces() {
        var rng = SystemRandomNumberGenerator()
        let plain = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        for round in 0..<40 {
            var text = randomText(&rng, count: Int.random(in: 1000...5000, using: &rng), alphabet: plain)
            for _ in 0..<(round % 10) {
                let position = Int.random(in: 0..<text.count, using: &rng)
                text[position] = Bool.random(using: &rng) ? UInt8(ascii: "=") : UInt8(ascii: "\n")
            }
            guard let expected = referenceDecode(text) else {
                Issue.record("generated text refused")
                continue
            }
            #expect(ourDecode(text) == expected)
            text.withUnsafeBytes { input in
                #expect((try? Base64.decodedCount(input)) == expected.count)
                for pieceSize in [6, 7, 8, 9, 13, 64, 4096] {
                    let limit = Int.random(in: 0...expected.count, using: &rng)
                    var pieces: [UInt8] = []
                    var buffer = [UInt8](repeating: 0, count: pieceSize)
                    let produced = buffer.withUnsafeMutableBytes { buffer in
                        Base64.decodeChecked(input, limit: limit, into: buffer) { piece in
                            pieces += piece
                            return true
                        }
                    }
                    #expect(produced == limit && pieces == Array(expected.prefix(limit)), "pieces of \(pieceSize), limit \(limit)")
                }
            }
        }
    }

    @Test("Decoding stops when the consumer says so")
    func consumerStops() {
        let text = Array(String(repeating: "QUJD", count: 100).utf8)
        var calls = 0
        var buffer = [UInt8](repeating: 0, count: 6)
        let produced = text.withUnsafeBytes { input in
            buffer.withUnsafeMutableBytes { buffer in
                Base64.decodeChecked(input, limit: 300, into: buffer) { _ in
                    calls += 1
                    return calls < 3
                }
            }
        }
        #expect(calls == 3)
        #expect(produced == 18)
    }

    @Test("Encoding: standard and padded, as GLib's, for every length up to 300")
    func encodingMatchesGLib() {
        var rng = SystemRandomNumberGenerator()
        for length in 0...300 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(Base64.encode(bytes) == referenceEncode(bytes), "length \(length)")
        }
    }

    @Test("Encoding in place: fill may write fewer bytes than it was given room for")
    func encodingInPlace() {
        var rng = SystemRandomNumberGenerator()
        for room in [0, 1, 2, 3, 4, 5, 100, 4096] {
            for written in Set([0, room / 2, max(0, room - 1), room]) {
                let bytes = (0..<written).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let encoded = Base64.encode(reading: room) { storage in
                    #expect(storage.count == room)
                    storage.copyBytes(from: bytes)
                    return written
                }
                #expect(encoded == referenceEncode(bytes), "room \(room), written \(written)")
            }
        }
    }
}

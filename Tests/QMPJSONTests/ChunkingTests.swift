import FuzzingSupport
import Testing
import QMPJSON

// Feeding an input in pieces of any size gives exactly the outputs of
// feeding it whole: the lexer's state survives every chunk boundary.

private let corpus: [[UInt8]] = {
    var inputs: [[UInt8]] = [
        #"{"execute":"guest-ping"}"#,
        #"{"execute":"guest-sync","arguments":{"id":123}}{"execute":"guest-ping"}"#,
        #"{"execute":"guest-ping","id":[1,{"a":null}]}"#,
        #"{'execute':'guest-ping', 'id':'a"b'} {"execute":"guest-ping","id":"a\'b"}"#,
        #"{"execute":"guest-ping","id":"\u00e9\ud83d\ude00é\u0001/\/"}"#,
        #"{"execute":"guest-ping","id":"\b\f\n\r\t\"\\\u0000"}"#,
        #"[1, -2, 3.5, -0, 1e3, 1E+2, 25e-1, 18446744073709551615, 123456789012345678901234567890, true, false, null]"#,
        #"1 2 3 "a" 'b' true null nul1 foo "#,
        #"{"execute":"guest-ping", @ "id": 1}"#,
        #"{"execute":"guest-sync","arguments":{"id":01}}"#,
        "@ garbage\n{\"execute\":\"guest-ping\"}@\t[1]@\r@\u{01}",
        #"}]:,{"a":1]{"a":1 "b":2}[1 2]{1:2}{"a" 1}{"a":1,"a":2}"#,
        #""\x" "\ud800" "\u12" "\uD83D\u0041" "\uD83F\uDFFF" ".5 +1 -} 1.} 01 0e5 "#,
        "{\"execute\":\"guest-\u{01}ping\"}{\"execute\":\u{0C}\"guest-ping\"}",
        String(repeating: "[", count: 1030) + String(repeating: "]", count: 1030),
        "[" + String(repeating: "\"abcdefghij\\n\\u00e9\",", count: 500) + "0]",
        "\"" + String(repeating: "long string with é and \\\" escapes ", count: 300) + "\"",
    ].map { Array($0.utf8) }
    inputs += [
        bytes("\"a\u{C0}\u{80}b\" \"\u{C3}\u{28}\" \"\u{ED}\u{A0}\u{80}\" \"a\u{C0}\u{80}b\u{01}"),
        bytes("\u{00}\u{80}\u{FE}\"gu\u{FE}{\"execute\":\"guest-ping\"}12\u{FE}"),
        bytes("{\"execute\":\"gu\u{FF}{\"execute\":\"guest-ping\"}12\u{FF}\u{FF}nul\u{FF}@ x\u{FF}[1]"),
        bytes("\"a\\\u{FF}[1] 1.\u{FF}[2] 1e\u{FF}[3] 1e+\u{FF}[4] - \u{FF}'x\u{FF}[5]"),
    ]
    return inputs
}()

private func feedInChunks(_ input: [UInt8], sizes: inout SplitMix64, maxChunk: Int, limits: JSONLimits = .qemu) -> [JSONParserOutput] {
    var parser = JSONMessageParser(limits: limits)
    var out: [JSONParserOutput] = []
    var offset = 0
    while offset < input.count {
        let n = min(input.count - offset, Int.random(in: 1...maxChunk, using: &sizes))
        out += parser.feed(input[offset..<offset + n])
        offset += n
    }
    return out
}

@Suite struct Chunking {
    @Test func oneByteAtATime() {
        for input in corpus {
            var parser = JSONMessageParser()
            var out: [JSONParserOutput] = []
            for b in input { out += parser.feed([b]) }
            #expect(out == parseAll(input), "\(String(decoding: input.prefix(60), as: UTF8.self))")
        }
    }

    @Test func randomSplits() {
        var rng = SplitMix64(seed: 0x5EED)
        for input in corpus {
            let whole = parseAll(input)
            #expect(!whole.isEmpty || input.isEmpty)
            for round in 0..<40 {
                let maxChunk = [2, 3, 7, 16, 64, 4096][round % 6]
                #expect(feedInChunks(input, sizes: &rng, maxChunk: maxChunk) == whole,
                        "\(String(decoding: input.prefix(60), as: UTF8.self)) round \(round)")
            }
        }
    }

    @Test func everyInputConcatenatedAndSplitAnywhere() {
        // Pipelined messages of all kinds; the error recovery of one input
        // may swallow the start of the next, but the split never matters.
        var all: [UInt8] = []
        for input in corpus { all += input; all += [0x0A] }
        let whole = parseAll(all)
        var rng = SplitMix64(seed: 99)
        for maxChunk in [1, 2, 5, 13, 100, 1000] {
            #expect(feedInChunks(all, sizes: &rng, maxChunk: maxChunk) == whole, "max chunk \(maxChunk)")
        }
    }

    @Test func splitsAroundTheTokenCap() {
        // Small limits put the cap and the streamer limits inside short inputs.
        let limits = JSONLimits(maxTokenSize: 24, maxTokenCount: 12, maxNesting: 4)
        let inputs = [
            "\"" + String(repeating: "a", count: 40) + "\" [1]",
            String(repeating: "7", count: 60) + " true " + String(repeating: "x", count: 30) + " [[[[[1]]]]]",
            "[1,2,3,4,5,6,7,8,9] [\"abcdefghijkl\",\"abcdefghijkl\"] {\"a\":[[[1]]]}",
            "\"abc\\" + String(repeating: "n", count: 30) + "\"",
        ]
        var rng = SplitMix64(seed: 3)
        for text in inputs {
            let input = Array(text.utf8)
            let whole = parseAll(input, limits: limits)
            #expect(whole.contains { if case .error(let e) = $0 { e.hasPrefix("JSON") } else { false } }, "\(text)")
            for maxChunk in [1, 2, 3, 5, 8, 30] {
                #expect(feedInChunks(input, sizes: &rng, maxChunk: maxChunk, limits: limits) == whole, "\(text) \(maxChunk)")
            }
        }
    }

    @Test func randomByteSoup() {
        // Random inputs biased towards JSON bytes, split randomly.
        var rng = SplitMix64(seed: 12345)
        let alphabet = Array("{}[],:\"'\\-+.0123456789eEtruefalsnl ux\t\n\r@".utf8) + [0x00, 0x01, 0x7F, 0xC3, 0xA9, 0xC0, 0x80, 0xED, 0xFE, 0xFF]
        for _ in 0..<300 {
            let length = Int.random(in: 1...200, using: &rng)
            let input = (0..<length).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] }
            let whole = parseAll(input)
            for maxChunk in [1, 3, 17] {
                #expect(feedInChunks(input, sizes: &rng, maxChunk: maxChunk) == whole)
            }
        }
    }
}

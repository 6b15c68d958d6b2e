import FuzzingSupport
import Testing
import QMPJSON

// Long strings (64 KiB and more, the size of bulk base64 payloads) take
// their own path through the lexer: whole in one chunk they become a String
// straight from the input; spread over chunks they are kept in pieces. Both
// must give what the ordinary path gives: the same values, the same errors,
// the same limits, whatever the chunking.

/// Every way the tests feed an input: whole, in the channel's 4 KiB reads,
/// and in random pieces.
private func feedings(_ input: [UInt8], limits: JSONLimits = .qemu) -> [(String, [JSONParserOutput])] {
    var results = [("whole", parseAll(input, limits: limits))]
    for chunk in [4096, 65_536, 100_003] {
        var parser = JSONMessageParser(limits: limits)
        var out: [JSONParserOutput] = []
        var offset = 0
        while offset < input.count {
            let end = min(input.count, offset + chunk)
            out += parser.feed(input[offset..<end])
            offset = end
        }
        results.append(("chunks of \(chunk)", out))
    }
    var rng = SplitMix64(seed: UInt64(input.count))
    var parser = JSONMessageParser(limits: limits)
    var out: [JSONParserOutput] = []
    var offset = 0
    while offset < input.count {
        let end = min(input.count, offset + Int.random(in: 1...9000, using: &rng))
        out += parser.feed(input[offset..<end])
        offset = end
    }
    results.append(("random pieces", out))
    return results
}

/// Checks every feeding of `input` against `expected`, without printing
/// megabytes when they differ.
private func expectOutputs(_ input: [UInt8], _ expected: [JSONParserOutput], limits: JSONLimits = .qemu,
                           _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    for (feeding, outputs) in feedings(input, limits: limits) {
        let same = outputs == expected
        #expect(same, "\(what), fed \(feeding): \(describe(outputs)) instead of \(describe(expected))",
                sourceLocation: sourceLocation)
    }
}

private func describe(_ outputs: [JSONParserOutput]) -> String {
    outputs.map { output in
        switch output {
        case .error(let text): "error(\(text.prefix(80))…\(text.count))"
        case .value(let value): "value(\(String(describing: value).prefix(120))…)"
        }
    }.description
}

private func request(_ body: String, quote: Character = "\"") -> [UInt8] {
    Array(#"{"execute":"guest-file-write","arguments":{"handle":1,"buf-b64":\#(quote)\#(body)\#(quote)}}"#.utf8)
}

private func requestValue(_ value: String) -> JSONParserOutput {
    .value(.object(JSONObject([
        "execute": .string("guest-file-write"),
        "arguments": .object(JSONObject(["handle": .int(1), "buf-b64": .string(value)])),
    ])))
}

private let base64Alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

private func plainText(_ count: Int) -> String {
    var rng = SplitMix64(seed: UInt64(count))
    return String(decoding: (0..<count).map { _ in base64Alphabet.randomElement(using: &rng)! }, as: UTF8.self)
}

@Suite("Long strings")
struct LongStringTests {
    @Test("Plain bodies around and far beyond the threshold", arguments: [65_535, 65_536, 65_537, 200_000, 1_048_577, 3_000_000])
    func plain(count: Int) {
        let body = plainText(count)
        expectOutputs(request(body), [requestValue(body)], "\(count) plain characters")
        expectOutputs(request(body, quote: "'"), [requestValue(body)], "\(count) characters in single quotes")
    }

    @Test("One byte at a time")
    func byteAtATime() {
        let body = plainText(70_000)
        var parser = JSONMessageParser()
        var out: [JSONParserOutput] = []
        for byte in request(body) { out += parser.feed([byte]) }
        #expect(out == [requestValue(body)])
    }

    @Test("Two long strings and short tokens in one message, then the next message")
    func several() {
        let a = plainText(100_000), b = plainText(150_000)
        let input = Array(#"["\#(a)", 1, "x", {"\#(b)": "\#(a)"}] "after""#.utf8)
        let expected: [JSONParserOutput] = [
            .value(.array([.string(a), .int(1), .string("x"), .object(JSONObject([b: .string(a)]))])),
            .value(.string("after")),
        ]
        expectOutputs(input, expected, "two long strings")
    }

    @Test("Escapes and non-ASCII text before, after and at the threshold are decoded as in short strings",
          arguments: [10, 65_534, 65_536, 80_000, 199_990])
    func escapesAndUnicode(position: Int) {
        let plain = plainText(200_000)
        let index = plain.index(plain.startIndex, offsetBy: position)
        for (inserted, decoded) in [("\\n", "\n"), ("\\u00e9\\\"", "é\""), ("é", "é"), ("\\/", "/"), ("\u{1F600}", "\u{1F600}")] {
            let body = String(plain[..<index]) + inserted + String(plain[index...])
            let value = String(plain[..<index]) + decoded + String(plain[index...])
            expectOutputs(request(body), [requestValue(value)], "\(inserted.debugDescription) at \(position)")
        }
    }

    @Test("Invalid UTF-8 and QEMU's NUL after the threshold", arguments: [65_540, 150_000])
    func invalidAndModifiedUTF8(position: Int) {
        let plain = Array(plainText(200_000).utf8)
        let invalid = Array(plain[..<position]) + [0xC3, 0x28] + Array(plain[position...])
        let prefix = Array(request("").dropLast(3)), suffix = Array("\"}}".utf8)
        expectOutputs(prefix + invalid + suffix,
                      [.error("JSON parse error, invalid UTF-8 sequence in string")], "C3 28 at \(position)")
        let nul = Array(plain[..<position]) + [0xC0, 0x80] + Array(plain[position...])
        let value = String(decoding: plain[..<position], as: UTF8.self) + "\u{0}" + String(decoding: plain[position...], as: UTF8.self)
        expectOutputs(prefix + nul + suffix, [requestValue(value)], "C0 80 at \(position)")
    }

    @Test("A control byte inside a long string is a stray error quoting all of it; the lexer recovers")
    func controlByte() {
        let body = plainText(100_000)
        let input = Array(("\"" + body + "\u{01}" + "\" {\"execute\":\"guest-ping\"}").utf8)
        expectOutputs(input, [
            .error("JSON parse error, stray '\"" + body + "\u{01}'"),
            .value(.object(JSONObject(["execute": .string("guest-ping")]))),
        ], "a control byte after 100000 characters")
    }

    @Test("0xFF in a long string discards the message")
    func flush() {
        let body = plainText(100_000)
        let input = request(body).prefix(90_000) + [0xFF] + Array(#"{"execute":"guest-ping"}"#.utf8)
        expectOutputs(Array(input), [.value(.object(JSONObject(["execute": .string("guest-ping")])))], "0xFF after 90000 bytes")
    }

    @Test("The token size limit applies to long strings exactly as to short ones")
    func tokenSizeLimit() {
        let limits = JSONLimits(maxTokenSize: 100_000)
        // Alone, a string token of n body bytes is accepted while n + 2 (its
        // size) + 1 <= the limit.
        let fits = plainText(99_997)
        expectOutputs(Array(("\"" + fits + "\" 1 ").utf8), [.value(.string(fits)), .value(.int(1))], limits: limits,
                      "99997 characters")
        let tooBig = plainText(99_998)
        expectOutputs(Array(("\"" + tooBig + "\" 1 ").utf8), [.error("JSON token size limit exceeded"), .value(.int(1))],
                      limits: limits, "99998 characters")
        // The queued text of the message counts too.
        let withKey = plainText(99_997 - 6)
        expectOutputs(Array(("{\"ab\": \"" + withKey + "\"}").utf8), [.error("JSON token size limit exceeded")],
                      limits: limits, "with a key")
        // A partial token beyond the limit is refused while it is lexed; every
        // feeding goes on from there the same way.
        let runaway = Array(("\"" + plainText(150_000) + "\" [2]").utf8)
        let outputs = feedings(runaway, limits: limits)
        #expect(outputs[0].1.first == .error("JSON token size limit exceeded"))
        for (feeding, out) in outputs.dropFirst() {
            let same = out == outputs[0].1
            #expect(same, "fed \(feeding): \(describe(out)) instead of \(describe(outputs[0].1))")
        }
    }
}

import Testing
import QMPJSON

// QEMU's JSON streamer: message assembly, limits in their exact order, reset
// after errors, and the observed consequences.

@Suite struct MessageAssembly {
    @Test func topLevelScalarsAreCompleteMessages() {
        #expect(parseAll(#""a" "b" 1 true "#) == [.value(.string("a")), .value(.string("b")), .value(.int(1)), .value(.bool(true))])
    }

    @Test func incompleteValuesWaitForever() {
        #expect(parseAll("[1,2").isEmpty)
        #expect(parseAll("\"abc").isEmpty)
        #expect(parseAll(#"{"a":[1,{"b":2}]"#).isEmpty)
        #expect(parseAll("1").isEmpty)
    }

    @Test func pipelinedRequestsWithoutWhitespace() {
        #expect(responses(#"{"execute":"guest-ping"}{"execute":"guest-ping","id":1}"#)
                == [#"{"return": {}}"#, #"{"return": {}, "id": 1}"#])
    }

    @Test func strayClosersAreParsedAtOnce() {
        #expect(parseAll("}") == [expectingValue])
        #expect(parseAll("]]") == [expectingValue, expectingValue])
        // Row 43.
        #expect(responses(#"{"execute":"guest-ping"}}"#) == [#"{"return": {}}"#, errorLine("JSON parse error, expecting value")])
    }

    @Test func negativeDepthTriggersTheParse() {
        // Row 44: B=1, K=-1.
        #expect(parseAll(#"{"execute":"guest-ping"]"#) == [parseError("expected separator in dict")])
        #expect(parseAll("[1}") == [parseError("expected separator in list")])
        #expect(parseAll("[}") == [expectingValue])
        // B=0, K=1 keeps waiting although a '}' arrived.
        #expect(parseAll(#"{"a":[1,}"#).isEmpty)
        #expect(parseAll(#"{"a":[1,}]"#) == [expectingValue])
    }

    @Test func errorInTheMiddleRestartsAtTopLevel() {
        // Four responses (observed-7.2).
        #expect(responses(#"{"execute":"guest-ping", @ "id": 1}"#) == [
            errorLine("JSON parse error, stray '@'"),
            errorLine("JSON parse error, expecting value"),
            notAnObjectLine,
            errorLine("JSON parse error, expecting value"),
        ])
        #expect(parseAll(#"{"execute":"guest-sync","arguments":{"id":01}}"#) == [stray("01"), expectingValue, expectingValue])
    }

    @Test func limitErrorsDoNotEnterRecovery() {
        let out = parseAll("[[[1]]]", limits: JSONLimits(maxNesting: 2))
        #expect(out == [.error("JSON nesting depth limit exceeded"), .value(.int(1)), expectingValue, expectingValue, expectingValue])
    }
}

@Suite struct Limits {
    @Test func sizeCheckUsesPlusOne() {
        let limits = JSONLimits(maxTokenSize: 16)
        // 15 bytes including quotes: 15 + 1 <= 16.
        #expect(parseAll("\"" + String(repeating: "a", count: 13) + "\"", limits: limits)
                == [.value(.string(String(repeating: "a", count: 13)))])
        // 16 bytes including quotes: 16 + 1 > 16.
        #expect(parseAll("\"" + String(repeating: "a", count: 14) + "\"", limits: limits)
                == [.error("JSON token size limit exceeded")])
    }

    @Test func sizeIsSummedOverTheMessage() {
        let limits = JSONLimits(maxTokenSize: 16)
        // [ "aaaa" , "aaaa" , : 1+6+1+6+1 = 15; the next token needs 15+1+1 > 16.
        #expect(parseAll(#"["aaaa","aaaa",1]"#, limits: limits)
                == [.error("JSON token size limit exceeded"), expectingValue])
        #expect(parseAll(#"["aaaa","aaaa"]"#, limits: limits)
                == [.value(.array([.string("aaaa"), .string("aaaa")]))])
    }

    @Test func limitOrderSizeThenCountThenNesting() {
        // All three fail at once: the size error wins.
        #expect(parseAll("[[", limits: JSONLimits(maxTokenSize: 2, maxTokenCount: 1, maxNesting: 1))
                == [.error("JSON token size limit exceeded")])
        // Count and nesting fail: count wins.
        #expect(parseAll("[[", limits: JSONLimits(maxTokenCount: 1, maxNesting: 1)).first
                == .error("JSON token count limit exceeded"))
    }

    @Test func depthIsUpdatedBeforeTheChecks() {
        // With maxNesting 1, "[" then "]" would be fine; "[[" fails at the
        // second '[' because B+K is already 2 when the check runs.
        #expect(parseAll("[]", limits: JSONLimits(maxNesting: 1)) == [.value(.array([]))])
        #expect(parseAll("[[", limits: JSONLimits(maxNesting: 1)) == [.error("JSON nesting depth limit exceeded")])
        // Two open levels need a limit of 2.
        #expect(parseAll("{\"a\":[]}", limits: JSONLimits(maxNesting: 2))
                == [.value(.object(JSONObject(["a": .array([])])))])
    }

    @Test func nesting1024IsAcceptedAnd1025Fails() {
        let open = String(repeating: "[", count: 1024), close = String(repeating: "]", count: 1024)
        let accepted = parseAll(open + close)
        #expect(accepted.count == 1)
        if case .value(var value) = accepted.first {
            var depth = 0
            while case .array(let inner) = value, let first = inner.first {
                value = first
                depth += 1
            }
            // 1023 non-empty levels around one empty array.
            #expect(depth == 1023)
        } else {
            Issue.record("no value")
        }

        // Row 60: [ x1025 + ] x1025.
        let rejected = parseAll(String(repeating: "[", count: 1025) + String(repeating: "]", count: 1025) + "\n")
        #expect(rejected.count == 1026)
        #expect(rejected.first == .error("JSON nesting depth limit exceeded"))
        #expect(rejected.dropFirst().allSatisfy { $0 == expectingValue })

        // The same limit inside a request.
        let request = parseAll(#"{"execute":"guest-ping","id":"# + open + close + "}")
        #expect(request.count == 1026)
        #expect(request.first == .error("JSON nesting depth limit exceeded"))
        #expect(request.dropFirst().allSatisfy { $0 == expectingValue })
        let fits = parseAll(#"{"execute":"guest-ping","id":"# + String(repeating: "[", count: 1023)
                            + String(repeating: "]", count: 1023) + "}")
        #expect(fits.count == 1)
        if case .value(.object(let object)) = fits.first { #expect(object["execute"] == .string("guest-ping")) } else {
            Issue.record("expected an object")
        }
    }

    /// "[" + "1," x n + "1]": 2n + 3 tokens.
    private func longList(tokens: Int) -> [UInt8] {
        let n = (tokens - 3) / 2
        var input: [UInt8] = [UInt8(ascii: "[")]
        input.reserveCapacity(2 * n + 3)
        for _ in 0..<n { input.append(UInt8(ascii: "1")); input.append(UInt8(ascii: ",")) }
        input.append(UInt8(ascii: "1"))
        input.append(UInt8(ascii: "]"))
        return input
    }

    @Test func tokenCount2097151IsAccepted() {
        let out = parseAll(longList(tokens: 2_097_151))
        #expect(out.count == 1)
        if case .value(.array(let elements)) = out.first {
            #expect(elements.count == 1_048_575)
            #expect(elements.last == .int(1))
        } else {
            Issue.record("expected an array")
        }
    }

    @Test func tokenCount2097153FailsOnce() {
        // Row 61: the error fires at token 2,097,153, the final ']'.
        #expect(parseAll(longList(tokens: 2_097_153)) == [.error("JSON token count limit exceeded")])
    }

    @Test func sixtyFourMebibyteStringIncludingQuotesIsRejected() {
        // Row 62, then a later request parses.
        var parser = JSONMessageParser()
        var out: [JSONParserOutput] = []
        var input = [UInt8](repeating: UInt8(ascii: "a"), count: 64 << 20)
        input[0] = 0x22
        input[input.count - 1] = 0x22
        input.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = min(4096, raw.count - offset)
                out += parser.feed(UnsafeRawBufferPointer(rebasing: raw[offset..<offset + n]))
                offset += n
            }
        }
        #expect(out == [.error("JSON token size limit exceeded")])
        #expect(parser.feed(Array("[1]".utf8)) == [.value(.array([.int(1)]))])

        // One byte shorter (64 MiB - 1 including quotes) is accepted.
        input.removeLast(2)
        input.append(0x22)
        let accepted = parser.feed(input)
        #expect(accepted.count == 1)
        if case .value(.string(let s)) = accepted.first {
            #expect(s.utf8.count == (64 << 20) - 3)
        } else {
            Issue.record("expected a string")
        }
    }

    @Test func lexicalErrorInsideAHugeStringEchoesIt() {
        let body = String(repeating: "x", count: 100_000)
        #expect(parseAll("\"" + body + "\u{01}") == [stray("\"" + body + "\u{01}")])
    }
}

import Testing
@testable import QMPJSON

// QEMU's compact format (as qemu-ga writes its replies), and the observed 7.2
// request/response pairs that exercise the JSON layer (parse, then write,
// reproduces the reference response bytes).

private func text(_ value: JSONValue) -> String {
    String(decoding: JSONWriter.encode(value), as: UTF8.self)
}

@Suite struct WriterFormat {
    @Test func containersAndScalars() {
        #expect(text(.object(JSONObject())) == "{}")
        #expect(text(.array([])) == "[]")
        #expect(text(.array([.int(1), .null, .bool(true), .bool(false)])) == "[1, null, true, false]")
        #expect(text(.object(JSONObject(["a": .array([.int(1), .object(JSONObject(["b": .null]))])])))
                == #"{"a": [1, {"b": null}]}"#)
        #expect(text(.array([.array([]), .object(JSONObject())])) == "[[], {}]")
    }

    @Test func noTrailingNewlineAndAppendKeepsWhatIsThere() {
        var output: [UInt8] = [0xFF]
        JSONWriter.append(.object(JSONObject(["return": .int(5)])), to: &output)
        #expect(output == [0xFF] + Array(#"{"return": 5}"#.utf8))
    }

    @Test func integers() {
        #expect(text(.int(0)) == "0")
        #expect(text(.int(-7)) == "-7")
        #expect(text(.int(123_456_789)) == "123456789")
        #expect(text(.int(.min)) == "-9223372036854775808")
        #expect(text(.int(.max)) == "9223372036854775807")
        #expect(text(.uint(.max)) == "18446744073709551615")
        #expect(text(.uint(0)) == "0")
    }

    @Test func doublesArePercentPoint17g() {
        #expect(text(.double(1.5)) == "1.5")
        #expect(text(.double(0.1)) == "0.10000000000000001")
        #expect(text(.double(-1.5e-7)) == "-1.4999999999999999e-07")
        #expect(text(.double(1e21)) == "1e+21")
        #expect(text(.double(1.2345678901234568e+29)) == "1.2345678901234568e+29")
        #expect(text(.double(100)) == "100")
        #expect(text(.double(123_456_789)) == "123456789")
        #expect(text(.double(-0.0)) == "-0")
        #expect(text(.double(0)) == "0")
        #expect(text(.double(1e16)) == "10000000000000000")
        #expect(text(.double(1e17)) == "1e+17")
        #expect(text(.double(.leastNonzeroMagnitude)) == "4.9406564584124654e-324")
        #expect(text(.double(-9.2233720368547758e+18)) == "-9.2233720368547758e+18")
        #expect(text(.double(.infinity)) == "inf")
        #expect(text(.double(-.infinity)) == "-inf")
        #expect(text(.double(.nan)) == "nan")
    }

    @Test func radixCharacterOfAnyLocaleBecomesAPoint() {
        func normalized(_ s: String) -> String {
            var out: [UInt8] = []
            Array(s.utf8).withUnsafeBufferPointer { JSONWriter.appendCLocaleNumber($0, to: &out) }
            return String(decoding: out, as: UTF8.self)
        }
        #expect(normalized("1,5") == "1.5")
        #expect(normalized("-1,4999999999999999e-07") == "-1.4999999999999999e-07")
        #expect(normalized("1\u{066B}25") == "1.25")
        #expect(normalized("1e+21") == "1e+21")
        #expect(normalized("100") == "100")
        #expect(normalized("-inf") == "-inf")
        #expect(normalized("nan") == "nan")
    }

    @Test func strings() {
        #expect(text(.string("")) == #""""#)
        #expect(text(.string("plain / text")) == #""plain / text""#)
        #expect(text(.string("\"\\\u{08}\u{0C}\n\r\t")) == #""\"\\\b\f\n\r\t""#)
        #expect(text(.string("\u{01}\u{1F}\u{7F}\u{80}é")) == #""\u0001\u001F\u007F\u0080\u00E9""#)
        #expect(text(.string("\u{0}")) == #""\u0000""#)
        #expect(text(.string("€\u{FFFD}\u{FFFC}")) == #""\u20AC\uFFFD\uFFFC""#)
        #expect(text(.string("😀\u{10FFFD}")) == #""\uD83D\uDE00\uDBFF\uDFFD""#)
        // Noncharacters are invalid to QEMU's writer and print as U+FFFD.
        let nonCharacters = String(String.UnicodeScalarView([0xFFFE, 0xFDD0, 0x1FFFF].map { UnicodeScalar($0)! }))
        #expect(text(.string(nonCharacters)) == #""\uFFFD\uFFFD\uFFFD""#)
        #expect(text(.string("\u{FDCF}\u{FDF0}")) == #""\uFDCF\uFDF0""#)
        let long = String(repeating: "abcdefghijklmnopqrstuvwxyz0123456789+/", count: 10_000)
        #expect(text(.string(long + "\n" + long)) == "\"" + long + "\\n" + long + "\"")
    }

    @Test func keysAreEscapedLikeStrings() {
        #expect(text(.object(JSONObject(["a\"é": .int(1)]))) == #"{"a\"\u00E9": 1}"#)
    }

    @Test func outputIsASCIIOnly() {
        var all = ""
        for v in stride(from: 0, through: 0x10FFFF, by: 97) {
            if let scalar = UnicodeScalar(v) { all.unicodeScalars.append(scalar) }
        }
        #expect(JSONWriter.encode(.string(all)).allSatisfy { $0 < 0x80 && $0 >= 0x20 })
    }

    @Test func roundTripOfEveryScalarClass() {
        // Whatever we write, we read back (noncharacters excepted).
        var s = ""
        for v in [0, 1, 0x1F, 0x20, 0x22, 0x2F, 0x5C, 0x7E, 0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFD, 0x10000, 0x10FFFD] {
            s.unicodeScalars.append(UnicodeScalar(UInt32(v))!)
        }
        #expect(parseAll(JSONWriter.encode(.string(s))) == [.value(.string(s))])
    }
}

@Suite struct ObservedResponses {
    // The observed 7.2 pairs (`ObservedPairs` in IntegrationTests) that
    // exercise the JSON layer.
    @Test(arguments: [
        (#"{"execute":"guest-ping"}"#, [#"{"return": {}}"#]),
        (#"{"execute":"guest-ping","id":[1,{"a":null}]}"#, [#"{"return": {}, "id": [1, {"a": null}]}"#]),
        (#"{'execute':'guest-ping'}"#, [#"{"return": {}}"#]),
        (#"{'execute':'guest-ping', 'id':'a"b'}"#, [#"{"return": {}, "id": "a\"b"}"#]),
        (#"{"execute":"guest-ping","id":"a\'b"}"#, [#"{"return": {}, "id": "a'b"}"#]),
        ("[1,2]", [notAnObjectLine]),
        ("foo ", [errorLine("JSON parse error, invalid keyword 'foo'")]),
        (#"{"execute":"guest-ping","id":18446744073709551615}"#, [#"{"return": {}, "id": 18446744073709551615}"#]),
        (#"{"execute":"guest-ping","id":123456789012345678901234567890}"#, [#"{"return": {}, "id": 1.2345678901234568e+29}"#]),
        (#"{"execute":"guest-ping","id":1e400}"#, [#"{"return": {}, "id": inf}"#]),
        (#"{"execute":"guest-ping","id":0.1}"#, [#"{"return": {}, "id": 0.10000000000000001}"#]),
        (#"{"execute":"guest-ping","id":1E2}"#, [#"{"return": {}, "id": 100}"#]),
        (#"{"execute":"guest-ping","id":-9223372036854775809}"#, [#"{"return": {}, "id": -9.2233720368547758e+18}"#]),
        (#"{"execute":"guest-ping","id":4.9e-324}"#, [#"{"return": {}, "id": 4.9406564584124654e-324}"#]),
        (#"{"execute":"guest-ping","id":-0.0}"#, [#"{"return": {}, "id": -0}"#]),
        (#"{"execute":"guest-ping","id":"\u00e9\ud83d\ude00é\u0001/\/"}"#, [#"{"return": {}, "id": "\u00E9\uD83D\uDE00\u00E9\u0001//"}"#]),
        (#"{"execute":"guest-ping","id":"\b\f\n\r\t\"\\"# + "\u{7F}\"}", [#"{"return": {}, "id": "\b\f\n\r\t\"\\\u007F"}"#]),
        (#"{"execute":"guest-ping","id":"a\u0000b"}"#, [#"{"return": {}, "id": "a\u0000b"}"#]),
        (#"{"execute":"guest-ping","id":"\x"}"#, [errorLine("JSON parse error, invalid escape sequence in string")]),
        (#"{"execute":"guest-ping","id":"\ud800"}"#, [errorLine(#"JSON parse error, \\ud800 is not a valid Unicode character"#)]),
        (#"{"execute":"guest-ping","execute":"guest-ping"}"#, [errorLine("JSON parse error, duplicate key")]),
        (#"{"execute":"guest-ping",}"#, [errorLine("JSON parse error, expecting value")]),
        (#"{"execute" "guest-ping"}"#, [errorLine("JSON parse error, missing : in object pair")]),
        ("{1:2}", [errorLine("JSON parse error, key is not a string in object")]),
        ("@", [errorLine("JSON parse error, stray '@'")]),
        (#"{"execute":"guest-ping"}}"#, [#"{"return": {}}"#, errorLine("JSON parse error, expecting value")]),
        (#"{"execute":"guest-ping"]"#, [errorLine("JSON parse error, expected separator in dict")]),
        (#"{"execute":"guest-ping","id":nan}"#, [errorLine("JSON parse error, invalid keyword 'nan'")]),
        ("[1 2]", [errorLine("JSON parse error, expected separator in list")]),
        (#"{"execute":"foo","id":7}"#, [#"{"id": 7, "error": {"class": "GenericError", "desc": "unexpected test request"}}"#]),
    ])
    func row(request: String, expected: [String]) {
        #expect(responses(request) == expected)
    }

    @Test func rowsWithRawBytes() {
        // Row 32: C0 80 is NUL.
        #expect(responses(bytes("{\"execute\":\"guest-ping\",\"id\":\"a\u{C0}\u{80}b\"}"))
                == [#"{"return": {}, "id": "a\u0000b"}"#])
        // Row 35.
        #expect(responses(bytes("{\"execute\":\"guest-ping\",\"id\":\"\u{C3}\u{28}\"}"))
                == [errorLine("JSON parse error, invalid UTF-8 sequence in string")])
        // Rows 41, 42, 49, 50.
        #expect(responses(bytes("{\"execute\":\"guest-\u{01}ping\"}"))
                == [errorLine(#"JSON parse error, stray '\"guest-\u0001'"#), errorLine("JSON parse error, expecting value")])
        #expect(responses(bytes("{\"execute\":\u{0C}\"guest-ping\"}"))
                == [errorLine(#"JSON parse error, stray '\f'"#), errorLine("JSON parse error, expecting value")])
        #expect(responses(bytes("\u{00}")) == [errorLine("JSON parse error, stray ''")])
        #expect(responses(bytes("\u{80}")) == [errorLine(#"JSON parse error, stray '\uFFFD'"#)])
        // 0xFE keeps 7.2's answer; a lossy-decoded stray text (observed-7.2).
        #expect(responses(bytes("\"a\u{C0}\u{80}b\u{01}")) == [errorLine(#"JSON parse error, stray '\"a\u0000b\u0001'"#)])
        #expect(responses(bytes("\"\u{ED}\u{A0}\u{80}\u{01}")) == [errorLine(#"JSON parse error, stray '\"\uFFFD\u0001'"#)])
        #expect(responses(bytes("\"\u{F8}\u{88}\u{80}\u{80}\u{80}\u{01}")) == [errorLine(#"JSON parse error, stray '\"\uFFFD\u0001'"#)])
        #expect(responses(bytes("\"\u{C3}\u{01}")) == [errorLine(#"JSON parse error, stray '\"\uFFFD\u0001'"#)])
        #expect(responses(bytes("\"\u{EF}\u{BF}\u{BE}\u{01}")) == [errorLine(#"JSON parse error, stray '\"\uFFFD\u0001'"#)])
        #expect(responses(bytes("\"\\u123\u{C3}\u{A9}\""))
                == [errorLine(#"JSON parse error, \\u123\uFFFD is not a valid Unicode character"#)])
        #expect(responses(#""\u12""#) == [errorLine(#"JSON parse error, \\u12\" is not a valid Unicode character"#)])
    }

    @Test func rowsWithTheSilentFlushInsteadOf72() {
        // Rows 45-48 do not apply: 0xFF is a silent flush.
        #expect(responses([0xFF]).isEmpty)
        #expect(responses([0xFF] + Array(#"{"execute":"guest-ping"}"#.utf8)) == [#"{"return": {}}"#])
        #expect(responses(Array(#"{"execute":"gu"#.utf8) + [0xFF] + Array(#"{"execute":"guest-ping"}"#.utf8)) == [#"{"return": {}}"#])
        #expect(responses(Array("12".utf8) + [0xFF]).isEmpty)
    }
}

@Suite struct LossyDecoding {
    @Test func followsQEMUsSequenceRules() {
        func decode(_ raw: String) -> String { ModifiedUTF8.decodeLossy(bytes(raw)) }
        #expect(decode("abc") == "abc")
        #expect(decode("ab\u{00}cd") == "ab")
        #expect(decode("\u{C0}\u{80}") == "\u{0}")
        #expect(decode("\u{C3}\u{A9}") == "é")
        #expect(decode("\u{80}\u{80}") == "\u{FFFD}\u{FFFD}")
        #expect(decode("\u{FE}\u{FF}") == "\u{FFFD}\u{FFFD}")
        // A truncated sequence is one replacement, including its continuation bytes.
        #expect(decode("\u{E2}\u{82}x") == "\u{FFFD}x")
        #expect(decode("\u{E2}\u{82}") == "\u{FFFD}")
        // Well-formed but invalid: one replacement for the whole sequence.
        #expect(decode("\u{ED}\u{A0}\u{80}z") == "\u{FFFD}z")
        #expect(decode("\u{E0}\u{80}\u{80}z") == "\u{FFFD}z")
        #expect(decode("\u{FC}\u{84}\u{80}\u{80}\u{80}\u{80}z") == "\u{FFFD}z")
        #expect(decode("\u{EF}\u{B7}\u{90}") == "\u{FFFD}")
        #expect(decode("\u{F0}\u{9F}\u{98}\u{80}") == "😀")
    }
}

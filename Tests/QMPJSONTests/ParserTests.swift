import Testing
import QMPJSON

// QEMU's JSON parser: grammar, first-error-only texts, string and number
// decoding.

private func value(_ text: String) -> JSONValue? {
    let out = parseAll(text)
    guard out.count == 1, case .value(let v) = out[0] else { return nil }
    return v
}

private func stringValue(_ raw: [UInt8]) -> JSONParserOutput? {
    let out = parseAll([0x22] + raw + [0x22])
    return out.count == 1 ? out[0] : nil
}

@Suite struct Grammar {
    @Test func errorTexts() {
        #expect(parseAll("[1,]") == [expectingValue])
        #expect(parseAll(#"{"a":1,}"#) == [expectingValue])
        #expect(parseAll(#"{"a":}"#) == [expectingValue])
        #expect(parseAll("[,1]") == [expectingValue])
        #expect(parseAll("{,}") == [expectingValue])
        #expect(parseAll("{1:2}") == [parseError("key is not a string in object")])
        #expect(parseAll("{[1]:2}") == [parseError("key is not a string in object")])
        #expect(parseAll("{null:2}") == [parseError("key is not a string in object")])
        #expect(parseAll(#"{"execute" "guest-ping"}"#) == [parseError("missing : in object pair")])
        #expect(parseAll(#"{"a"}"#) == [parseError("missing : in object pair")])
        #expect(parseAll(#"{"a":1]"#) == [parseError("expected separator in dict")])
        #expect(parseAll(#"{"a":1 "b":2}"#) == [parseError("expected separator in dict")])
        #expect(parseAll(#"{"a":1:2}"#) == [parseError("expected separator in dict")])
        #expect(parseAll("[1 2]") == [parseError("expected separator in list")])
        #expect(parseAll("[1:2]") == [parseError("expected separator in list")])
        #expect(parseAll(#"{"execute":"guest-ping","execute":"guest-ping"}"#) == [parseError("duplicate key")])
    }

    @Test func onlyTheFirstErrorIsReported() {
        // The value error comes before the duplicate check.
        #expect(parseAll(#"{"a":1,"a":}"#) == [expectingValue])
        // Errors inside a key are found before "key is not a string".
        #expect(parseAll(#"{{"a":1,"a":2}:1}"#) == [parseError("duplicate key")])
        #expect(parseAll(#"["\x", foo, 1 2]"#) == [parseError("invalid escape sequence in string")])
        #expect(parseAll(#"[foo, "\x"]"#) == [parseError("invalid keyword 'foo'")])
    }

    @Test func duplicateKeysAtAnyDepth() {
        #expect(parseAll(#"{"a":{"b":1,"b":2}}"#) == [parseError("duplicate key")])
        #expect(parseAll(#"[[{"x":[{"k":1,"j":2,"k":3}]}]]"#) == [parseError("duplicate key")])
        #expect(parseAll(#"{"a":{"b":1},"b":2}"#).count == 1)
        #expect(value(#"{"a":{"b":1},"b":2}"#) != nil)
        // Keys are compared byte for byte: é and e + U+0301 are different.
        let keys = value(#"{"\u00e9":1,"e\u0301":2}"#)
        if case .object(let object)? = keys {
            #expect(object.count == 2)
        } else {
            Issue.record("expected an object")
        }
        #expect(parseAll(#"{"\u00e9":1,"é":2}"#) == [parseError("duplicate key")])
    }

    @Test func duplicatesInBigObjectsAreFound() {
        var text = "{"
        for i in 0..<50_000 { text += "\"k\(i)\":\(i)," }
        let unique = parseAll(text + "\"last\":0}")
        if case .value(.object(let object)) = unique.first {
            #expect(object.count == 50_001)
            #expect(object.members[12_345].key == "k12345")
            #expect(object.members[12_345].value == .int(12_345))
        } else {
            Issue.record("expected an object")
        }
        #expect(parseAll(text + "\"k49999\":0}") == [parseError("duplicate key")])
        #expect(parseAll(text + "\"k0\":0}") == [parseError("duplicate key")])
    }

    @Test func nestedValuesKeepTheirStructure() {
        #expect(value(#"{"execute":"guest-ping","id":[1,{"a":null}]}"#)
                == .object(JSONObject(["execute": .string("guest-ping"),
                                       "id": .array([.int(1), .object(JSONObject(["a": .null]))])])))
        #expect(value("[[],{},[[]]]") == .array([.array([]), .object(JSONObject()), .array([.array([])])]))
        if case .object(let object)? = value(#"{"b":1,"a":2,"c":3}"#) {
            #expect(object.keys == ["b", "a", "c"])
        } else {
            Issue.record("expected an object")
        }
    }

    @Test func invalidKeywordTextIsCutLikeQEMUsBuffer() {
        // QEMU formats the detail into 1024 bytes: 1023 characters survive.
        let word = "foo" + String(repeating: "a", count: 1100)
        let expected = "invalid keyword '" + String(word.prefix(1023 - 17))
        #expect(parseAll(word + " ") == [parseError(expected)])
        let short = String(repeating: "b", count: 1005)
        #expect(parseAll(short + " ") == [parseError("invalid keyword '" + short + "'")])
    }
}

@Suite struct StringDecoding {
    @Test func simpleEscapes() {
        #expect(value(#""\" \\ \/ \b \f \n \r \t \'""#) == .string("\" \\ / \u{08} \u{0C} \n \r \t '"))
        #expect(value(#""/\/""#) == .string("//"))
    }

    @Test func invalidEscapes() {
        for escape in ["\\x", "\\U00c9", "\\a", "\\0", "\\ ", "\\B"] {
            #expect(parseAll("\"" + escape + "\"") == [parseError("invalid escape sequence in string")], "\(escape)")
        }
    }

    @Test func unicodeEscapesInEitherCase() {
        #expect(value(#""\u00e9\u00E9\u0041""#) == .string("ééA"))
        #expect(value(#""\uD83D\uDE00\ud83d\ude00""#) == .string("😀😀"))
        #expect(value(#""\u0000""#) == .string("\u{0}"))
        #expect(value(#""a\u0000b""#) == .string("a\u{0}b"))
        #expect(value(#""\uFFFD\uFDCF\uFDF0\u10000""#) == .string("\u{FFFD}\u{FDCF}\u{FDF0}\u{1000}0"))
    }

    @Test func invalidUnicodeEscapesQuoteTheEscape() {
        #expect(parseAll(#""\ud800""#) == [parseError(#"\ud800 is not a valid Unicode character"#)])
        #expect(parseAll(#""\udc00""#) == [parseError(#"\udc00 is not a valid Unicode character"#)])
        #expect(parseAll(#""\ufffe""#) == [parseError(#"\ufffe is not a valid Unicode character"#)])
        #expect(parseAll(#""\uFFFF""#) == [parseError(#"\uFFFF is not a valid Unicode character"#)])
        #expect(parseAll(#""\uFDD0""#) == [parseError(#"\uFDD0 is not a valid Unicode character"#)])
        #expect(parseAll(#""\uFDEF""#) == [parseError(#"\uFDEF is not a valid Unicode character"#)])
        // A high surrogate followed by something other than a low one.
        #expect(parseAll(#""\uD83D\u0041""#) == [parseError(#"\uD83D is not a valid Unicode character"#)])
        #expect(parseAll(#""\uD83Dx""#) == [parseError(#"\uD83D is not a valid Unicode character"#)])
        #expect(parseAll(#""\uD83D\uZZZZ""#) == [parseError(#"\uD83D is not a valid Unicode character"#)])
        #expect(parseAll(#""\uD83D\n""#) == [parseError(#"\uD83D is not a valid Unicode character"#)])
        // A pair that encodes a noncharacter quotes both halves.
        #expect(parseAll(#""\uD83F\uDFFF""#) == [parseError(#"\uD83F\uDFFF is not a valid Unicode character"#)])
        #expect(parseAll(#""\uDBFF\uDFFE""#) == [parseError(#"\uDBFF\uDFFE is not a valid Unicode character"#)])
        // Fewer than four hex digits: six bytes from the backslash, cut at the token's end.
        #expect(parseAll(#""\u12""#) == [parseError(#"\u12" is not a valid Unicode character"#)])
        #expect(parseAll(#""\u12xyz""#) == [parseError(#"\u12xy is not a valid Unicode character"#)])
        #expect(parseAll(#""\u""#) == [parseError(#"\u" is not a valid Unicode character"#)])
        #expect(parseAll(#"'\u1'"#) == [parseError(#"\u1' is not a valid Unicode character"#)])
        // Quoted raw bytes go through the lossy decoder (observed-7.2).
        #expect(parseAll(bytes("\"\\u123\u{C3}\u{A9}\"")) == [parseError("\\u123\u{FFFD} is not a valid Unicode character")])
    }

    @Test func rawUTF8IsValidated() {
        #expect(stringValue(bytes("\u{C3}\u{A9}")) == .value(.string("é")))
        #expect(stringValue(bytes("\u{E2}\u{82}\u{AC}")) == .value(.string("€")))
        #expect(stringValue(bytes("\u{F0}\u{9F}\u{98}\u{80}")) == .value(.string("😀")))
        #expect(stringValue(bytes("\u{F4}\u{8F}\u{BF}\u{BD}")) == .value(.string("\u{10FFFD}")))
        #expect(stringValue(bytes("\u{EF}\u{BF}\u{BD}")) == .value(.string("\u{FFFD}")))
        // C0 80 is accepted as NUL.
        #expect(stringValue(bytes("a\u{C0}\u{80}b")) == .value(.string("a\u{0}b")))
        let invalid = parseError("invalid UTF-8 sequence in string")
        for raw in [
            "\u{C3}\u{28}",                  // missing continuation
            "\u{C3}",                        // truncated at the quote
            "\u{80}",                        // stray continuation
            "\u{BF}",
            "\u{C1}\u{81}",                  // overlong
            "\u{C0}\u{81}",
            "\u{E0}\u{80}\u{80}",
            "\u{F0}\u{80}\u{80}\u{80}",
            "\u{ED}\u{A0}\u{80}",            // surrogate
            "\u{ED}\u{BF}\u{BF}",
            "\u{EF}\u{BF}\u{BE}",            // U+FFFE
            "\u{EF}\u{BF}\u{BF}",            // U+FFFF
            "\u{EF}\u{B7}\u{90}",            // U+FDD0
            "\u{EF}\u{B7}\u{AF}",            // U+FDEF
            "\u{F0}\u{9F}\u{BF}\u{BE}",      // U+1FFFE
            "\u{F4}\u{90}\u{80}\u{80}",      // beyond U+10FFFF
            "\u{F5}\u{80}\u{80}\u{80}",
            "\u{F8}\u{88}\u{80}\u{80}\u{80}", // five-byte form
            "\u{FC}\u{84}\u{80}\u{80}\u{80}\u{80}",
            "\u{FD}",
        ] {
            #expect(stringValue(bytes(raw)) == invalid, "\(Array(bytes(raw)))")
        }
        // Row 35 inside a request, and the first error wins.
        #expect(parseAll(bytes("{\"id\":\"\u{C3}\u{28}\\x\"}")) == [invalid])
    }

    @Test func longStringsWithEverything() {
        var raw = ""
        var expected = ""
        for i in 0..<20_000 {
            raw += "plain text \(i) \\n \\u00e9 é \\ud83d\\ude00 "
            expected += "plain text \(i) \n é é 😀 "
        }
        #expect(value("\"" + raw + "\"") == .string(expected))
    }
}

@Suite struct NumberDecoding {
    @Test func integersSplitIntoInt64UInt64AndDouble() {
        #expect(value("9223372036854775807 ") == .int(.max))
        #expect(value("-9223372036854775808 ") == .int(.min))
        #expect(value("9223372036854775808 ") == .uint(9_223_372_036_854_775_808))
        #expect(value("18446744073709551615 ") == .uint(.max))
        #expect(value("18446744073709551616 ") == .double(18_446_744_073_709_551_616))
        #expect(value("-9223372036854775809 ") == .double(-9_223_372_036_854_775_808.0))
        #expect(value("123456789012345678901234567890 ") == .double(1.2345678901234568e+29))
        #expect(value("-0 ") == .int(0))
        #expect(value("00 ") == nil)
    }

    @Test func floatsAreDoublesWithCorrectRounding() {
        #expect(value("1.0 ") == .double(1))
        #expect(value("1e3 ") == .double(1000))
        #expect(value("1E2 ") == .double(100))
        #expect(value("0.1 ") == .double(0.1))
        #expect(value("-0.0 ") == .double(-0.0))
        if case .double(let d)? = value("-0.0 ") { #expect(d.sign == .minus) }
        #expect(value("1e400 ") == .double(.infinity))
        #expect(value("-1e400 ") == .double(-.infinity))
        #expect(value("1e-400 ") == .double(0))
        #expect(value("4.9e-324 ") == .double(.leastNonzeroMagnitude))
        #expect(value("2.2250738585072011e-308 ") == .double(Double(bitPattern: 0x000F_FFFF_FFFF_FFFF)))
        // Halfway cases (correct rounding, not a naive conversion).
        #expect(value("9007199254740993 ") == .int(9_007_199_254_740_993))
        #expect(value("9007199254740993.0 ") == .double(9_007_199_254_740_992))
        #expect(value("9007199254740995.0 ") == .double(9_007_199_254_740_996))
        #expect(value("1.00000000000000011102230246251565404236316680908203125 ") == .double(1))
        #expect(value("1.00000000000000011102230246251565404236316680908203126 ") == .double(1.0000000000000002))
    }
}

import Testing
import QMPJSON

// QEMU's JSON lexer: start-state bytes, strings, numbers, keywords, errors and
// recovery, the token cap, and the 0xFF flush (our deliberate difference).

/// The text QEMU's writer would show for a lone rejected byte.
private func strayText(ofByte b: UInt8) -> String {
    switch b {
    case 0x00: return ""
    case 0x80...0xFF: return "\u{FFFD}"
    default: return String(UnicodeScalar(b))
    }
}

@Suite struct StartState {
    @Test func everyByteOutsideTheTokenStartsIsAStrayError() {
        let starts = Set(Array(" \t\r\n{}[],:\"'-0123456789abcdefghijklmnopqrstuvwxyz".utf8))
        for b in UInt8(0)...UInt8(0xFE) where !starts.contains(b) {
            #expect(parseAll([b]) == [stray(strayText(ofByte: b))], "byte \(b)")
        }
    }

    @Test func onlySpaceTabCRAndLFAreWhitespace() {
        #expect(parseAll(" \t\r\n \n\n\t").isEmpty)
        #expect(parseAll(" \t\r\n[ \t\r\n1 \t\r\n] \t\r\n") == [.value(.array([.int(1)]))])
        #expect(parseAll([0x0B]) == [stray("\u{0B}")])
        #expect(parseAll([0x0C]) == [stray("\u{0C}")])
    }

    @Test func structuralBytesAreOneByteTokens() {
        #expect(parseAll("{}") == [.value(.object(JSONObject()))])
        #expect(parseAll("[]") == [.value(.array([]))])
        for closer in ["}", "]", ",", ":"] {
            #expect(parseAll(closer) == [expectingValue], "\(closer)")
        }
        #expect(parseAll("{").isEmpty)
        #expect(parseAll("[").isEmpty)
    }

    @Test func upperCaseLettersAndOtherPunctuationAreStray() {
        for text in ["T", "+", ".", "%", "/", "#", "@", "\u{7F}"] {
            #expect(parseAll(text) == [stray(text)], "\(text)")
        }
        #expect(parseAll([0x00]) == [stray("")])
        #expect(parseAll([0x80]) == [stray("\u{FFFD}")])
        #expect(parseAll([0xFE]) == [stray("\u{FFFD}")])
    }
}

@Suite struct Strings {
    @Test func bodyAcceptsEveryByteFrom0x20To0xFD() {
        // The lexer does not look at UTF-8; the parser rejects the invalid bytes.
        for b in UInt8(0x20)...UInt8(0xFD) where b != 0x22 && b != 0x5C {
            let out = parseAll([0x22, b, 0x22])
            if b < 0x80 {
                #expect(out == [.value(.string(String(UnicodeScalar(b))))], "byte \(b)")
            } else {
                #expect(out == [parseError("invalid UTF-8 sequence in string")], "byte \(b)")
            }
        }
    }

    @Test func controlBytesAndFEEndTheStringWithAnErrorQuotingThePartialToken() {
        for b in Array(UInt8(0x01)...UInt8(0x1F)) {
            #expect(parseAll(bytes("\"ab") + [b]) == [stray("\"ab" + String(UnicodeScalar(b)))], "byte \(b)")
            #expect(parseAll(bytes("'ab") + [b]) == [stray("'ab" + String(UnicodeScalar(b)))], "byte \(b)")
        }
        #expect(parseAll(bytes("\"ab\u{00}")) == [stray("\"ab")])
        #expect(parseAll(bytes("\"gu\u{FE}")) == [stray("\"gu\u{FFFD}")])
        // Row 41: the rest of the request is then new input.
        #expect(parseAll(bytes("{\"execute\":\"guest-\u{01}ping\"}"))
                == [stray("\"guest-\u{01}"), expectingValue])
    }

    @Test func tabAndNewlineAreNotAllowedRawInStrings() {
        // The string ends in an error; recovery then skips `b"`.
        #expect(parseAll("\"a\tb\"") == [stray("\"a\t")])
        #expect(parseAll("\"a\nb\"") == [stray("\"a\n")])
    }

    @Test func escapeAcceptsAnyByteFrom0x20To0xFDAndTheParserJudges() {
        #expect(parseAll(bytes("\"\\\u{01}")) == [stray("\"\\\u{01}")])
        #expect(parseAll(bytes("\"\\\u{FE}")) == [stray("\"\\\u{FFFD}")])
        #expect(parseAll(bytes("\"\\x\"")) == [parseError("invalid escape sequence in string")])
        #expect(parseAll(bytes("\"\\\u{C3}\u{A9}\"")) == [parseError("invalid escape sequence in string")])
        // An escaped quote does not end the string.
        #expect(parseAll(#""a\"b""#) == [.value(.string("a\"b"))])
    }

    @Test func singleQuotedStrings() {
        #expect(parseAll(#"'a"b'"#) == [.value(.string("a\"b"))])
        #expect(parseAll(#""a'b""#) == [.value(.string("a'b"))])
        #expect(parseAll(#"'a\'b'"#) == [.value(.string("a'b"))])
        #expect(parseAll(#""a\'b""#) == [.value(.string("a'b"))])
        #expect(parseAll(#"{'execute':'guest-ping'}"#)
                == [.value(.object(JSONObject(["execute": .string("guest-ping")])))])
    }
}

@Suite struct Numbers {
    @Test func grammar() {
        #expect(parseAll("0 ") == [.value(.int(0))])
        #expect(parseAll("-0 ") == [.value(.int(0))])
        #expect(parseAll("123 ") == [.value(.int(123))])
        #expect(parseAll("-7 ") == [.value(.int(-7))])
        #expect(parseAll("1.5 ") == [.value(.double(1.5))])
        #expect(parseAll("0.25 ") == [.value(.double(0.25))])
        #expect(parseAll("1e3 ") == [.value(.double(1000))])
        #expect(parseAll("1E+2 ") == [.value(.double(100))])
        #expect(parseAll("25e-1 ") == [.value(.double(2.5))])
        #expect(parseAll("-1.5e2 ") == [.value(.double(-150))])
        #expect(parseAll("1.0 ") == [.value(.double(1))])
    }

    @Test func numberNeedsOneMoreByteAndThatByteIsLexedAgain() {
        #expect(parseAll("1").isEmpty)
        #expect(parseAll("1.5e3").isEmpty)
        #expect(parseAll("[1]") == [.value(.array([.int(1)]))])
        #expect(parseAll("[1.5]") == [.value(.array([.double(1.5)]))])
        #expect(parseAll("[1e5,2]") == [.value(.array([.double(1e5), .int(2)]))])
        #expect(parseAll("1\"a\"") == [.value(.int(1)), .value(.string("a"))])
        #expect(parseAll("12@") == [.value(.int(12)), stray("@")])
    }

    @Test func errorsIncludeTheOffendingByte() {
        #expect(parseAll("01") == [stray("01")])
        #expect(parseAll("-}") == [stray("-}")])
        #expect(parseAll("1.}") == [stray("1.}")])
        #expect(parseAll(".5") == [stray(".")])
        #expect(parseAll("+1") == [stray("+")])
        #expect(parseAll("1e}") == [stray("1e}")])
        #expect(parseAll("1e+}") == [stray("1e+}")])
        #expect(parseAll("-a") == [stray("-a")])
        #expect(parseAll("-.5") == [stray("-.")])
        // The consumed byte is gone; recovery then skips "5" (not a stop byte).
        #expect(parseAll("-.5,") == [stray("-."), expectingValue])
    }

    @Test func zeroCannotTakeAnExponentDirectly() {
        // "0" ends before 'e', which starts a keyword (observed-7.2).
        #expect(parseAll("0e5 ") == [.value(.int(0)), parseError("invalid keyword 'e'"), .value(.int(5))])
        #expect(parseAll("0.0e5 ") == [.value(.double(0))])
    }
}

@Suite struct Keywords {
    @Test func maximalRunOfLowerCaseLetters() {
        #expect(parseAll("true ") == [.value(.bool(true))])
        #expect(parseAll("false ") == [.value(.bool(false))])
        #expect(parseAll("null ") == [.value(.null)])
        #expect(parseAll("nul1 ") == [parseError("invalid keyword 'nul'"), .value(.int(1))])
        #expect(parseAll("foo ") == [parseError("invalid keyword 'foo'")])
        #expect(parseAll("inf ") == [parseError("invalid keyword 'inf'")])
        #expect(parseAll("nan ") == [parseError("invalid keyword 'nan'")])
        #expect(parseAll("nullx ") == [parseError("invalid keyword 'nullx'")])
        #expect(parseAll("[true,false,null]") == [.value(.array([.bool(true), .bool(false), .null]))])
        #expect(parseAll("True") == [stray("T")])
        #expect(parseAll("tRue") == [parseError("invalid keyword 't'"), stray("R")])
    }
}

@Suite struct Recovery {
    @Test func structuralByteEndsRecoveryAndIsLexedAgain() {
        #expect(responses(#"@ {"execute":"guest-ping"}"#) == [errorLine("JSON parse error, stray '@'"), #"{"return": {}}"#])
        #expect(responses("@ garbage\n{\"execute\":\"guest-ping\"}")
                == [errorLine("JSON parse error, stray '@'"), #"{"return": {}}"#])
        #expect(responses("@\t{\"execute\":\"guest-ping\"}")
                == [errorLine("JSON parse error, stray '@'"), #"{"return": {}}"#])
        for stop in ["[", "]", "{", "}", ":", ","] {
            let out = parseAll("@abc" + stop)
            #expect(out.first == stray("@"), "\(stop)")
            #expect(out.count == (stop == "[" || stop == "{" ? 1 : 2), "\(stop)")
        }
    }

    @Test func controlBytesEndRecovery() {
        #expect(parseAll("@\r") == [stray("@")])
        #expect(parseAll("@\n1 ") == [stray("@"), .value(.int(1))])
        #expect(parseAll("@\u{01}") == [stray("@"), stray("\u{01}")])
        #expect(parseAll(bytes("@\u{00}")) == [stray("@"), stray("")])
        #expect(parseAll(bytes("@ xx \u{FE}")) == [stray("@"), stray("\u{FFFD}")])
    }

    @Test func recoverySkipsEverythingElse() {
        // Quotes, digits, letters, spaces, TAB, DEL, high bytes.
        #expect(parseAll(bytes("@ \"x\" 12 true\t\u{7F}\u{80}\u{C3}\u{A9}\u{FD}")).count == 1)
        #expect(parseAll(bytes("@ \"x\" 12 true\t\u{7F}\u{80}\u{FD}[1]")) == [stray("@"), .value(.array([.int(1)]))])
    }

    @Test func stringErrorsRecoverToo() {
        // Row 42.
        #expect(parseAll("{\"execute\":\u{0C}\"guest-ping\"}") == [stray("\u{0C}"), expectingValue])
    }
}

@Suite struct SilentFlush {
    private func afterFlush(_ prefix: String, _ suffix: String = #"{"execute":"guest-ping"}"#) -> [JSONParserOutput] {
        parseAll(bytes(prefix) + [0xFF] + Array(suffix.utf8))
    }

    private let ping = JSONParserOutput.value(.object(JSONObject(["execute": .string("guest-ping")])))

    @Test func producesNothingByItself() {
        #expect(parseAll([0xFF]).isEmpty)
        #expect(parseAll([0xFF, 0xFF, 0xFF]).isEmpty)
        #expect(parseAll([0xFF, 0x0A]).isEmpty)
    }

    @Test func discardsThePartialMessageInEveryLexerState() {
        for prefix in [
            "",                              // start
            "{\"execute\":\"gu",              // string
            "'gu",                           // single-quoted string
            "\"a\\",                         // escape
            "'a\\",                          // single-quoted escape
            "12", "-", "0", "1.", "1.5", "1e", "1e+", "1e5", "-0",  // numbers
            "nul",                           // keyword
            "{\"execute\":",                 // mid-object
            "[[[[1,2,",                      // mid-array
            "{\"a\":[1,{\"b\"",               // nested
        ] {
            #expect(afterFlush(prefix) == [ping], "prefix \(prefix)")
            #expect(afterFlush(prefix, "").isEmpty, "prefix \(prefix)")
        }
    }

    @Test func endsRecoveryWithoutAnError() {
        let prefix = "@ garbage"
        #expect(afterFlush(prefix) == [stray("@"), ping])
        #expect(afterFlush(prefix, "").count == 1)
    }

    @Test func protocolExamples() {
        #expect(parseAll([0xFF] + Array(#"{"execute":"guest-ping"}"#.utf8)) == [ping])
        var parser = JSONMessageParser()
        #expect(parser.feed(Array(#"{"execute":"gu"#.utf8)).isEmpty)
        #expect(parser.feed([0xFF] + Array(#"{"execute":"guest-ping"}"#.utf8)) == [ping])
        var numbers = JSONMessageParser()
        #expect(numbers.feed(Array("12".utf8)).isEmpty)
        #expect(numbers.feed([0xFF]).isEmpty)
        #expect(numbers.feed(Array(" ".utf8)).isEmpty)
    }

    @Test func completedOutputsBeforeTheFlushAreKept() {
        #expect(parseAll(bytes("1 @ [1]\u{FF}")) == [.value(.int(1)), stray("@"), .value(.array([.int(1)]))])
    }

    @Test func recoveryAndDepthsAreForgotten() {
        // Without the flush the '}' would be swallowed by nothing and answer
        // "expecting value"; after it, the depth counters restart at zero.
        #expect(parseAll(bytes("{{{\u{FF}}")) == [expectingValue])
        #expect(parseAll(bytes("@ \u{FF}1 ")) == [stray("@"), .value(.int(1))])
    }

    @Test func fEIsNotAFlush() {
        #expect(parseAll(bytes("\u{FE}")) == [stray("\u{FFFD}")])
        #expect(parseAll(bytes("{\"execute\":\"gu\u{FE}{\"execute\":\"guest-ping\"}"))
                == [stray("\"gu\u{FFFD}"), ping])
        #expect(parseAll(bytes("12\u{FE}")) == [.value(.int(12)), stray("\u{FFFD}")])
    }

    @Test func resetForgetsEverything() {
        var parser = JSONMessageParser()
        #expect(parser.feed(Array(#"{"execute":"gu"#.utf8)).isEmpty)
        parser.reset()
        #expect(parser.feed(Array(#"{"execute":"guest-ping"}"#.utf8)) == [ping])
        #expect(parser.feed(Array("@ ".utf8)) == [stray("@")])
        parser.reset()
        #expect(parser.feed(Array("1 ".utf8)) == [.value(.int(1))])
    }
}

@Suite struct TokenCap {
    private let small = JSONLimits(maxTokenSize: 16)

    @Test func partialTokenOverTheCapIsRejectedAndLexingRestartsInStartState() {
        // 17 bytes of partial string: cap exceeded at the 17th byte. The rest
        // is fresh input ("[1]" parses; no recovery).
        let out = parseAll("\"" + String(repeating: "a", count: 16) + "[1]", limits: small)
        #expect(out == [.error("JSON token size limit exceeded"), .value(.array([.int(1)]))])
        let digits = parseAll(String(repeating: "1", count: 17) + "2 ", limits: small)
        #expect(digits == [.error("JSON token size limit exceeded"), .value(.int(2))])
        let keyword = parseAll(String(repeating: "a", count: 17) + "true ", limits: small)
        #expect(keyword == [.error("JSON token size limit exceeded"), .value(.bool(true))])
    }

    @Test func theRestOfAnOversizedStringIsLexedAsNewInput() {
        let out = parseAll("\"" + String(repeating: "a", count: 16) + "bc\" ", limits: small)
        #expect(out == [.error("JSON token size limit exceeded"), parseError("invalid keyword 'bc'")])
    }

    @Test func capAlsoCountsEscapes() {
        let out = parseAll("\"" + String(repeating: "a", count: 15) + "\\n\"", limits: small)
        #expect(out.first == .error("JSON token size limit exceeded"))
    }

    @Test func sixtyFourMebibyteString() {
        // A token may not reach 64 MiB: '"' + 64 MiB of 'a' -> exactly one size
        // error; a later request is answered normally.
        var parser = JSONMessageParser()
        var out: [JSONParserOutput] = []
        out += parser.feed([0x22])
        let chunk = [UInt8](repeating: 0x61, count: 1 << 20)
        for _ in 0..<64 { out += parser.feed(chunk) }
        #expect(out == [.error("JSON token size limit exceeded")])
        #expect(parser.feed(Array(#"{"execute":"guest-ping"}"#.utf8))
                == [.value(.object(JSONObject(["execute": .string("guest-ping")])))])
    }
}

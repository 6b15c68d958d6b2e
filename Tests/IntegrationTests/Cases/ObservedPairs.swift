/// Request→response pairs observed on qemu-ga 7.2 at the protocol level, as
/// exchanges with exact expected bytes, each labelled with its row in the
/// table they were first written down in (`§9 row N`). Wire text: `«ff»` is
/// the raw byte 0xFF.
///
/// Not here:
/// - rows 45-48 (0xFF input) are in `ours` (deliberate difference 1: our
///   0xFF is a silent flush) and are excluded from the differential tests;
/// - rows 53-58 went past the protocol into commands whose answers depend on
///   the machine, the clock or earlier requests (guest-get-devices,
///   guest-get-time, guest-fsfreeze-status, guest-shutdown, guest-file-seek,
///   guest-exec) or into frozen mode. Row 53 (guest-get-devices) is a
///   deliberate difference (2), checked in `DeliberateDifferenceTests`; the
///   others are covered by the command tests (`FileTests`, `ExecTests`,
///   `FsfreezeLoopTests`, `DaemonStateTests`, `ControlCommandTests`,
///   `GuestInfoDifferentialTests`).
enum ObservedPairs {
    typealias R = Reply

    /// Rows whose 7.2 answer is also ours.
    static let shared: [WireCase] = [
        WireCase("§9 row 1: guest-ping", #"{"execute":"guest-ping"}"#, R.pong),
        WireCase("§9 row 2: guest-sync", #"{"execute":"guest-sync","arguments":{"id":123}}"#, R.return("123")),
        WireCase("§9 row 3: guest-sync-delimited with request id",
                 #"{"execute":"guest-sync-delimited","arguments":{"id":5},"id":"abc"}"#,
                 #"«ff»{"return": 5, "id": "abc"}"# + "\n"),
        WireCase("§9 row 4: structured id echo", #"{"execute":"guest-ping","id":[1,{"a":null}]}"#,
                 #"{"return": {}, "id": [1, {"a": null}]}"# + "\n"),
        WireCase("§9 row 5: single quotes", #"{'execute':'guest-ping'}"#, R.pong),
        WireCase("§9 row 6: double quote in single-quoted string", #"{'execute':'guest-ping', 'id':'a"b'}"#,
                 #"{"return": {}, "id": "a\"b"}"# + "\n"),
        WireCase("§9 row 7: \\' escape", #"{"execute":"guest-ping","id":"a\'b"}"#,
                 #"{"return": {}, "id": "a'b"}"# + "\n"),
        WireCase("§9 row 8: unknown command with id", #"{"execute":"foo","id":7}"#,
                 #"{"id": 7, "error": {"class": "CommandNotFound", "desc": "The command foo has not been found"}}"# + "\n"),
        WireCase("§9 row 9: command names are case-sensitive", #"{"execute":"GUEST-PING"}"#, R.notFound("GUEST-PING")),
        WireCase("§9 row 10: empty object", "{}", R.error("QMP input lacks member 'execute'")),
        WireCase("§9 row 11: execute not a string", #"{"execute":1}"#,
                 R.error("QMP input member 'execute' must be a string")),
        WireCase("§9 row 12: arguments not an object", #"{"execute":"guest-ping","arguments":[]}"#,
                 R.error("QMP input member 'arguments' must be an object")),
        WireCase("§9 row 13: unexpected member", #"{"execute":"guest-ping","foo":1}"#,
                 R.error("QMP input member 'foo' is unexpected")),
        WireCase("§9 row 14: exec-oob", #"{"exec-oob":"guest-ping"}"#,
                 R.error("QMP input member 'exec-oob' is unexpected")),
        WireCase("§9 row 15: array request", "[1,2]", R.notAnObject),
        WireCase("§9 row 16: bare number needs a terminator", steps: [("1", ""), ("\n", R.notAnObject)]),
        WireCase("§9 row 17: invalid keyword", "foo ", R.parseError("invalid keyword 'foo'")),
        WireCase("§9 row 18: missing argument", #"{"execute":"guest-sync"}"#, R.error("Parameter 'id' is missing")),
        WireCase("§9 row 19: unexpected argument", #"{"execute":"guest-sync","arguments":{"id":1,"x":2}}"#,
                 R.error("Parameter 'x' is unexpected")),
        WireCase("§9 row 20: argument to guest-ping", #"{"execute":"guest-ping","arguments":{"x":2}}"#,
                 R.error("Parameter 'x' is unexpected")),
        WireCase("§9 row 21: string id", #"{"execute":"guest-sync","arguments":{"id":"1"}}"#,
                 R.error("Invalid parameter type for 'id', expected: integer")),
        WireCase("§9 row 22: float id", #"{"execute":"guest-sync","arguments":{"id":1.0}}"#,
                 R.error("Invalid parameter type for 'id', expected: integer")),
        WireCase("§9 row 23: INT64_MIN", #"{"execute":"guest-sync","arguments":{"id":-9223372036854775808}}"#,
                 R.return("-9223372036854775808")),
        WireCase("§9 row 24: UINT64_MAX id", #"{"execute":"guest-ping","id":18446744073709551615}"#,
                 #"{"return": {}, "id": 18446744073709551615}"# + "\n"),
        WireCase("§9 row 25: huge integer becomes double", #"{"execute":"guest-ping","id":123456789012345678901234567890}"#,
                 #"{"return": {}, "id": 1.2345678901234568e+29}"# + "\n"),
        WireCase("§9 row 26: overflow to inf", #"{"execute":"guest-ping","id":1e400}"#,
                 #"{"return": {}, "id": inf}"# + "\n"),
        WireCase("§9 row 27: %.17g", #"{"execute":"guest-ping","id":0.1}"#,
                 #"{"return": {}, "id": 0.10000000000000001}"# + "\n"),
        WireCase("§9 row 28: integral double", #"{"execute":"guest-ping","id":1E2}"#,
                 #"{"return": {}, "id": 100}"# + "\n"),
        WireCase("§9 row 29: unicode escapes and raw UTF-8",
                 #"{"execute":"guest-ping","id":"\u00e9\ud83d\ude00«c3 a9»\u0001/\/"}"#,
                 #"{"return": {}, "id": "\u00E9\uD83D\uDE00\u00E9\u0001//"}"# + "\n"),
        WireCase("§9 row 30: short escapes and DEL", #"{"execute":"guest-ping","id":"\b\f\n\r\t\"\\«7f»"}"#,
                 #"{"return": {}, "id": "\b\f\n\r\t\"\\\u007F"}"# + "\n"),
        WireCase("§9 row 31: \\u0000", #"{"execute":"guest-ping","id":"a\u0000b"}"#,
                 #"{"return": {}, "id": "a\u0000b"}"# + "\n"),
        WireCase("§9 row 32: modified UTF-8 NUL", #"{"execute":"guest-ping","id":"a«c0 80»b"}"#,
                 #"{"return": {}, "id": "a\u0000b"}"# + "\n"),
        WireCase("§9 row 33: invalid escape", #"{"execute":"guest-ping","id":"\x"}"#,
                 R.parseError("invalid escape sequence in string")),
        WireCase("§9 row 34: lone surrogate escape", #"{"execute":"guest-ping","id":"\ud800"}"#,
                 R.parseError(#"\\ud800 is not a valid Unicode character"#)),
        WireCase("§9 row 35: invalid UTF-8 in a string", #"{"execute":"guest-ping","id":"«c3 28»"}"#,
                 R.parseError("invalid UTF-8 sequence in string")),
        WireCase("§9 row 36: duplicate key", #"{"execute":"guest-ping","execute":"guest-ping"}"#,
                 R.parseError("duplicate key")),
        WireCase("§9 row 37: trailing comma", #"{"execute":"guest-ping",}"#, R.expectingValue),
        WireCase("§9 row 38: missing colon", #"{"execute" "guest-ping"}"#, R.parseError("missing : in object pair")),
        WireCase("§9 row 39: non-string key", "{1:2}", R.parseError("key is not a string in object")),
        WireCase("§9 row 40: stray byte", "@", R.parseError("stray '@'")),
        WireCase("§9 row 41: control byte in a string", #"{"execute":"guest-«01»ping"}"#,
                 R.parseError(#"stray '\"guest-\u0001'"#) + R.expectingValue),
        WireCase("§9 row 42: form feed between tokens", #"{"execute":«0c»"guest-ping"}"#,
                 R.parseError(#"stray '\f'"#) + R.expectingValue),
        WireCase("§9 row 43: extra closer", #"{"execute":"guest-ping"}}"#, R.pong + R.expectingValue),
        WireCase("§9 row 44: mismatched closer", #"{"execute":"guest-ping"]"#,
                 R.parseError("expected separator in dict")),
        WireCase("§9 row 49: NUL byte", "«00»", R.parseError("stray ''")),
        WireCase("§9 row 50: lone continuation byte outside a string", "«80»", R.parseError(#"stray '\uFFFD'"#)),
        WireCase("§9 row 51: delimited sync argument error has no 0xFF",
                 #"{"execute":"guest-sync-delimited","arguments":{"id":"x"}}"#,
                 R.error("Invalid parameter type for 'id', expected: integer")),
        WireCase("§9 row 52: 0xFF only on the delimited reply",
                 #"{"execute":"guest-sync-delimited","arguments":{"id":1}}{"execute":"guest-ping"}"#,
                 "«ff»" + R.return("1") + R.pong),
        WireCase("§9 row 59: unexpected argument picked in hash order, id first in errors",
                 #"{"id":5,"execute":"guest-ping","arguments":{"a":1,"b":2}}"#,
                 #"{"id": 5, "error": {"class": "GenericError", "desc": "Parameter 'b' is unexpected"}}"# + "\n"),
        WireCase("§9 row 60: 1025 nested arrays", timeout: .seconds(30),
                 input: { wire(String(repeating: "[", count: 1025) + String(repeating: "]", count: 1025) + "\n") },
                 expected: {
                     wire(R.error("JSON nesting depth limit exceeded")
                         + String(repeating: R.expectingValue, count: 1025))
                 }),
        WireCase("§9 row 61: 2,097,153 tokens", timeout: .seconds(60),
                 input: { wire("[" + String(repeating: "1,", count: 1_048_575) + "1]") },
                 expected: { wire(R.error("JSON token count limit exceeded")) }),
        WireCase("§9 row 62: a 64 MiB string token", timeout: .seconds(120),
                 input: { [0x22] + Bytes(repeating: UInt8(ascii: "a"), count: 64 << 20 - 2) + [0x22] },
                 expected: { wire(R.error("JSON token size limit exceeded")) }),
        WireCase("§9 row 63: id echoed on envelope errors", #"{"arguments":{},"id":3}"#,
                 #"{"id": 3, "error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}}"# + "\n"),
        WireCase("§9 row 64: nan is not a keyword", #"{"execute":"guest-ping","id":nan}"#,
                 R.parseError("invalid keyword 'nan'")),
        WireCase("§9 row 65: missing list separator", "[1 2]", R.parseError("expected separator in list")),
        // Incomplete values wait forever (qemu-ga has no timeout); closing
        // them later proves that the bytes were read and kept.
        WireCase("incomplete value: unterminated array", steps: [("[1,2", ""), ("]", R.notAnObject)]),
        WireCase("incomplete value: unterminated string", steps: [(#""abc"#, ""), (#"""#, R.notAnObject)]),
        WireCase("incomplete value: unterminated object",
                 steps: [(#"{"a":[1,{"b":2}]"#, ""), ("}", R.error("QMP input member 'a' is unexpected"))]),
    ]

    /// Rows 45-48, as OUR agent answers them (deliberate difference 1: 0xFF
    /// silently discards any partial message and restarts the lexer; 7.2
    /// answers `JSON parse error, stray '\uFFFD'`).
    static let ours: [WireCase] = [
        WireCase("§9 row 45 (ours): 0xFF alone is silent", "«ff»", ""),
        WireCase("§9 row 46 (ours): 0xFF before a request", #"«ff»{"execute":"guest-ping"}"#, R.pong),
        WireCase("§9 row 47 (ours): 0xFF discards a partial request",
                 steps: [(#"{"execute":"gu"#, ""), (#"«ff»{"execute":"guest-ping"}"#, R.pong)]),
        WireCase("§9 row 48 (ours): 0xFF discards a pending number", steps: [("12", ""), ("«ff»", "")]),
    ]
}

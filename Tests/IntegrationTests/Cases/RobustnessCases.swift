/// Robustness exchanges whose exact answers are the same for 7.2 and ours:
/// checked byte for byte on our agent and compared in the differential tests.
enum RobustnessCases {
    typealias R = Reply

    static let pipelinedPings = 10_000

    static let all: [WireCase] = [
        WireCase("10,000 pings pipelined in one write", timeout: .seconds(60),
                 input: { wire(String(repeating: Request.ping, count: pipelinedPings)) },
                 expected: { wire(String(repeating: R.pong, count: pipelinedPings)) }),
        WireCase("mixed requests pipelined without separators",
                 Request.ping + Request.sync(1) + Request.syncDelimited(2) + "[]" + Request.ping,
                 R.pong + R.return("1") + "«ff»" + R.return("2") + R.notAnObject + R.pong),
        WireCase("request fed one byte per write",
                 #"{"execute":"guest-sync-delimited","arguments":{"id":42},"id":"x"}"#,
                 #"«ff»{"return": 42, "id": "x"}"# + "\n", perByte: true),
        // The lexer cuts the token at 64 MiB and restarts in its start state;
        // the rest of the token is blanks, so the sync after it is answered.
        WireCase("70 MB string token", timeout: .seconds(120),
                 input: {
                     [0x22] + Bytes(repeating: 0x20, count: 70_000_000) + wire(Request.sync(70))
                 },
                 expected: { wire(R.error("JSON token size limit exceeded") + R.return("70")) }),
        // `{` and 1023 `[` are accepted, the 1024th `[` exceeds the depth
        // limit (1024) and resets the message; the remaining 976 `[` form a
        // new message, closed by 976 `]` (an array: not an object); each of
        // the other 1024 `]` and the `}` is a stray closer.
        WireCase("2000-deep nesting", timeout: .seconds(30),
                 input: {
                     wire(#"{"execute":"guest-ping","id":"# + String(repeating: "[", count: 2000)
                         + String(repeating: "]", count: 2000) + "}")
                 },
                 expected: {
                     wire(R.error("JSON nesting depth limit exceeded") + R.notAnObject
                         + String(repeating: R.expectingValue, count: 1025))
                 }),
        // 1024 `[` are accepted, the 1025th resets; 975 `[` + 975 `]` make an
        // array; 1025 stray `]` remain.
        WireCase("2000 nested arrays at top level", timeout: .seconds(30),
                 input: { wire(String(repeating: "[", count: 2000) + String(repeating: "]", count: 2000)) },
                 expected: {
                     wire(R.error("JSON nesting depth limit exceeded") + R.notAnObject
                         + String(repeating: R.expectingValue, count: 1025))
                 }),
        WireCase("1024 nested arrays are accepted", timeout: .seconds(30),
                 input: {
                     wire(#"{"execute":"guest-ping","id":"# + String(repeating: "[", count: 1023)
                         + String(repeating: "]", count: 1023) + "}")
                 },
                 expected: {
                     wire(#"{"return": {}, "id": "# + String(repeating: "[", count: 1023)
                         + String(repeating: "]", count: 1023) + "}\n")
                 }),
    ] + invalidUTF8

    /// Invalid UTF-8 inside strings (the parser rejects the message) and
    /// outside strings (the lexer rejects the byte; the error text shows it
    /// as \uFFFD).
    static let invalidUTF8: [WireCase] = {
        let inside: [(String, String)] = [
            ("overlong '/'", "«c0 af»"),
            ("encoded surrogate", "«ed a0 80»"),
            ("beyond U+10FFFF", "«f4 90 80 80»"),
            ("noncharacter U+FFFE", "«ef bf be»"),
            ("truncated sequence", "«e2 82»"),
            ("lone continuation byte", "«80»"),
            ("five-byte form", "«f8 88 80 80 80»"),
            ("lead byte then ASCII", "«c3»a"),
        ]
        var cases = inside.map { name, bytes in
            WireCase("invalid UTF-8 inside a string: \(name)", #"{"execute":"guest-ping","id":"x"# + bytes + #""}"#,
                     R.parseError("invalid UTF-8 sequence in string"))
        }
        cases += [
            WireCase("valid four-byte UTF-8 inside a string", #"{"execute":"guest-ping","id":"«f0 9f 98 80»"}"#,
                     #"{"return": {}, "id": "\uD83D\uDE00"}"# + "\n"),
            WireCase("0xFE inside a string", #"{"execute":"guest-ping","id":"ab«fe»"}"#,
                     R.parseError(#"stray '\"ab\uFFFD'"#) + R.expectingValue),
            WireCase("invalid UTF-8 outside strings: two-byte sequence", "«c3 a9»", R.parseError(#"stray '\uFFFD'"#)),
            WireCase("invalid UTF-8 outside strings: four-byte sequence then request",
                     "«f0 9f 98 80»" + Request.ping, R.parseError(#"stray '\uFFFD'"#) + R.pong),
            WireCase("invalid UTF-8 outside strings: 0xFE", "«fe»", R.parseError(#"stray '\uFFFD'"#)),
            WireCase("invalid UTF-8 outside strings: inside an object",
                     #"{"execute":"guest-ping"«c3 a9»}"#, R.parseError(#"stray '\uFFFD'"#) + R.expectingValue),
        ]
        return cases
    }()
}

/// Inputs compared between our agent and 7.2 without a written-down answer
/// (the reference's answer is the expectation). Each is one write on a fresh
/// connection, followed by the fence (see `WireCase`), so every input must
/// leave the lexer able to parse the fence.
///
/// Only the four protocol-level commands (guest-sync-delimited, guest-sync,
/// guest-ping, guest-info argument errors) and failures before command
/// lookup: the other commands reach the machine and are compared in
/// `ControlDifferentialTests` and `GuestInfoDifferentialTests`, and
/// guest-info's answer differs (deliberate difference 2). No 0xFF byte
/// anywhere (deliberate difference 1).
enum DifferentialInputs {
    static let requests: [String] = [
        // id echo: numbers
        "-0", "0", "-1", "1.5", "-1.5e-7", "1e21", "1e20", "1e-2", "1E+2", "0.0", "-0.0", "1e-400", "-1e400",
        "9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551616",
        "123456789.0", "5e-324", "1.7976931348623157e308", "2.5e-5", "100000000000000000000",
        // id echo: strings and structures
        #""\u00E9\uD83D\uDE00""#, #""\uDBFF\uDFFF""#, #""\uFDD0""#, #""\uFFFF""#, #""\uD800\u0041""#, #""\uDC00""#,
        #""\u12""#, #""\U00c9""#, #""«09»""#, #""«7f»«1f»""#, #""\/\\\"""#, "'\\\"'", "'it\\'s'",
        #"{"b":1,"a":2,"return":3,"error":4,"id":5,"desc":6,"class":7}"#, "[true,false,null,[],{}]",
        #"{"x":{"y":{"z":[1,"2",3.5]}}}"#, "null", "true", #""""#, "[1,2,]", #"{"a":{"a":1,"a":2}}"#,
    ].map { #"{"execute":"guest-ping","id":"# + $0 + "}" } + [
        // envelope
        #"{"foo":1,"execute":1}"#, #"{"execute":null}"#, #"{"execute":"guest-ping","arguments":null}"#,
        #"{"id":null}"#, #"{"execute":"guest-ping","":1}"#, #"{"a":2,"zz":5,"b":1,"return":4,"c":3}"#,
        #"{"execute":"guest-ping","exec-oob":"guest-ping"}"#, #"{"execute":"guest-ping","id":1,"control":2}"#,
        #"{"execute":""}"#, #"{"execute":"guest-ping "}"#, #"{"execute":"guest-pingx","id":"z"}"#,
        #"{"execute":"guest-ping","arguments":{}}"#, #"{"execute":"guest-info","arguments":{"x":1}}"#,
        // arguments of the four commands
        #"{"execute":"guest-sync","arguments":{"id":true}}"#, #"{"execute":"guest-sync","arguments":{"id":null}}"#,
        #"{"execute":"guest-sync","arguments":{"id":9223372036854775807}}"#,
        #"{"execute":"guest-sync","arguments":{"id":9223372036854775808}}"#,
        #"{"execute":"guest-sync","arguments":{"id":1e3}}"#, #"{"execute":"guest-sync","arguments":{"id":-0}}"#,
        #"{"execute":"guest-sync","arguments":{"id":[]}}"#, #"{"execute":"guest-sync","arguments":{"id":{}}}"#,
        #"{"execute":"guest-sync","arguments":{"x":1,"id":1}}"#, #"{"execute":"guest-sync","id":1}"#,
        #"{"execute":"guest-sync","arguments":{"id":1,"a":1,"b":2,"c":3}}"#,
        // several unexpected arguments: the one named follows GLib's hash table order, also past its resizes
        #"{"execute":"guest-ping","arguments":{"u":1,"ll":1,"o":1,"n":1,"id2":1,"pp":1,"é":1,"v":1,"AA":1,"path":1,"foo":1,"k184":1}}"#,
        #"{"execute":"guest-sync","arguments":{"id":1,"# + (0..<40).map { #""k\#($0)":1"# }.joined(separator: ",") + "}}",
        #"{"execute":"guest-ping","arguments":{"# + (0..<90).map { #""m\#($0 * 7)":\#($0)"# }.joined(separator: ",") + "}}",
        #"{"execute":"guest-sync","arguments":{"id":1},"exec-oob":1}"#,
        #"{"execute":"guest-sync-delimited","arguments":{"id":-1},"id":{"x":[true,false,null]}}"#,
        #"{"execute":"guest-sync-delimited"}"#, #"{"execute":"guest-sync-delimited","arguments":{"id":1.5}}"#,
        #"{'execute':'guest-sync','arguments':{'id':'1'}}"#,
        // lexer
        "True", "nul1", "inf ", "-}", "1.}", ".5", "+1", "01", "- ", "1e ", "1e+ ", "0x10", "-0 ", "1.5e3 ",
        "@ " + Request.ping, "@ garbage\n" + Request.ping, "@«09»" + Request.ping, "@«0d»", "@«01»",
        #"{"execute":"guest-ping", @ "id": 1}"#, #"{"execute":"guest-sync","arguments":{"id":01}}"#,
        "«fe»", "«fe»" + Request.ping, #""abc«fe»"#, "12«fe»", "tru«fe»", "«fe»«fe»", "«1f»", "«7f»", "%d",
        "\n\t\r " + Request.ping + "  \n", "'abc'", #"'a"b'"#, #""a\'b""#,
        // parser
        "[1,]", #"{"a":1,}"#, #"{"a":1 "b":2}"#, #"{"a":1]"#, "]", ",", ":", "}", "[]", #""x""#, "null ",
        "true ", "false ", "[[]]", "{,}", "{:}", #"{"a"}"#, #"{"a":}"#, "[,1]", "[1:2]",
        // pipelining
        Request.ping + " " + Request.sync(1) + "\n" + Request.ping,
        Request.sync(-5) + Request.syncDelimited(6) + Request.syncDelimited(7),
    ]

    static let all: [WireCase] = requests.map { request in
        WireCase("input " + render(wire(request), limit: 120), request, nil)
    }

    /// Random bytes without 0xFF, then 0xFE: a lexical error in any lexer
    /// state, so the fence that follows is always parsed from a clean state.
    static let garbageCases: [WireCase] = (1...4).flatMap { seed -> [WireCase] in
        [
            WireCase("uniform garbage, seed \(seed)", timeout: .seconds(30),
                     input: { garbage(seed: UInt64(seed), count: 65_536, excluding: [0xFF]) + [0xFE] },
                     expected: nil),
            WireCase("JSON-like garbage, seed \(seed)", timeout: .seconds(30),
                     input: { garbage(seed: UInt64(seed), count: 65_536, alphabet: jsonishAlphabet) + [0xFE] },
                     expected: nil),
        ]
    }
}

import FuzzingSupport
import QMPJSON

/// libFuzzer entry point. Two properties of the incremental parser:
/// - fed in chunks whose sizes come from the input, it gives exactly what it
///   gives fed the input whole;
/// - whatever came before, 0xFF followed by a request yields that request
///   and nothing else (a client can always resynchronise).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    var whole = JSONMessageParser()
    let expected = whole.feed(UnsafeRawBufferPointer(bytes))

    var chunked = JSONMessageParser()
    var outputs: [JSONParserOutput] = []
    var offset = 0
    // The chunk sizes (1 to 64 bytes) follow from the input's size, so that a
    // failing input reproduces.
    var random = SplitMix64(seed: UInt64(size))
    while offset < size {
        let length = min(size - offset, Int.random(in: 1...64, using: &random))
        outputs += chunked.feed(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[offset..<offset + length])))
        offset += length
    }
    precondition(outputs == expected, "chunked parsing differs from whole parsing")

    let resync = whole.feed([0xFF] + Array(#"{"execute":"guest-ping"}"#.utf8))
    precondition(resync == [.value(.object(JSONObject(["execute": .string("guest-ping")])))], "0xFF did not resynchronise: \(resync)")
    return 0
}

#if FUZZING
@_cdecl("fuzz_json_parser_main")
func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzJSONParser)
}
#else
@main struct ReplayCorpus {
    static func main() { replayCorpus(CommandLine.arguments.dropFirst(), fuzzJSONParser) }
}
#endif

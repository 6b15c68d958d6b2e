import Glibc
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
    var seed = UInt32(truncatingIfNeeded: size) &* 2_654_435_761
    while offset < size {
        seed = seed &* 1_103_515_245 &+ 12_345
        let length = min(size - offset, Int(seed >> 16) % 64 + 1)
        outputs += chunked.feed(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[offset..<offset + length])))
        offset += length
    }
    precondition(outputs == expected, "chunked parsing differs from whole parsing")

    let resync = whole.feed([0xFF] + Array(#"{"execute":"guest-ping"}"#.utf8))
    precondition(resync == [.value(.object(JSONObject(["execute": .string("guest-ping")])))], "0xFF did not resynchronise: \(resync)")
    return 0
}

#if FUZZING
/// SwiftPM links executables with their entry point renamed; hand it to
/// libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ test: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32

@_cdecl("fuzz_json_parser_main")
func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return runFuzzerDriver(&argc, &argv, fuzzJSONParser)
}
#else
/// Without libFuzzer: replays the files named on the command line (a corpus).
@main struct ReplayCorpus {
    static func main() {
        for path in CommandLine.arguments.dropFirst() {
            guard let file = fopen(path, "rb") else {
                print("cannot open \(path)")
                exit(1)
            }
            var bytes: [UInt8] = [0]
            bytes.removeAll(keepingCapacity: true)
            while case let byte = fgetc(file), byte != EOF { bytes.append(UInt8(byte)) }
            fclose(file)
            bytes.append(0)  // a valid pointer even for an empty file
            _ = bytes.withUnsafeBufferPointer { fuzzJSONParser($0.baseAddress!, $0.count - 1) }
        }
    }
}
#endif

#if canImport(Glibc)
import Glibc
#endif
import Testing

/// The fuzzers built without libFuzzer replay their inputs and stop at the
/// first property that fails (Sources/fuzz-*). Every seed and every input a
/// fuzzer once failed on (`regression-*`) replays in each test run, so a
/// finding that was fixed stays fixed without running the fuzzers.
@Suite struct FuzzCorpusReplayTests {
    @Test("Each fuzzer's corpus replays without a finding", arguments: ["json-parser", "dispatcher"])
    func corpusReplays(fuzzer: String) throws {
        let binary = AgentBinary.testExecutableDirectory() + "/fuzz-" + fuzzer
        try #require(access(binary, X_OK) == 0, "\(binary) is not built")
        let tests = "/" + #filePath.split(separator: "/").dropLast(2).joined(separator: "/")
        let directory = tests + "/fuzz/corpus/" + fuzzer
        let inputs = try directoryEntries(directory).sorted().map { directory + "/" + $0 }
        try #require(inputs.count >= 8, "\(directory) holds \(inputs.count) inputs")
        let scratch = try TemporaryDirectory()
        // The dispatcher fuzzer builds its fixture machine under TMPDIR.
        let run = try runProgram(binary, inputs, environment: ["TMPDIR": scratch.path, "SWIFT_BACKTRACE": "enable=no"],
                                 timeout: .seconds(120))
        #expect(run.exitStatus == 0, "\(run)")
    }
}

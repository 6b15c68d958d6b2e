import Foundation
import QMPJSON
import Testing
@testable import GuestAgent

/// The dispatcher fuzzer starts from Tests/fuzz/corpus/dispatcher: a valid
/// request with every argument for each registered command, so that a new
/// command is fuzzed from the day it is registered.
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../fuzz/corpus/dispatcher").standardized.path

    @Test func everyRegisteredCommandHasASeed() throws {
        var seeded = Set<String>()
        for name in try FileManager.default.contentsOfDirectory(atPath: Self.corpus) {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.corpus + "/" + name)))
            var parser = JSONMessageParser()
            for case .value(.object(let request)) in parser.feed(bytes) {
                if case .string(let command)? = request["execute"] { seeded.insert(command) }
            }
        }
        let missing = CommandRegistry().entries.map(\.name).filter { !seeded.contains($0) }
        #expect(missing.isEmpty, "no seed in \(Self.corpus) for \(missing)")
    }
}

import Foundation
import Testing

/// The rules of the layout that a compiler does not check.
@Suite struct LayoutTests {
    static let sources = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources")

    /// Commands reach the machine only through the system layer (so that a
    /// test can hand them a fixture machine): no C module, no raw pointer,
    /// no errno of their own.
    @Test func commandsAreSwiftOnly() throws {
        let directory = Self.sources.appendingPathComponent("GuestAgent/Commands")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".swift") }
        #expect(files.count > 10)
        for file in files {
            let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).hasPrefix("//") {
                for forbidden in ["import Glibc", "import CGLib", "import CUdev", "Unsafe", "errno ="] {
                    #expect(!line.contains(forbidden), "\(file): \(line)")
                }
            }
        }
    }

    /// The executable only starts the agent on the machine it runs on.
    @Test func theShippedExecutableHasNoFixture() throws {
        let main = try String(contentsOf: Self.sources.appendingPathComponent("qemu-ga/main.swift"), encoding: .utf8)
        #expect(main.contains("system: .current()"))
        #expect(!main.contains("Fixture") && !main.contains("getenv"))
    }
}

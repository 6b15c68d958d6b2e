import Glibc
import Testing
import TestRequirements
@testable import GuestAgent

extension NeedsSystem {
    /// Files of the machine that read but refuse writes even to root: made
    /// immutable with chattr (root and e2fsprogs).
    @Suite struct ImmutableFileTests {
        /// A fresh machine whose file at `path` holds `text` and is immutable
        /// while `body` runs.
        private func withImmutableFile(_ path: String, _ text: String, _ body: (FixtureTree) throws -> Void) throws {
            let machine = try FixtureTree()
            try machine.file(path, text)
            let file = machine.path(path)
            #expect(system("chattr +i '\(file)'") == 0)
            defer { withExtendedLifetime(machine) { _ = system("chattr -i '\(file)'") } }
            try body(machine)
        }

        @Test func aStateFileThatCannotBeWritten() throws {
            try withImmutableFile("/sys/power/state", "freeze mem disk\n") { machine in
                #expect(answer(#"{"execute":"guest-suspend-ram"}"#, agent: machine.agent())
                            == errorLine("suspend: cannot write to '/sys/power/state': Operation not permitted"))
            }
        }

        /// A memory block's state file likewise: that block fails, EPERM.
        @Test func aStateThatCannotBeWritten() throws {
            try withImmutableFile("/sys/devices/system/memory/memory8/state", "online\n") { machine in
                #expect(answer(SetMemoryBlocksTests.request(#"{"phys-index":8,"online":false}"#), agent: machine.agent())
                            == #"{"return": [{"response": "operation-failed", "error-code": 1, "phys-index": 8}]}"#)
            }
        }
    }
}

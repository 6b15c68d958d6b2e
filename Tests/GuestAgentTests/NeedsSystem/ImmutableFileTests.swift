import Glibc
import Testing
import TestRequirements
@testable import GuestAgent

extension NeedsSystem {
    /// Files of the machine that read but refuse writes even to root: made
    /// immutable with chattr (root and e2fsprogs).
    @Suite struct ImmutableFileTests {
        /// An immutable state file reads, but refuses the write even to root.
        @Test func aStateFileThatCannotBeWritten() throws {
            let machine = try FixtureTree()
            try machine.file("/sys/power/state", "freeze mem disk\n")
            let state = machine.path("/sys/power/state")
            #expect(system("chattr +i '\(state)'") == 0)
            defer { withExtendedLifetime(machine) { _ = system("chattr -i '\(state)'") } }
            #expect(answer(#"{"execute":"guest-suspend-ram"}"#, agent: machine.agent())
                        == errorLine("suspend: cannot write to '/sys/power/state': Operation not permitted"))
        }

        /// A memory block's state file likewise: that block fails, EPERM.
        @Test func aStateThatCannotBeWritten() throws {
            let machine = try FixtureTree()
            try machine.file("/sys/devices/system/memory/memory8/state", "online\n")
            let state = machine.path("/sys/devices/system/memory/memory8/state")
            #expect(system("chattr +i '\(state)'") == 0)
            defer { withExtendedLifetime(machine) { _ = system("chattr -i '\(state)'") } }
            #expect(answer(SetMemoryBlocksTests.request(#"{"phys-index":8,"online":false}"#), agent: machine.agent())
                        == #"{"return": [{"response": "operation-failed", "error-code": 1, "phys-index": 8}]}"#)
        }
    }
}

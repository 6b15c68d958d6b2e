import Glibc
import Testing
@testable import GuestAgent

/// guest-set-time on a fixture machine: its clock is `<root>/settimeofday`,
/// its hardware clock a fake `/sbin/hwclock`. The real clock is never set.
@Suite struct SetTimeTests {
    @Test func withATimeTheClockIsSetThenTheHardwareClockFromIt() throws {
        let machine = try FixtureTree()
        try machine.fake("/sbin/hwclock")
        #expect(answer(#"{"execute":"guest-set-time","arguments":{"time":1700000000123456789}}"#, agent: machine.agent()) == emptyReturn)
        #expect(readFile(machine.path("/settimeofday")) == "1700000000 123456\n")
        #expect(machine.calls == ["hwclock -w"])
    }

    @Test func withoutTheClockIsSetFromTheHardwareClock() throws {
        let machine = try FixtureTree()
        try machine.fake("/sbin/hwclock")
        #expect(answer(#"{"execute":"guest-set-time"}"#, agent: machine.agent()) == emptyReturn)
        #expect(readFile(machine.path("/settimeofday")) == nil)
        #expect(machine.calls == ["hwclock -s"])
    }

    /// The year (local time, UTC here) must be 1970...2069; nothing runs otherwise.
    @Test(arguments: [
        -1_000_000_000 as Int64, Int64.min, 3_155_760_000_000_000_000, Int64.max,
    ])
    func outOfRangeTimesAreRefused(time: Int64) throws {
        let machine = try FixtureTree()
        try machine.fake("/sbin/hwclock")
        #expect(answer(#"{"execute":"guest-set-time","arguments":{"time":\#(time)}}"#, agent: machine.agent())
                    == errorLine("Invalid time"))
        #expect(readFile(machine.path("/settimeofday")) == nil)
        #expect(machine.calls.isEmpty)
    }

    /// The last second of 2069 and the first of 1970 are accepted.
    @Test(arguments: [(0 as Int64, "0 0\n"), (3_155_759_999_999_999_000, "3155759999 999999\n")])
    func theEdgesOfTheRange(time: Int64, clock: String) throws {
        let machine = try FixtureTree()
        try machine.fake("/sbin/hwclock")
        #expect(answer(#"{"execute":"guest-set-time","arguments":{"time":\#(time)}}"#, agent: machine.agent()) == emptyReturn)
        #expect(readFile(machine.path("/settimeofday")) == clock)
    }

    @Test func aClockThatCannotBeSet() throws {
        let machine = try FixtureTree()
        try machine.fake("/sbin/hwclock")
        try machine.directory("/settimeofday")
        #expect(answer(#"{"execute":"guest-set-time","arguments":{"time":1700000000000000000}}"#, agent: machine.agent())
                    == errorLine("Failed to set time to guest: Is a directory"))
        #expect(machine.calls.isEmpty)
    }

    @Test func hwclockFailures() throws {
        let machine = try FixtureTree()
        try machine.fake("/sbin/hwclock", status: 1, output: "hwclock: Cannot access the Hardware Clock via any known method.\n")
        #expect(answer(#"{"execute":"guest-set-time"}"#, agent: machine.agent())
                    == errorLine("child process has failed to set hardware clock to system time: hwclock: Cannot access the Hardware Clock via any known method.\n"))
        let missing = try FixtureTree()
        #expect(answer(#"{"execute":"guest-set-time","arguments":{"time":1700000000000000000}}"#, agent: missing.agent())
                    == errorLine("child process has failed to set hardware clock to system time: failed to exec '/sbin/hwclock': No such file or directory\n"))
        // The system clock was set before hwclock failed.
        #expect(readFile(missing.path("/settimeofday")) == "1700000000 0\n")
    }
}

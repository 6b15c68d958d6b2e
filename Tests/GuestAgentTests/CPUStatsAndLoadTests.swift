import Foundation
import Glibc
import Testing
@testable import GuestAgent

@Suite struct CpustatsTests {
    private var ticks: UInt64 { UInt64(sysconf(Int32(_SC_CLK_TCK))) }

    /// Every counter in milliseconds; members exist as the line has numbers.
    @Test func perProcessorLinesInMilliseconds() throws {
        #expect(ticks == 100, "the expectations assume 100 clock ticks per second")
        let tree = try FixtureTree()
        try tree.file("/proc/stat", """
            cpu  100 200 300 400 500 600 700 800 900 1000
            cpu0 1 2 3 4 5 6 7 8 9 10
            cpu1 11 12 13 14
            intr 12345 0 0
            cpu2 21 22 23 24 25 26 27
            ctxt 999
            cpu3 31 32 33 34 35 36 37 38 39
            cpu12 18446744073709551615 0 0 0 0
            cpu4 41 42 43
            cpu5 1 1 1 1

            """)
        expectReturn("guest-get-cpustats", """
            [{"type": "linux", "cpu": 0, "user": 10, "nice": 20, "system": 30, "idle": 40, "iowait": 50, "irq": 60, \
            "softirq": 70, "steal": 80, "guest": 90, "guestnice": 100}, \
            {"type": "linux", "cpu": 1, "user": 110, "nice": 120, "system": 130, "idle": 140}, \
            {"type": "linux", "cpu": 2, "user": 210, "nice": 220, "system": 230, "idle": 240, "iowait": 250, \
            "irq": 260, "softirq": 270}, \
            {"type": "linux", "cpu": 3, "user": 310, "nice": 320, "system": 330, "idle": 340, "iowait": 350, \
            "irq": 360, "softirq": 370, "steal": 380, "guest": 390}, \
            {"type": "linux", "cpu": 12, "user": 184467440737095506, "nice": 0, "system": 0, "idle": 0, "iowait": 0}]
            """, agent: tree.agent())
    }

    @Test func missingFile() throws {
        let tree = try FixtureTree()
        expectError("guest-get-cpustats", #"open("/proc/stat"): No such file or directory"#, agent: tree.agent())
    }
}

@Suite struct LoadTests {
    @Test func theThreeAveragesOfProcLoadavg() throws {
        let tree = try FixtureTree()
        try tree.file("/proc/loadavg", "0.15 1.00 12.50 3/456 7890\n")
        expectReturn("guest-get-load", #"{"load1m": 0.14999999999999999, "load5m": 1, "load15m": 12.5}"#, agent: tree.agent())
    }

    @Test func errors() throws {
        let tree = try FixtureTree()
        let agent = tree.agent()
        expectError("guest-get-load", "cannot query load average: No such file or directory", agent: agent)
        try tree.file("/proc/loadavg", "0.15 1.00\n")
        expectError("guest-get-load", "cannot query load average: Success", agent: agent)
    }

    /// This machine: the values of /proc/loadavg around the call.
    @Test func theRealMachine() throws {
        func averages() -> [Double] {
            (readFile("/proc/loadavg") ?? "").split(separator: " ").prefix(3).compactMap { Double($0) }
        }
        let before = averages()
        let reply = replyLine("guest-get-load", agent: GAState(system: .host()))
        let after = averages()
        let candidates = [before, after].map {
            returnLine(#"{"load1m": \#($0[0]), "load5m": \#($0[1]), "load15m": \#($0[2])}"#)
        }
        #expect(candidates.contains(reply), "\(reply) vs /proc/loadavg \(before) / \(after)")
    }
}

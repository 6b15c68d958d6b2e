import Foundation
import Glibc
import Testing
@testable import GuestAgent

@Suite struct VcpusTests {
    /// Four processors, two of them offline; cpu0 has no `online` file.
    @Test func offlineProcessorsAndOneThatCannotGoOffline() throws {
        let tree = try FixtureTree()
        let cpu = "/sys/devices/system/cpu"
        try tree.directory(cpu + "/cpu0")
        try tree.file(cpu + "/cpu1/online", "1\n")
        try tree.file(cpu + "/cpu2/online", "0\n")
        try tree.file(cpu + "/cpu10/online", "0")
        try tree.directory(cpu + "/cpufreq")
        try tree.directory(cpu + "/cpuidle")
        try tree.file(cpu + "/online", "0-1\n")
        try tree.file(cpu + "/possible", "0-10\n")
        let processors = tree.inDirectoryOrder(cpu, [
            "cpu0": #"{"logical-id": 0, "online": true, "can-offline": false}"#,
            "cpu1": #"{"logical-id": 1, "online": true, "can-offline": true}"#,
            "cpu2": #"{"logical-id": 2, "online": false, "can-offline": true}"#,
            "cpu10": #"{"logical-id": 10, "online": false, "can-offline": true}"#,
        ])
        expectReturn("guest-get-vcpus", "[" + processors.joined(separator: ", ") + "]", agent: tree.agent())
    }

    @Test func errors() throws {
        let tree = try FixtureTree()
        let agent = tree.agent()
        expectError("guest-get-vcpus", "failed to list entries: /sys/devices/system/cpu: No such file or directory", agent: agent)

        try tree.directory("/sys/devices/system/cpu/cpu3/online")
        expectError("guest-get-vcpus", #"pread("/sys/devices/system/cpu/cpu3//online"): Is a directory"#, agent: agent)
        try FileManager.default.removeItem(atPath: tree.root + "/sys/devices/system/cpu/cpu3/online")
        try tree.file("/sys/devices/system/cpu/cpu3/online", "")
        expectError("guest-get-vcpus", #"pread("/sys/devices/system/cpu/cpu3//online"): unexpected EOF"#, agent: agent)
        try FileManager.default.removeItem(atPath: tree.root + "/sys/devices/system/cpu/cpu3")
        try tree.file("/sys/devices/system/cpu/cpu3", "not a directory")
        expectError("guest-get-vcpus", #"open("/sys/devices/system/cpu/cpu3/"): Not a directory"#, agent: agent)
    }

    /// This machine's processors: every cpuN directory, one entry each.
    @Test func theRealMachine() throws {
        let agent = GAState()
        let reply = replyLine("guest-get-vcpus", agent: agent)
        let names = (try SystemEnvironment().directoryEntries("/sys/devices/system/cpu")).map(\.name)
            .filter { $0.hasPrefix("cpu") && $0.dropFirst(3).allSatisfy(\.isNumber) && $0.count > 3 }
        #expect(reply.hasPrefix(#"{"return": [{"#))
        #expect(reply.components(separatedBy: "logical-id").count - 1 == names.count)
    }
}

@Suite struct MemoryBlockTests {
    /// Hot-pluggable blocks: online, offline, without `removable`, without
    /// `state` (an old kernel), and entries that are no blocks.
    @Test func hotPluggableBlocks() throws {
        let tree = try FixtureTree()
        let memory = "/sys/devices/system/memory"
        try tree.file(memory + "/block_size_bytes", "8000000\n")
        try tree.file(memory + "/auto_online_blocks", "online\n")
        try tree.file(memory + "/memory0/state", "online\n")
        try tree.file(memory + "/memory0/removable", "0\n")
        try tree.file(memory + "/memory1/state", "offline\n")
        try tree.file(memory + "/memory1/removable", "1\n")
        try tree.file(memory + "/memory32/state", "online_movable\n")
        try tree.directory(memory + "/memory40")
        try tree.file(memory + "/memoryfile", "a file, not a block\n")
        try tree.directory(memory + "/power")
        let blocks = tree.inDirectoryOrder(memory, [
            "memory0": #"{"phys-index": 0, "online": true, "can-offline": false}"#,
            "memory1": #"{"phys-index": 1, "online": false, "can-offline": true}"#,
            "memory32": #"{"phys-index": 32, "online": true, "can-offline": false}"#,
            "memory40": #"{"phys-index": 40, "online": true, "can-offline": false}"#,
        ])
        let agent = tree.agent()
        expectReturn("guest-get-memory-blocks", "[" + blocks.joined(separator: ", ") + "]", agent: agent)
        expectReturn("guest-get-memory-block-info", #"{"size": 134217728}"#, agent: agent)
    }

    @Test func noMemoryDirectoryMeansNoBlocks() throws {
        let tree = try FixtureTree()
        let agent = tree.agent()
        expectReturn("guest-get-memory-blocks", "[]", agent: agent)
        expectError("guest-get-memory-block-info", #"open("/sys/devices/system/memory/"): No such file or directory"#, agent: agent)
        try tree.directory("/sys/devices/system/memory/power")
        expectError("guest-get-memory-blocks", "guest reported zero memory blocks!", agent: agent)
        expectError("guest-get-memory-block-info", #"open sysfs file "block_size_bytes": No such file or directory"#, agent: agent)
        try tree.file("/sys/devices/system/memory/block_size_bytes", "")
        expectError("guest-get-memory-block-info", #"pread sysfs file "block_size_bytes": unexpected EOF"#, agent: agent)
    }

    @Test func unreadableAttributesFailTheCommand() throws {
        let tree = try FixtureTree()
        let block = "/sys/devices/system/memory/memory7"
        try tree.directory(block + "/state")
        let agent = tree.agent()
        expectError("guest-get-memory-blocks", #"pread sysfs file "state": Is a directory"#, agent: agent)
        try FileManager.default.removeItem(atPath: tree.root + block + "/state")
        try tree.file(block + "/state", "online\n")
        try tree.file(block + "/removable", "")
        expectError("guest-get-memory-blocks", #"pread sysfs file "removable": unexpected EOF"#, agent: agent)
        // The index is read as a number, and the directory opened by it.
        try FileManager.default.moveItem(atPath: tree.root + block, toPath: tree.root + block.replacing("memory7", with: "memory007"))
        expectError("guest-get-memory-blocks", "Could not open '/sys/devices/system/memory/memory7/': No such file or directory", agent: agent)
    }

    @Test func blockSizeIsHexadecimal() throws {
        let tree = try FixtureTree()
        try tree.file("/sys/devices/system/memory/block_size_bytes", "80000000\n")
        expectReturn("guest-get-memory-block-info", #"{"size": 2147483648}"#, agent: tree.agent())
    }
}

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
        let reply = replyLine("guest-get-load", agent: GAState())
        let after = averages()
        let candidates = [before, after].map {
            returnLine(#"{"load1m": \#($0[0]), "load5m": \#($0[1]), "load15m": \#($0[2])}"#)
        }
        #expect(candidates.contains(reply), "\(reply) vs /proc/loadavg \(before) / \(after)")
    }
}

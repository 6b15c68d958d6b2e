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
        let agent = GAState(system: .host())
        let reply = replyLine("guest-get-vcpus", agent: agent)
        let names = (try SystemEnvironment.host().directoryEntries("/sys/devices/system/cpu")).map(\.name)
            .filter { $0.hasPrefix("cpu") && $0.dropFirst(3).allSatisfy(\.isNumber) && $0.count > 3 }
        #expect(reply.hasPrefix(#"{"return": [{"#))
        #expect(reply.components(separatedBy: "logical-id").count - 1 == names.count)
    }
}

/// guest-set-vcpus on fixture sysfs trees.
@Suite struct SetVcpusTests {
    static func cpus(_ machine: FixtureTree, _ states: [Int: String?]) throws {
        for (id, state) in states {
            try machine.directory("/sys/devices/system/cpu/cpu\(id)")
            if let state { try machine.file("/sys/devices/system/cpu/cpu\(id)/online", state) }
        }
    }

    static func online(_ machine: FixtureTree, _ id: Int) -> String? {
        readFile(machine.path("/sys/devices/system/cpu/cpu\(id)/online"))
    }

    static func request(_ vcpus: String) -> String { #"{"execute":"guest-set-vcpus","arguments":{"vcpus":[\#(vcpus)]}}"# }

    @Test func onlineAndOffline() throws {
        let machine = try FixtureTree()
        try Self.cpus(machine, [0: nil, 1: "1\n", 2: "0\n", 3: "1\n"])
        let agent = machine.agent()
        #expect(answer(Self.request(#"{"logical-id":1,"online":false},{"logical-id":2,"online":true,"can-offline":false},{"logical-id":3,"online":true},{"logical-id":0,"online":true}"#), agent: agent) == #"{"return": 4}"#)
        #expect(Self.online(machine, 1) == "0\n")
        #expect(Self.online(machine, 2) == "1\n")
        // Already in the state asked: not written.
        #expect(Self.online(machine, 3) == "1\n")
        #expect(answer(Self.request(""), agent: agent) == #"{"return": 0}"#)
    }

    /// An error on the first entry is the command's; later, the count so far.
    @Test func errorsStopTheCount() throws {
        let machine = try FixtureTree()
        try Self.cpus(machine, [0: nil, 1: "1", 2: ""])
        let agent = machine.agent()
        let cases: [(String, String)] = [
            (#"{"logical-id":0,"online":false}"#, errorLine("logical processor #0 can't be offlined")),
            (#"{"logical-id":7,"online":true}"#, errorLine("Could not open '/sys/devices/system/cpu/cpu7/': No such file or directory")),
            (#"{"logical-id":-1,"online":true}"#, errorLine("Could not open '/sys/devices/system/cpu/cpu-1/': No such file or directory")),
            (#"{"logical-id":2,"online":true}"#, errorLine(#"pread("/sys/devices/system/cpu/cpu2//online"): unexpected EOF"#)),
            (#"{"logical-id":1,"online":false},{"logical-id":7,"online":true},{"logical-id":1,"online":true}"#, #"{"return": 1}"#),
            (#"{"logical-id":0,"online":true},{"logical-id":0,"online":false}"#, #"{"return": 1}"#),
        ]
        for (vcpus, reply) in cases {
            #expect(answer(Self.request(vcpus), agent: agent) == reply, "\(vcpus)")
        }
        #expect(Self.online(machine, 1) == "0")
    }

    @Test func anUnreadableOnlineFile() throws {
        let machine = try FixtureTree()
        try machine.directory("/sys/devices/system/cpu/cpu1/online")
        #expect(answer(Self.request(#"{"logical-id":1,"online":true}"#), agent: machine.agent())
                    == errorLine("could not open /sys/devices/system/cpu/cpu1//online: Is a directory"))
    }
}

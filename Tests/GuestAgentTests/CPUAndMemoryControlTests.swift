import Glibc
import Testing
@testable import GuestAgent

/// guest-set-vcpus and guest-set-memory-blocks on fixture sysfs trees.
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

@Suite struct SetMemoryBlocksTests {
    static func request(_ blocks: String) -> String { #"{"execute":"guest-set-memory-blocks","arguments":{"mem-blks":[\#(blocks)]}}"# }

    @Test func perBlockResponses() throws {
        let machine = try FixtureTree()
        let memory = "/sys/devices/system/memory"
        try machine.file(memory + "/memory1/state", "online\n")
        try machine.file(memory + "/memory2/state", "offline\n")
        try machine.file(memory + "/memory3/state", "online\n")
        try machine.directory(memory + "/memory4")
        try machine.file(memory + "/memory5/state", "")
        try machine.directory(memory + "/memory6/state")
        let reply = answer(Self.request("""
            {"phys-index":1,"online":false},{"phys-index":2,"online":true,"can-offline":true},{"phys-index":3,"online":true},\
            {"phys-index":9,"online":true},{"phys-index":4,"online":true},{"phys-index":4,"online":false},\
            {"phys-index":5,"online":true},{"phys-index":6,"online":false}
            """), agent: machine.agent())
        #expect(reply == #"{"return": [{"response": "success", "phys-index": 1}, {"response": "success", "phys-index": 2}, {"response": "success", "phys-index": 3}, {"response": "not-found", "error-code": 2, "phys-index": 9}, {"response": "success", "error-code": 2, "phys-index": 4}, {"response": "operation-not-supported", "error-code": 2, "phys-index": 4}, {"response": "operation-failed", "error-code": 0, "phys-index": 5}, {"response": "operation-failed", "error-code": 21, "phys-index": 6}]}"#)
        // Written at the start of the file, as to sysfs.
        #expect(readFile(machine.path(memory + "/memory1/state")) == "offline")
        #expect(readFile(machine.path(memory + "/memory2/state")) == "onlinee\n")
        #expect(readFile(machine.path(memory + "/memory3/state")) == "online\n")
    }

    @Test func withoutMemoryDirectoryNothingIsSupported() throws {
        let machine = try FixtureTree()
        #expect(answer(Self.request(#"{"phys-index":1,"online":true},{"phys-index":2,"online":false}"#), agent: machine.agent())
                    == #"{"return": [{"response": "operation-not-supported", "error-code": 2, "phys-index": 1}, {"response": "operation-not-supported", "error-code": 2, "phys-index": 2}]}"#)
        #expect(answer(Self.request(""), agent: machine.agent()) == #"{"return": []}"#)
    }

    /// A memory "directory" that is a file: qemu-ga leaves `success` with the errno.
    @Test func anUnlistableMemoryDirectory() throws {
        let machine = try FixtureTree()
        try machine.file("/sys/devices/system/memory", "")
        #expect(answer(Self.request(#"{"phys-index":1,"online":true}"#), agent: machine.agent())
                    == #"{"return": [{"response": "success", "error-code": 20, "phys-index": 1}]}"#)
    }

    @Test func aStateThatCannotBeWritten() throws {
        let machine = try FixtureTree()
        try machine.file("/sys/devices/system/memory/memory8/state", "online\n")
        let state = machine.path("/sys/devices/system/memory/memory8/state")
        #expect(system("chattr +i '\(state)'") == 0)
        defer { withExtendedLifetime(machine) { _ = system("chattr -i '\(state)'") } }
        #expect(answer(Self.request(#"{"phys-index":8,"online":false}"#), agent: machine.agent())
                    == #"{"return": [{"response": "operation-failed", "error-code": 1, "phys-index": 8}]}"#)
    }
}

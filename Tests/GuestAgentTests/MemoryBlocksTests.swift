import Foundation
import Glibc
import Testing
@testable import GuestAgent

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

/// guest-set-memory-blocks on fixture sysfs trees.
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
}

import Glibc
import Testing
@testable import GuestAgent

/// A fresh directory under /tmp, removed with its files afterwards.
func withTemporaryDirectory<R>(_ body: (String) throws -> R) rethrows -> R {
    var template = Array("/tmp/qga-state-XXXXXX".utf8CString)
    let directory = String(cString: mkdtemp(&template)!)
    defer {
        if let entries = opendir(directory) {
            while let entry = readdir(entries) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { unlink(directory + "/" + name) }
            }
            closedir(entries)
        }
        rmdir(directory)
    }
    return try body(directory)
}

func readFile(_ path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    while case let byte = fgetc(file), byte != EOF { bytes.append(UInt8(byte)) }
    return String(decoding: bytes, as: UTF8.self)
}

func writeFile(_ path: String, _ text: String) {
    let file = fopen(path, "w")!
    fputs(text, file)
    fclose(file)
}

@Suite struct PersistentStateTests {
    @Test func aMissingFileIsCreatedWithTheFirstHandle() throws {
        try withTemporaryDirectory { directory in
            let state = try PersistentState.load(directory: directory, create: true)
            #expect(state.fdCounter == 1000)
            #expect(readFile(directory + "/qga.state") == "[global]\nfd_counter=1000\n")
        }
    }

    @Test func nothingIsCreatedWhileFrozen() throws {
        try withTemporaryDirectory { directory in
            let state = try PersistentState.load(directory: directory, create: false)
            #expect(state.fdCounter == 1000)
            #expect(readFile(directory + "/qga.state") == nil)
        }
    }

    @Test func handlesAreCommittedBeforeTheyAreHandedOut() throws {
        try withTemporaryDirectory { directory in
            writeFile(directory + "/qga.state", "[global]\nfd_counter=4242\n")
            let state = try PersistentState.load(directory: directory, create: true)
            let handle = try state.takeFileHandle()
            #expect(handle == 4242)
            #expect(readFile(directory + "/qga.state") == "[global]\nfd_counter=4243\n")
            let reloaded = try PersistentState.load(directory: directory, create: true)
            #expect(reloaded.fdCounter == 4243)
        }
    }

    @Test(arguments: [("[global]\n", 1000), ("[global]\nfd_counter=abc\n", 0), ("[global]\nfd_counter=99999999999\n", 0), ("[other]\nx=1\n", 1000)])
    func oddValuesReadAsQemuGaReadsThem(text: String, counter: Int64) throws {
        try withTemporaryDirectory { directory in
            writeFile(directory + "/qga.state", text)
            let state = try PersistentState.load(directory: directory, create: true)
            #expect(state.fdCounter == counter)
        }
    }

    @Test func anUnparsableFileIsAnError() throws {
        try withTemporaryDirectory { directory in
            writeFile(directory + "/qga.state", "garbage\n")
            #expect {
                try PersistentState.load(directory: directory, create: true)
            } throws: { error in
                (error as? PersistentStateError)?.messages.first?.hasPrefix("error loading persistent state from path: \(directory)/qga.state, ") == true
            }
        }
    }

    @Test func anUnwritableDirectoryGivesQemuGasChainOfMessages() {
        #expect {
            try PersistentState.load(directory: "/nonexistent/dir", create: true)
        } throws: { error in
            let messages = (error as? PersistentStateError)?.messages ?? []
            return messages.count == 2
                && messages[0].hasPrefix("failed to write persistent state to /nonexistent/dir/qga.state: ")
                && messages[1] == "unable to create state file at path /nonexistent/dir/qga.state"
        }
    }
}

@Suite struct PidFileTests {
    @Test func thePidFileHoldsOurPidAndIsRemovedByItsCreator() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/qemu-ga.pid"
            let pidFile = try PidFile.create(path: path)
            #expect(readFile(path) == "\(getpid())\n")
            pidFile.remove()
            #expect(readFile(path) == nil)
        }
    }

    @Test func anUncreatablePidFileSaysWhy() {
        #expect {
            try PidFile.create(path: "/nonexistent/dir/pid")
        } throws: { error in
            "\(error)" == "Cannot open pid file: No such file or directory"
        }
    }
}

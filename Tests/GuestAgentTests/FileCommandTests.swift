import Glibc
import QMPJSON
import Testing
@testable import GuestAgent

// guest-file-* through the dispatcher, on files in scratch directories.

private func open(_ path: String, _ mode: String? = nil) -> String {
    let mode = mode.map { #","mode":"\#($0)""# } ?? ""
    return #"{"execute":"guest-file-open","arguments":{"path":"\#(path)"\#(mode)}}"#
}

private func read(_ handle: Int64, _ count: Int64? = nil) -> String {
    let count = count.map { #","count":\#($0)"# } ?? ""
    return #"{"execute":"guest-file-read","arguments":{"handle":\#(handle)\#(count)}}"#
}

private func write(_ handle: Int64, _ base64: String, count: Int64? = nil) -> String {
    let count = count.map { #","count":\#($0)"# } ?? ""
    return #"{"execute":"guest-file-write","arguments":{"handle":\#(handle),"buf-b64":"\#(base64)"\#(count)}}"#
}

private func write(_ handle: Int64, bytes: [UInt8]) -> String { write(handle, Base64.encode(bytes)) }

private func seek(_ handle: Int64, _ offset: Int64, _ whence: String) -> String {
    #"{"execute":"guest-file-seek","arguments":{"handle":\#(handle),"offset":\#(offset),"whence":\#(whence)}}"#
}

private func close(_ handle: Int64) -> String { #"{"execute":"guest-file-close","arguments":{"handle":\#(handle)}}"# }
private func flush(_ handle: Int64) -> String { #"{"execute":"guest-file-flush","arguments":{"handle":\#(handle)}}"# }

/// A client on a fresh state directory, and that directory.
@MainActor
private func withClient(_ body: (CommandClient, String) throws -> Void) throws {
    let scratch = ScratchDirectory()
    defer { scratch.remove() }
    try body(try CommandClient(stateDirectory: scratch.path), scratch.path)
}

@MainActor
private func openHandle(_ client: CommandClient, _ path: String, _ mode: String) -> Int64 {
    client.value(open(path, mode)).int ?? -1
}

@Suite("guest-file-*") @MainActor
struct FileCommandTests {
    @Test("Every error text")
    func errorTexts() throws {
        try withClient { client, directory in
            let path = directory + "/f"
            writeBytes(path, Array("0123456789".utf8))
            #expect(client.ask(open(directory + "/missing/x")) == errorReply(
                "failed to open file '\(directory)/missing/x' (mode: 'r'): No such file or directory"))
            #expect(client.ask(open(directory + "/missing/x", "w")) == errorReply(
                "failed to open file '\(directory)/missing/x' (mode: 'w'): No such file or directory"))
            for mode in ["", "rw", "re", "wx", "x", "R", "r+b+", "rb ", "ba"] {
                #expect(client.ask(open(path, mode)) == errorReply("invalid file open mode '\(mode)'"))
            }
            #expect(client.ask(#"{"execute":"guest-file-open","arguments":{"path":"x","mode":null}}"#)
                == errorReply("Invalid parameter type for 'mode', expected: string"))
            for request in [read(999), write(999, "QQ=="), seek(999, 0, "0"), flush(999), close(999)] {
                #expect(client.ask(request) == errorReply("handle '999' has not been found"))
            }

            let handle = openHandle(client, path, "r")
            #expect(handle == 1000)
            #expect(client.ask(read(handle, -1)) == errorReply("value '-1' is invalid for argument count"))
            #expect(client.ask(read(handle, 50_331_649)) == errorReply("value '50331649' is invalid for argument count"))
            #expect(client.ask(write(handle, "QQ ==")) == errorReply("Base64 data contains invalid characters"))
            #expect(client.ask(write(handle, "QQ==", count: 2)) == errorReply("value '2' is invalid for argument count"))
            #expect(client.ask(write(handle, "QQ==", count: -1)) == errorReply("value '-1' is invalid for argument count"))
            #expect(client.ask(write(handle, "QUJD")) == errorReply("failed to write to file: Bad file descriptor"))
            #expect(client.ask(seek(handle, 0, "3")) == errorReply("invalid whence code 3"))
            #expect(client.ask(seek(handle, 0, "-1")) == errorReply("invalid whence code -1"))
            #expect(client.ask(seek(handle, 0, "\"middle\"")) == errorReply("Parameter 'whence' does not accept value 'middle'"))
            #expect(client.ask(seek(handle, 0, "true")) == errorReply("Invalid parameter type for 'whence', expected: GuestFileWhence"))
            #expect(client.ask(seek(handle, 0, "null")) == errorReply("Invalid parameter type for 'whence', expected: GuestFileWhence"))
            #expect(client.ask(seek(handle, 0, "1.5")) == errorReply("Invalid parameter type for 'whence', expected: integer"))
            #expect(client.ask(seek(handle, 0, "18446744073709551615")) == errorReply("Invalid parameter type for 'whence', expected: integer"))
            #expect(client.ask(seek(handle, -1, "\"set\"")) == errorReply("failed to seek file: Invalid argument"))
            #expect(client.ask(#"{"execute":"guest-file-seek","arguments":{"handle":1000,"offset":0}}"#)
                == errorReply("Parameter 'whence' is missing"))
            #expect(client.ask(close(handle)) == #"{"return": {}}"#)
            #expect(client.ask(close(handle)) == errorReply("handle '1000' has not been found"))

            let writeOnly = openHandle(client, path, "a")
            #expect(client.ask(read(writeOnly)) == errorReply("failed to read file: Bad file descriptor"))
            let directoryHandle = openHandle(client, directory, "r")
            #expect(client.ask(read(directoryHandle)) == errorReply("failed to read file: Is a directory"))
        }
    }

    @Test("The fifteen modes and what they do")
    func modes() throws {
        try withClient { client, directory in
            let path = directory + "/f"
            for mode in ["r", "rb", "w", "wb", "a", "ab", "r+", "rb+", "r+b", "w+", "wb+", "w+b", "a+", "ab+", "a+b"] {
                writeBytes(path, Array("old".utf8))
                let handle = openHandle(client, path, mode)
                let readable = mode.hasPrefix("r") || mode.contains("+")
                let writable = !mode.hasPrefix("r") || mode.contains("+")
                let written = client.ask(write(handle, "TkVX"))  // "NEW"
                #expect(written.hasPrefix(writable ? #"{"return""# : #"{"error""#), "\(mode): \(written)")
                _ = client.ask(seek(handle, 0, "0"))
                let reread = client.ask(read(handle))
                #expect(reread.hasPrefix(readable ? #"{"return""# : #"{"error""#), "\(mode): \(reread)")
                _ = client.ask(close(handle))
                let expected = switch mode.first {
                case "r": mode.contains("+") ? "NEW" : "old"
                case "w": "NEW"
                default: "oldNEW"
                }
                #expect(fileBytes(path) == Array(expected.utf8), "mode \(mode)")
            }
            // Only w and a create, with mode 0666 whatever the umask; an existing file keeps its mode.
            for mode in ["r", "r+"] {
                #expect(client.ask(open(directory + "/new-" + mode, mode)).hasPrefix(#"{"error""#))
            }
            for mode in ["w", "a+"] {
                _ = openHandle(client, directory + "/new-" + mode, mode)
                var info = stat()
                #expect(stat(directory + "/new-" + mode, &info) == 0 && info.st_mode & 0o777 == 0o666)
            }
            chmod(path, 0o600)
            _ = openHandle(client, path, "w")
            var info = stat()
            #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        }
    }

    @Test("Append handles write at the end whatever the position")
    func appendIgnoresSeeks() throws {
        try withClient { client, directory in
            let path = directory + "/f"
            writeBytes(path, Array("abc".utf8))
            let handle = openHandle(client, path, "a+")
            #expect(client.ask(seek(handle, 0, "\"set\"")) == #"{"return": {"eof": false, "position": 0}}"#)
            #expect(client.ask(write(handle, "eHl6")) == #"{"return": {"count": 3, "eof": false}}"#)
            _ = client.ask(flush(handle))
            #expect(fileBytes(path) == Array("abcxyz".utf8))
        }
    }

    @Test("A write after a read lands at the read position; a read after a write sees it")
    func directionChanges() throws {
        try withClient { client, directory in
            let path = directory + "/f"
            writeBytes(path, Array("hello world".utf8))
            let handle = openHandle(client, path, "r+")
            #expect(client.ask(read(handle, 5)) == #"{"return": {"count": 5, "buf-b64": "aGVsbG8=", "eof": false}}"#)
            #expect(client.ask(write(handle, "WFg=")) == #"{"return": {"count": 2, "eof": false}}"#)  // "XX"
            // Not flushed yet: stdio holds it.
            #expect(fileBytes(path) == Array("hello world".utf8))
            // The read flushes first, and continues after what was written.
            #expect(client.ask(read(handle)) == #"{"return": {"count": 4, "buf-b64": "b3JsZA==", "eof": true}}"#)
            #expect(fileBytes(path) == Array("helloXXorld".utf8))
            // Past the end a write fills the gap with zeros.
            #expect(client.ask(seek(handle, 13, "0")) == #"{"return": {"eof": false, "position": 13}}"#)
            #expect(client.ask(write(handle, "IQ==")) == #"{"return": {"count": 1, "eof": false}}"#)
            _ = client.ask(close(handle))
            #expect(fileBytes(path) == Array("helloXXorld".utf8) + [0, 0, 0x21])
        }
    }

    @Test("eof: set by a short read, cleared for the next request")
    func endOfFile() throws {
        try withClient { client, directory in
            let path = directory + "/f"
            writeBytes(path, Array("12345678".utf8))
            let handle = openHandle(client, path, "r")
            #expect(client.ask(read(handle, 8)) == #"{"return": {"count": 8, "buf-b64": "MTIzNDU2Nzg=", "eof": false}}"#)
            #expect(client.ask(read(handle, 0)) == #"{"return": {"count": 0, "buf-b64": "", "eof": false}}"#)
            #expect(client.ask(read(handle, 8)) == #"{"return": {"count": 0, "buf-b64": "", "eof": true}}"#)
            // Data that appears later is read: the indicator does not stick.
            let file = fopen(path, "a")!
            fputs("9", file)
            fclose(file)
            #expect(client.ask(read(handle, 8)) == #"{"return": {"count": 1, "buf-b64": "OQ==", "eof": true}}"#)
            #expect(client.ask(seek(handle, 0, "2")) == #"{"return": {"eof": false, "position": 9}}"#)
        }
    }

    @Test("FIFOs: no hang, EAGAIN as an error, no seeking")
    func fifo() throws {
        try withClient { client, directory in
            let path = directory + "/fifo"
            #expect(mkfifo(path, 0o600) == 0)
            let reader = openHandle(client, path, "r")
            // No writer: end of file at once.
            #expect(client.ask(read(reader)) == #"{"return": {"count": 0, "buf-b64": "", "eof": true}}"#)
            let writer = Glibc.open(path, O_WRONLY | O_NONBLOCK)
            #expect(writer >= 0)
            defer { _ = Glibc.close(writer) }
            // A writer but no data: the non-blocking read fails instead of waiting.
            #expect(client.ask(read(reader)) == errorReply("failed to read file: Resource temporarily unavailable"))
            #expect(Glibc.write(writer, "abcdef", 6) == 6)
            #expect(client.ask(read(reader, 6)) == #"{"return": {"count": 6, "buf-b64": "YWJjZGVm", "eof": false}}"#)
            #expect(client.ask(seek(reader, 0, "1")) == errorReply("failed to seek file: Illegal seek"))
        }
    }

    @Test("A write the pipe cannot take, and a close whose flush fails")
    func fullPipe() throws {
        try withClient { client, directory in
            let path = directory + "/fifo"
            #expect(mkfifo(path, 0o600) == 0)
            let reader = Glibc.open(path, O_RDONLY | O_NONBLOCK)
            defer { _ = Glibc.close(reader) }
            let handle = openHandle(client, path, "w")
            let filler = Glibc.open(path, O_WRONLY | O_NONBLOCK)
            defer { _ = Glibc.close(filler) }
            let block = [UInt8](repeating: 1, count: 4096)
            while Glibc.write(filler, block, block.count) > 0 {}
            // The pipe is full: a small write stays in stdio's buffer...
            #expect(client.ask(write(handle, "QUJD")) == #"{"return": {"count": 3, "eof": false}}"#)
            // ...and the close cannot flush it. The handle is gone all the same.
            #expect(client.ask(close(handle)) == errorReply("failed to close handle: Resource temporarily unavailable"))
            #expect(client.ask(close(handle)) == errorReply("handle '\(handle)' has not been found"))
            // A write bigger than stdio's buffer meets the full pipe at once.
            let second = openHandle(client, path, "w")
            #expect(client.ask(write(second, bytes: [UInt8](repeating: 7, count: 1 << 20)))
                == errorReply("failed to write to file: Resource temporarily unavailable"))
        }
    }

    @Test("Binary data of many sizes, written and read back byte for byte")
    func binaryData() throws {
        try withClient { client, directory in
            let sizes = [0, 1, 2, 3, 4, 5, 6, 7, 8, 255, 4095, 4096, 4097, 49_151, 49_152, 49_153, 65_536,
                         (1 << 20) + 1, 16 << 20]
            for size in sizes {
                let data = testBytes(count: size, seed: UInt64(size))
                let path = directory + "/data-\(size)"
                let handle = openHandle(client, path, "w+")
                #expect(client.ask(write(handle, bytes: data)) == #"{"return": {"count": \#(size), "eof": false}}"#)
                _ = client.ask(seek(handle, 0, "0"))
                let result = client.value(read(handle, Int64(size)))
                #expect(result["count"]?.int == Int64(size))
                let readBack = result["buf-b64"]?.string.flatMap { try? Base64.decode($0) } == data
                #expect(readBack, "size \(size): guest-file-read returned other bytes")
                _ = client.ask(close(handle))
                let written = fileBytes(path) == data
                #expect(written, "size \(size): the file holds other bytes")
            }
        }
    }

    @Test("48 MiB, the most one read returns")
    func largestRead() throws {
        try withClient { client, directory in
            let data = testBytes(count: 48 << 20, seed: 48)
            let path = directory + "/big"
            writeBytes(path, data)
            let handle = openHandle(client, path, "r")
            let result = client.value(read(handle, 48 << 20))
            #expect(result["count"]?.int == 48 << 20)
            #expect(result["eof"]?.bool == false)
            let same = result["buf-b64"]?.string.flatMap { try? Base64.decode($0) } == data
            #expect(same, "guest-file-read returned other bytes")
        }
    }

    @Test("Handles: from the counter in qga.state, unique across a restart; open handles are not")
    func handlesSurviveRestarts() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.file("f")
        writeBytes(path, [])
        let first = try CommandClient(stateDirectory: scratch.path)
        #expect(first.ask(open(path)) == #"{"return": 1000}"#)
        #expect(first.ask(open(path)) == #"{"return": 1001}"#)
        #expect(readFile(scratch.file("qga.state")) == "[global]\nfd_counter=1002\n")
        let restarted = try CommandClient(stateDirectory: scratch.path)
        #expect(restarted.ask(read(1000)) == errorReply("handle '1000' has not been found"))
        #expect(restarted.ask(open(path)) == #"{"return": 1002}"#)
    }

    @Test("A counter that cannot be committed: error, file closed, number used up")
    func commitFailure() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let client = try CommandClient(stateDirectory: scratch.path)
        let statePath = scratch.file("qga.state")
        unlink(statePath)
        mkdir(statePath, 0o755)
        #expect(client.ask(open(scratch.path)) == errorReply("failed to commit persistent state to disk"))
        #expect(client.ask(read(1000)) == errorReply("handle '1000' has not been found"))
        rmdir(statePath)
        #expect(client.ask(open(scratch.path)) == #"{"return": 1001}"#)
        #expect(readFile(statePath) == "[global]\nfd_counter=1002\n")
    }
}

/// `open-allow`: a scratch directory with `allowed/` (the pattern is
/// `<scratch>/allowed/*`) and `outside/`, which holds `secret`.
@Suite("guest-file-open with open-allow") @MainActor
struct OpenAllowTests {
    private final class Machine {
        let scratch = ScratchDirectory()
        let client: CommandClient
        var allowed: String { scratch.path + "/allowed" }
        var outside: String { scratch.path + "/outside" }

        init(patterns: [String]? = nil) throws {
            let state = scratch.file("state")
            for directory in [state, scratch.file("allowed"), scratch.file("allowed/sub"), scratch.file("outside")] {
                mkdir(directory, 0o700)
            }
            writeBytes(scratch.file("allowed/file"), Array("inside".utf8))
            writeBytes(scratch.file("outside/secret"), Array("secret".utf8))
            var config = GAConfig()
            config.openAllow = patterns ?? [scratch.path + "/allowed/*"]
            client = CommandClient(GAState(config: config, system: .host(), persistentState: try PersistentState.load(directory: state, create: true)))
        }

        isolated deinit { scratch.remove() }

        func refused(_ path: String, _ mode: String = "r", sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(client.ask(open(path, mode), sourceLocation: sourceLocation)
                == errorReply("Path '\(path)' is not allowed by open-allow"), sourceLocation: sourceLocation)
        }

        /// Opens `path` and reads what it holds.
        func contents(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
            let handle = client.value(open(path, "r"), sourceLocation: sourceLocation).int ?? -1
            defer { _ = client.ask(close(handle)) }
            return client.value(read(handle), sourceLocation: sourceLocation)["buf-b64"]?.base64Text
        }
    }

    @Test("Files whose canonical path matches are opened and created; `*` also matches `/`")
    func allowed() throws {
        let machine = try Machine()
        #expect(machine.contents(machine.allowed + "/file") == "inside")
        #expect(machine.contents(machine.outside + "/../allowed/./file") == "inside")
        for path in [machine.allowed + "/new", machine.allowed + "/sub/deeper"] {
            let handle = machine.client.value(open(path, "w")).int ?? -1
            #expect(machine.client.ask(close(handle)) == #"{"return": {}}"#)
            #expect(fileMode(path)?.mode == 0o666)
        }
        // An allowed path keeps qemu-ga's error texts.
        let missing = machine.allowed + "/missing"
        #expect(machine.client.ask(open(missing)) == errorReply(
            "failed to open file '\(missing)' (mode: 'r'): No such file or directory"))
        #expect(machine.client.ask(open(machine.allowed + "/file", "rw")) == errorReply("invalid file open mode 'rw'"))
    }

    @Test("Anything else is refused and nothing is created")
    func refused() throws {
        let machine = try Machine()
        machine.refused(machine.outside + "/secret")
        machine.refused(machine.outside + "/new", "w")
        machine.refused(machine.allowed, "r")
        machine.refused(machine.allowed + "/missing-directory/x", "w")
        machine.refused(machine.allowed + "/", "w")
        #expect(fileBytes(machine.outside + "/new") == nil)
        #expect(fileBytes(machine.allowed + "/missing-directory/x") == nil)
        // An empty list allows nothing.
        let none = try Machine(patterns: [])
        none.refused(none.allowed + "/file")
    }

    @Test("A symlink in the last component is judged by its target")
    func symlinkLastComponent() throws {
        let machine = try Machine()
        symlink(machine.outside + "/secret", machine.allowed + "/link")
        machine.refused(machine.allowed + "/link", "w")
        #expect(fileBytes(machine.outside + "/secret") == Array("secret".utf8), "truncated through the link")
        symlink("file", machine.allowed + "/inner")
        #expect(machine.contents(machine.allowed + "/inner") == "inside")
        // A dangling link is not followed to create its target.
        symlink(machine.outside + "/created", machine.allowed + "/dangling")
        #expect(machine.client.ask(open(machine.allowed + "/dangling", "w")) == errorReply(
            "failed to open file '\(machine.allowed)/dangling' (mode: 'w'): Too many levels of symbolic links"))
        #expect(fileBytes(machine.outside + "/created") == nil)
    }

    @Test("A symlinked directory on the way, and `..`, are judged by where they lead")
    func symlinkedDirectoryAndDotDot() throws {
        let machine = try Machine()
        symlink(machine.outside, machine.allowed + "/out")
        machine.refused(machine.allowed + "/out/secret", "a")
        machine.refused(machine.allowed + "/out/new", "w")
        machine.refused(machine.allowed + "/../outside/secret")
        machine.refused(machine.allowed + "/sub/../../outside/new", "w+")
        #expect(fileBytes(machine.outside + "/new") == nil)
        #expect(fileBytes(machine.outside + "/secret") == Array("secret".utf8))
    }

    @Test("A directory swapped for a symlink after the check: refused, nothing created")
    func directorySwappedAfterTheCheck() throws {
        let machine = try Machine()
        let file = try OpenAllow.canonicalFile(machine.allowed + "/sub/new")
        #expect(file == OpenAllow.CanonicalFile(path: machine.allowed + "/sub/new", directory: machine.allowed + "/sub", name: "new"))
        #expect(rename(machine.allowed + "/sub", machine.scratch.file("moved")) == 0)
        #expect(symlink(machine.outside, machine.allowed + "/sub") == 0)
        #expect(OpenAllow.location(of: file) == nil)
        #expect(fileBytes(machine.outside + "/new") == nil)
    }

    @Test("A file swapped for a symlink after the check: not followed")
    func fileSwappedAfterTheCheck() throws {
        let machine = try Machine()
        let file = try OpenAllow.canonicalFile(machine.allowed + "/file")
        let location = try #require(OpenAllow.location(of: file))
        #expect(unlink(machine.allowed + "/file") == 0)
        #expect(symlink(machine.outside + "/secret", machine.allowed + "/file") == 0)
        #expect(throws: QMPError.self) { try GuestFileOpen.open(location, path: file.path, mode: "w") }
        #expect(fileBytes(machine.outside + "/secret") == Array("secret".utf8))
        // The directory stays the one checked even if it moves after the check.
        let kept = try #require(OpenAllow.location(of: try OpenAllow.canonicalFile(machine.allowed + "/sub/x")))
        #expect(rename(machine.allowed + "/sub", machine.scratch.file("moved")) == 0)
        #expect(symlink(machine.outside, machine.allowed + "/sub") == 0)
        try GuestFileOpen.open(kept, path: "x", mode: "w").close()
        #expect(fileBytes(machine.scratch.file("moved/x")) == [])
        #expect(fileBytes(machine.outside + "/x") == nil)
    }
}

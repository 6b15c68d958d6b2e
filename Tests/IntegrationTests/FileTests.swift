#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Testing
import TestRequirements

private typealias F = FileRequest

/// guest-file-* on the built agent, against the observed texts and
/// against the reference qemu-ga 7.2 (the same requests, the same replies).
@Suite("Files: guest-file-*")
struct FileTests {
    @Test("The round trip observed on 7.2 (open, write, seek, read, flush, close), byte for byte")
    func observedRoundTrip() throws {
        try withAgent { agent in
            let session = try Session(agent)
            let exchange = [
                (#"{"execute":"guest-file-open","arguments":{"path":"$DIR/rt.txt","mode":"w+"}}"#, #"{"return": 1000}"#),
                (#"{"execute":"guest-file-write","arguments":{"handle":1000,"buf-b64":"aGVsbG8gd29ybGQK"}}"#,
                 #"{"return": {"count": 12, "eof": false}}"#),
                (#"{"execute":"guest-file-seek","arguments":{"handle":1000,"offset":0,"whence":"set"}}"#,
                 #"{"return": {"eof": false, "position": 0}}"#),
                (#"{"execute":"guest-file-read","arguments":{"handle":1000,"count":5}}"#,
                 #"{"return": {"count": 5, "buf-b64": "aGVsbG8=", "eof": false}}"#),
                (#"{"execute":"guest-file-read","arguments":{"handle":1000}}"#,
                 #"{"return": {"count": 7, "buf-b64": "IHdvcmxkCg==", "eof": true}}"#),
                (#"{"execute":"guest-file-read","arguments":{"handle":1000}}"#,
                 #"{"return": {"count": 0, "buf-b64": "", "eof": true}}"#),
                (#"{"execute":"guest-file-seek","arguments":{"handle":1000,"offset":0,"whence":1}}"#,
                 #"{"return": {"eof": false, "position": 12}}"#),
                (#"{"execute":"guest-file-seek","arguments":{"handle":1000,"offset":-6,"whence":"end"}}"#,
                 #"{"return": {"eof": false, "position": 6}}"#),
                (#"{"execute":"guest-file-flush","arguments":{"handle":1000}}"#, #"{"return": {}}"#),
                (#"{"execute":"guest-file-close","arguments":{"handle":1000}}"#, #"{"return": {}}"#),
            ]
            for (request, expected) in exchange {
                #expect(try session.ask(request) == expected)
            }
            #expect(readFile(agent.directory + "/qga.state") == Bytes("[global]\nfd_counter=1001\n".utf8))
            var info = stat()
            #expect(stat(agent.directory + "/rt.txt", &info) == 0 && info.st_mode & 0o777 == 0o666)
        }
    }

    @Test("Binary data from 0 bytes to 48 MiB, byte for byte, through our agent")
    func binaryDataUpTo48MiB() throws {
        try withAgent { agent in
            let session = try Session(agent)
            let sizes = [0, 1, 2, 3, 5, 255, 4095, 4096, 4097, 49_151, 49_152, 49_153, (1 << 20) - 1, 1 << 20, 3 << 20,
                         (16 << 20) + 7, 47 << 20]
            for size in sizes {
                let data = garbage(seed: UInt64(size) &* 31, count: size)
                let handle = try session.handle("$DIR/data", mode: "w+")
                #expect(try session.ask(F.write(handle, bytes: data)) == #"{"return": {"count": \#(size), "eof": false}}"#)
                _ = try session.ask(F.flush(handle))
                let written = readFile(agent.directory + "/data") == data
                #expect(written, "\(size) bytes written")
                _ = try session.ask(F.seek(handle, 0, "0"))
                let read = readData(try session.ask(F.read(handle, size))) == data
                #expect(read, "\(size) bytes read")
                _ = try session.ask(F.close(handle))
            }
            // The most one read returns, from a file written in two requests.
            let data = garbage(seed: 48, count: 48 << 20)
            let handle = try session.handle("$DIR/data48", mode: "w+")
            _ = try session.ask(F.write(handle, bytes: Bytes(data[..<(24 << 20)])))
            _ = try session.ask(F.write(handle, bytes: Bytes(data[(24 << 20)...])))
            _ = try session.ask(F.seek(handle, 0, #""set""#))
            let reply = try session.ask(F.read(handle, 48 << 20))
            #expect(reply.hasPrefix(#"{"return": {"count": 50331648, "buf-b64": ""#) && reply.hasSuffix(#"", "eof": false}}"#))
            let same = readData(reply) == data
            #expect(same, "48 MiB read back")
        }
    }

    // MARK: Beyond qemu-ga

    @Test("--open-allow: only canonical paths that match; no link, `..` or new file leads outside")
    func openAllow() throws {
        let prepare = { (directory: String) throws in
            for name in ["allowed", "allowed/sub", "outside"] { try makeDirectory(directory + "/" + name) }
            try writeFile(directory + "/allowed/file", Bytes("inside".utf8))
            try writeFile(directory + "/outside/secret", Bytes("secret".utf8))
            symlink(directory + "/outside/secret", directory + "/allowed/link")
            symlink(directory + "/outside", directory + "/allowed/out")
            symlink("file", directory + "/allowed/inner")
            symlink(directory + "/outside/created", directory + "/allowed/dangling")
        }
        try withAgent(extraArguments: ["--open-allow=$DIR/allowed/*"], prepare: prepare) { agent in
            let session = try Session(agent)
            for path in ["$DIR/allowed/file", "$DIR/allowed/inner", "$DIR/outside/../allowed/sub/../file"] {
                let handle = try session.handle(path, mode: "r")
                #expect(try session.ask(F.read(handle)) == #"{"return": {"count": 6, "buf-b64": "aW5zaWRl", "eof": true}}"#, "\(path)")
                #expect(try session.ask(F.close(handle)) == #"{"return": {}}"#)
            }
            for path in ["$DIR/allowed/new", "$DIR/allowed/sub/new"] {
                #expect(try session.ask(F.close(try session.handle(path, mode: "w"))) == #"{"return": {}}"#)
                #expect(fileExists(path.replacing("$DIR", with: agent.directory)))
            }
            #expect(try session.ask(F.open("$DIR/allowed/dangling", "w")) == #"{"error": {"class": "GenericError", "desc": "failed to open file '$DIR/allowed/dangling' (mode: 'w'): Too many levels of symbolic links"}}"#)
            for (path, mode) in [("$DIR/outside/secret", "r"), ("$DIR/outside/new", "w"), ("$DIR/allowed/link", "w"),
                                 ("$DIR/allowed/out/secret", "a"), ("$DIR/allowed/out/new", "w"), ("$DIR/allowed/../outside/new", "w+"),
                                 ("$DIR/allowed/missing/new", "w"), ("/etc/passwd", "r")] {
                #expect(try session.ask(F.open(path, mode))
                    == #"{"error": {"class": "GenericError", "desc": "Path '\#(path)' is not allowed by open-allow"}}"#)
            }
            #expect(readFile(agent.directory + "/outside/secret") == Bytes("secret".utf8))
            #expect(try directoryEntries(agent.directory + "/outside") == ["secret"])
        }
    }
}

extension NeedsSystem {
    /// The syslog records of the file and exec commands.
    @Suite("Files and exec: syslog")
    struct FileAndExecSyslogTests {
        @Test("The same records as 7.2, failures included")
        func sameRecordsAsReference() throws {
            var results: [[String]] = []
            for kind in [AgentBinary.reference, .ours] {
                let (agent, listener) = try DaemonSyslogTests.start(kind)
                defer { agent.finish() }
                let session = try Session(agent)
                // The listener is drained after each request: a datagram socket
                // queues only a few records, and syslog(3) waits when it is full.
                var records: [Bytes] = []
                for request in [
                    F.open("$DIR/f", "w"), F.open("$DIR/f"), F.open("$DIR/f", "bad"), F.open("$DIR/missing/f", "r"),
                    F.write(1000, "QUJD"), F.write(1001, "QUJD"), F.write(1000, "Q Q"), F.read(1000), F.read(1001),
                    F.seek(1000, 0, "0"), F.flush(1000), F.close(1000), F.close(1000), F.close(4242),
                    ExecRequest.exec("/nonexistent", ["a", "b c"]), ExecRequest.exec("/bin/true", input: "Q Q"),
                ] {
                    _ = try session.ask(request)
                    records += listener.drain()
                }
                let pid = try session.start(ExecRequest.exec("/bin/echo", ["x", "y"], capture: "true"))
                records += listener.drain()
                while try session.ask(ExecRequest.status(pid)) == #"{"return": {"exited": false}}"# {
                    records += listener.drain()
                    usleep(10_000)
                }
                records += listener.drain()
                _ = try session.ask(ExecRequest.status(pid))
                records += listener.drain()
                results.append(records.map { bytes in
                    guard let record = SyslogRecord(bytes) else { return "malformed: " + render(bytes) }
                    let message = record.message.replacing(agent.directory, with: "$DIR").replacing("\(pid)", with: "PID")
                    return "<\(record.priority)>\(record.ident): \(message)"
                }.reduce(into: [String]()) { lines, line in
                    // Polling adds one status record per poll; keep one.
                    if line != lines.last || !line.contains("guest-exec-status") { lines.append(line) }
                })
            }
            #expect(results[1] == results[0], "ours: \(results[1])\n7.2: \(results[0])")
            #expect(results[0].contains("<14>qemu-ga: info: guest-file-open, handle: 1000"))
        }

        /// Beyond qemu-ga: what the host tried against exec-allow, open-allow
        /// and exec-timeout, for the operator to see.
        @Test("Refusals by exec-allow and open-allow, and children killed by exec-timeout, are logged")
        func policyRecords() throws {
            func canonical(_ path: String) throws -> String {
                let resolved = try #require(realpath(path, nil))
                defer { free(resolved) }
                return String(cString: resolved)
            }
            let sleep = try canonical("/bin/sleep")
            let (agent, listener) = try DaemonSyslogTests.start(.ours, ["--exec-allow=\(sleep)", "--open-allow=$DIR/allowed/*",
                                                                        "--exec-timeout=1"])
            defer { agent.finish() }
            let session = try Session(agent)
            // Drained after each request: syslog(3) waits while the socket is full.
            var records: [SyslogRecord?] = []
            for request in [ExecRequest.exec("/bin/sh", ["-c", "true"]), ExecRequest.exec("no-such-program"), F.open("$DIR/../secret", "w")] {
                _ = try session.ask(request)
                records += DaemonSyslogTests.records(listener)
            }
            let pid = try session.start(ExecRequest.exec("/bin/sleep", ["30"]))
            var status = #"{"return": {"exited": false}}"#
            let deadline = ContinuousClock.now + .seconds(20)
            while status == #"{"return": {"exited": false}}"# && ContinuousClock.now < deadline {
                usleep(100_000)
                status = try session.ask(ExecRequest.status(pid))
                records += DaemonSyslogTests.records(listener)
            }
            #expect(status == #"{"return": {"signal": 9, "exited": true}}"#)
            let messages = records.map { $0?.message.replacing(agent.directory, with: "$DIR") ?? "malformed" }
            let shell = try canonical("/bin/sh"), parent = try canonical(agent.directory + "/..")
            for expected in [
                "info: guest-exec refused: '/bin/sh' is '\(shell)', which exec-allow does not allow",
                "info: guest-exec refused: 'no-such-program' cannot be found (No such file or directory)",
                "info: guest-file-open refused: '$DIR/../secret' is '\(parent)/secret', which open-allow does not allow",
                "info: guest-exec child \(pid) ('/bin/sleep') still running after 1 s: killed (exec-timeout)",
            ] {
                #expect(messages.contains(expected), "\(expected) not in \(messages)")
            }
        }
    }
}

extension NeedsSystem {
    /// The guest-file tests that compare with the reference qemu-ga 7.2.
    @Suite("Files: the same as 7.2") struct FileTestsNeedingSystem {
        @Test("Same as 7.2: the round trip, every error text, the modes, direction changes, eof, seeks")
        func sameAsReference() throws {
            var requests = [
                F.open("$DIR/rt.txt", "w+"), F.write(1000, "aGVsbG8gd29ybGQK"), F.seek(1000, 0, #""set""#),
                F.read(1000, 5), F.read(1000), F.read(1000), F.seek(1000, 0, "1"), F.seek(1000, -6, #""end""#),
                F.flush(1000), F.close(1000), F.close(1000),
                // Errors.
                F.open("$DIR/missing/x"), F.open("$DIR/missing/x", "w"), F.open("$DIR/rt.txt", ""), F.open("$DIR/rt.txt", "rw"),
                F.open("$DIR/rt.txt", "re"), F.open("$DIR/rt.txt", "wx"), F.open("$DIR/rt.txt", "r+b+"),
                #"{"execute":"guest-file-open","arguments":{"path":"x","mode":null}}"#,
                #"{"execute":"guest-file-open","arguments":{"mode":"r"}}"#,
                #"{"execute":"guest-file-open","arguments":{"path":"x","extra":1}}"#,
                F.read(999), F.write(999, "QQ=="), F.seek(999, 0, "0"), F.flush(999), F.close(999),
                F.open("$DIR/rt.txt", "r"),  // 1001
                F.read(1001, -1), F.read(1001, 50_331_649), F.read(1001, 50_331_648),
                F.write(1001, "QQ =="), F.write(1001, "QQ==", count: 2), F.write(1001, "QQ==", count: -1), F.write(1001, "QUJD"),
                F.seek(1001, 0, "3"), F.seek(1001, 0, "-1"), F.seek(1001, 0, "4294967296"), F.seek(1001, 0, #""middle""#),
                F.seek(1001, 0, "true"), F.seek(1001, 0, "null"), F.seek(1001, 0, "[]"), F.seek(1001, 0, "1.5"),
                F.seek(1001, 0, "18446744073709551615"), F.seek(1001, -1, #""set""#), F.seek(1001, 100, #""set""#),
                #"{"execute":"guest-file-seek","arguments":{"handle":1001,"offset":0}}"#,
                #"{"execute":"guest-file-seek","arguments":{"handle":1001,"offset":1.0,"whence":0}}"#,
                #"{"execute":"guest-file-read","arguments":{"handle":"1001"}}"#,
                #"{"execute":"guest-file-write","arguments":{"handle":1001}}"#,
                #"{"execute":"guest-file-write","arguments":{"handle":1001,"buf-b64":null}}"#,
                F.open("$DIR/rt.txt", "a"),  // 1002
                F.read(1002), F.open("$DIR", "r"), F.read(1003), F.write(1003, "QUJD"),
                // Direction changes, eof, gaps, append.
                F.open("$DIR/d.txt", "w"), F.write(1004, "aGVsbG8gd29ybGQ="), F.close(1004),
                F.open("$DIR/d.txt", "r+"), F.read(1005, 5), F.write(1005, "WFg="), F.read(1005), F.read(1005, 0),
                F.seek(1005, 13, "0"), F.write(1005, "IQ=="), F.read(1005), F.seek(1005, 0, "2"), F.seek(1005, 0, "0"),
                F.read(1005, 14), F.read(1005, 14), F.close(1005),
                F.open("$DIR/d.txt", "a+"), F.seek(1006, 0, #""set""#), F.write(1006, "eHl6"), F.read(1006),
                F.seek(1006, 0, #""set""#), F.read(1006, 100), F.close(1006),
                // Writes of part of the data, and of nothing.
                F.open("$DIR/c.txt", "w+"), F.write(1007, "QUJDRA==", count: 2), F.write(1007, "", count: 0), F.write(1007, ""),
                F.write(1007, "QUJD", count: 0), F.seek(1007, 0, "0"), F.read(1007),
            ]
            // Every mode: what it reads and writes of an existing file.
            var handle = 1008
            for mode in ["r", "rb", "w", "wb", "a", "ab", "r+", "rb+", "r+b", "w+", "wb+", "w+b", "a+", "ab+", "a+b"] {
                let path = "$DIR/mode-\(mode)"
                requests += [F.open(path, "w"), F.write(handle, "b2xk"), F.close(handle),
                             F.open(path, mode), F.write(handle + 1, "TkVX"), F.seek(handle + 1, 0, "0"), F.read(handle + 1),
                             F.close(handle + 1), F.open(path, "r"), F.read(handle + 2), F.close(handle + 2)]
                handle += 3
            }
            try expectSameTranscripts("files", requests)
        }

        @Test("Same as 7.2: FIFOs read without blocking, refuse seeks, and a full pipe fails a write")
        func fifosAsReference() throws {
            var writer: Int32 = -1
            defer { if writer >= 0 { close(writer) } }
            try withBothAgents { ours, reference in
                var transcripts: [[String]] = []
                for agent in [reference, ours] {
                    let session = try Session(agent)
                    let fifo = agent.directory + "/fifo"
                    guard mkfifo(fifo, 0o600) == 0 else { throw HarnessError("mkfifo: \(errnoText())") }
                    var lines = try session.transcript([F.open("$DIR/fifo", "r"), F.read(1000)])
                    // Close-on-exec: a child another test spawns meanwhile must not
                    // hold the FIFO open (the reads after the close would not see EOF).
                    writer = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
                    lines += try session.transcript([F.read(1000)])
                    _ = write(writer, "abc", 3)
                    lines += try session.transcript([F.read(1000), F.read(1000, 3)])
                    _ = write(writer, "abcdef", 6)
                    lines += try session.transcript([F.read(1000, 6), F.seek(1000, 0, "1"), F.read(1000, 1)])
                    close(writer)
                    writer = -1
                    lines += try session.transcript([F.read(1000), F.close(1000)])

                    // Writing: a reader that never reads, a pipe filled up.
                    let reader = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
                    defer { close(reader) }
                    lines += try session.transcript([F.open("$DIR/fifo", "w"), F.write(1001, bytes: Bytes(repeating: 7, count: 1 << 20)),
                                                     F.write(1001, "QUJD"), F.seek(1001, 0, "1")])
                    transcripts.append(lines)
                }
                #expect(transcripts[1] == transcripts[0], "ours: \(transcripts[1])\n7.2: \(transcripts[0])")
            }
        }

        @Test("Same as 7.2: base64 edge cases, in replies and in the files written")
        func base64AsReference() throws {
            let cases = [
                "", "\\n", "=", "==", "====", "========", "QUJ", "QUJDRA", "QQ", "QQ==", "QQ=", "QQ==QUJD", "Q===", "Q=Q=", "=QQQ",
                "A=B=", "QUJD\\nRA==", "\\nQUJD\\n", "Q\\nU\\nJ\\nD", "aGVs\\nbG8=\\n", "++//", "QQ==QQ==QQ==",
                "QUJDQUJDQUJDQUJD=UJD", "aGVs bG8=", "aGVs@", "a-b_", "aGVs\\r\\n", "a\\tb", "QUJD\\u0000", "\\u00e9QUJD",
            ]
            let requests = cases.enumerated().flatMap { index, text in
                [F.open("$DIR/b64-\(index)", "w"), F.write(1000 + index, text), F.close(1000 + index)]
            }
            try withBothAgents { ours, reference in
                let expected = try Session(reference).transcript(requests)
                let actual = try Session(ours).transcript(requests)
                #expect(actual == expected)
                for index in cases.indices {
                    #expect(readFile(ours.directory + "/b64-\(index)") == readFile(reference.directory + "/b64-\(index)"),
                            "case \(cases[index])")
                }
            }
        }

        @Test("Same as 7.2: binary data of several sizes up to 16 MiB, written and read back")
        func binaryDataAsReference() throws {
            let sizes = [0, 1, 2, 3, 4, 100, 4096, 49_152, 65_537, 1 << 20, 16 << 20]
            try withBothAgents { ours, reference in
                let sessions = [try Session(reference), try Session(ours)]
                for (index, size) in sizes.enumerated() {
                    let data = garbage(seed: UInt64(size), count: size)
                    var transcripts: [[String]] = []
                    for session in sessions {
                        let agent = session.agent
                        let handle = try session.handle("$DIR/bin-\(index)", mode: "w+")
                        transcripts.append(try session.transcript([
                            F.write(handle, bytes: data), F.seek(handle, 0, "0"), F.read(handle, size), F.read(handle),
                            F.close(handle),
                        ]))
                        #expect(readFile(agent.directory + "/bin-\(index)") == data, "\(agent.kind), \(size) bytes")
                    }
                    let same = transcripts[0] == transcripts[1]
                    #expect(same, "\(size) bytes: the replies differ")
                    #expect(readData(transcripts[1][2]) == data, "\(size) bytes read back")
                }
            }
        }

        @Test("Handles stay unique across a restart, open ones do not survive it (same as 7.2)")
        func handlesAcrossRestart() throws {
            var transcripts: [[String]] = []
            for kind in [AgentBinary.reference, .ours] {
                var template = Array("/tmp/qga-state.XXXXXX".utf8CString)
                guard mkdtemp(&template) != nil else { throw HarnessError("mkdtemp") }
                let stateDirectory = String(cString: template)
                defer { removeTree(stateDirectory) }
                var lines: [String] = []
                for _ in 0..<2 {
                    let agent = try Agent(kind, extraArguments: ["-t", stateDirectory])
                    let session = try Session(agent)
                    lines += try session.transcript([F.read(1000), F.open("$DIR/f", "w"), F.open("$DIR/f", "r")])
                    agent.finish()
                    lines.append(String(decoding: readFile(stateDirectory + "/qga.state") ?? [], as: UTF8.self))
                }
                transcripts.append(lines)
            }
            #expect(transcripts[1] == transcripts[0])
            #expect(transcripts[1] == [
                #"{"error": {"class": "GenericError", "desc": "handle '1000' has not been found"}}"#,
                #"{"return": 1000}"#, #"{"return": 1001}"#, "[global]\nfd_counter=1002\n",
                #"{"error": {"class": "GenericError", "desc": "handle '1000' has not been found"}}"#,
                #"{"return": 1002}"#, #"{"return": 1003}"#, "[global]\nfd_counter=1004\n",
            ])
        }
    }
}

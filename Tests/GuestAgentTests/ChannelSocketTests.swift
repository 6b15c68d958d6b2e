import CGLib
import Glibc
import Testing
@testable import GuestAgent

/// unix-listen and vsock-listen.
@Suite struct ChannelSocketTests {
    private static let sync7 = "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":7}}\n"

    // MARK: unix-listen

    /// A client that closes with replies unread makes the agent's next read
    /// fail with ECONNRESET. qemu-ga 7.2 stops (exit 0) then; only that
    /// client must go, and the next one is served.
    @Test func unixClientResetClosesOnlyThatClient() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let agent = TestAgent(scratch: scratch)
        let path = scratch.file("qga.sock")
        let channel = try GAChannel(method: .unixListen, path: path, log: agent.log)
        agent.attach(channel)

        let first = try #require(unixClient(path))
        writeString(first, Self.sync7)
        #expect(drive { isReadable(first) })
        // Another request whose reply also stays unread, then an abortive
        // close (SO_LINGER 0) with both replies in the receive queue.
        writeString(first, Self.sync7)
        #expect(drive { bytesReadable(first) == 2 * "{\"return\": 7}\n".utf8.count }, "both replies wait unread")
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(first, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(first)
        #expect(drive { agent.disconnects == 1 })
        #expect(agent.logMessages.contains("warning: error reading channel"))
        #expect(agent.logMessages.contains { $0.contains("Connection reset by peer") })

        let second = try #require(unixClient(path))
        defer { close(second) }
        writeString(second, Self.sync7)
        #expect(readLines(from: second, until: "return") == ["{\"return\": 7}"])
        #expect(agent.fatalErrors == 0)
        #expect(channel.isListening)
    }

    @Test func unixListenServesOneClientAtATime() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let agent = TestAgent(scratch: scratch)
        let path = scratch.file("qga.sock")
        let channel = try GAChannel(method: .unixListen, path: path, log: agent.log)
        agent.attach(channel)

        let first = try #require(unixClient(path))
        writeString(first, Self.sync7)
        #expect(readLines(from: first, until: "return") == ["{\"return\": 7}"])
        // The second client waits in the backlog while the first is connected.
        let second = try #require(unixClient(path))
        defer { close(second) }
        writeString(second, "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":8}}\n")
        drive(for: 0.2) { false }
        #expect(!isReadable(second))
        close(first)
        #expect(readLines(from: second, until: "return") == ["{\"return\": 8}"])
    }

    @Test func unixListenRefusesToReplaceAFileThatIsNotASocket() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.file("precious")
        let fd = open(path, O_WRONLY | O_CREAT, 0o600)
        writeString(fd, "keep me\n")
        close(fd)

        for retry in [false, true] {
            do {
                _ = try GAChannel(method: .unixListen, path: path, log: GALog(), retryPath: retry)
                if !retry { Issue.record("replaced \(path)") }
            } catch {
                #expect(error.description
                    == "Failed to bind socket to \(path): the path exists and is not a socket; not replacing it")
            }
        }
        var status = stat()
        #expect(lstat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFREG)
        let reader = open(path, O_RDONLY | O_NONBLOCK)
        defer { close(reader) }
        #expect(readAll(reader) == Array("keep me\n".utf8))
    }

    @Test func unixListenReplacesAnOldSocket() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.file("qga.sock")
        close(unixListener(path))  // a stale socket file nobody listens on
        #expect(unixClient(path) == nil)

        let channel = try GAChannel(method: .unixListen, path: path, log: GALog())
        let agent = TestAgent(scratch: scratch)
        agent.attach(channel)
        let client = try #require(unixClient(path))
        defer { close(client) }
        writeString(client, Self.sync7)
        #expect(readLines(from: client, until: "return") == ["{\"return\": 7}"])
    }

    static let tooLongPath = "/tmp/" + String(repeating: "x", count: 104)  // 109 bytes

    /// Paths that cannot be listened at, in `scratch`, and qemu-ga 7.2's
    /// text for each (`NeedsSystem.ChannelReferenceTests` checks the binary).
    static func unixListenErrors(in scratch: ScratchDirectory) -> [(path: String, text: String)] {
        let missing = scratch.file("missing/qga.sock")
        let directory = scratch.file("directory")
        mkdir(directory, 0o700)
        return [
            (missing, "Failed to bind socket to \(missing): No such file or directory"),
            (directory, "Failed to unlink socket \(directory): Is a directory"),
            (tooLongPath, "UNIX socket path '\(tooLongPath)' is too long"),
        ]
    }

    @Test func unixListenErrorTextsAreTheReferences() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        for (path, text) in Self.unixListenErrors(in: scratch) {
            do {
                _ = try GAChannel(method: .unixListen, path: path, log: GALog())
                Issue.record("listened at \(path)")
            } catch {
                #expect(error.description == text)
                #expect(error.isPermanent == (path == Self.tooLongPath))
            }
        }

        // A path that fills sun_path exactly (108 bytes, no terminator) works.
        let exact = scratch.path + "/" + String(repeating: "s", count: 107 - scratch.path.utf8.count)
        #expect(exact.utf8.count == 108)
        let channel = try GAChannel(method: .unixListen, path: exact, log: GALog())
        var status = stat()
        #expect(lstat(exact, &status) == 0 && status.st_mode & S_IFMT == S_IFSOCK)
        _ = channel
    }

    /// QEMU's unix_listen turns an empty path into a fresh
    /// `$TMPDIR/qemu-socket-XXXXXX`.
    @Test func unixListenWithAnEmptyPathUsesATemporarySocket() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let saved = getenv("TMPDIR").map { String(cString: $0) }
        setenv("TMPDIR", scratch.path, 1)
        defer {
            if let saved { setenv("TMPDIR", saved, 1) } else { unsetenv("TMPDIR") }
        }
        let channel = try GAChannel(method: .unixListen, path: "", log: GALog())
        #expect(channel.isListening)
        let directory = try #require(opendir(scratch.path))
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasPrefix("qemu-socket-") { names.append(name) }
        }
        try #require(names.count == 1)
        #expect(names[0].utf8.count == "qemu-socket-XXXXXX".utf8.count)
        let client = try #require(unixClient(scratch.file(names[0])))
        close(client)
    }

    // MARK: vsock-listen

    /// Each address and the first critical qemu-ga 7.2 logs for it (those
    /// that parse go on to bind, which fails for CID 1 on machines without a
    /// vsock loopback transport; the parse cases are what matter).
    static let vsockParseCases: [(String, String)] = [
        ("1:2:3", "Failed to parse port '2:3'"),
        ("-1:5", "Failed to parse cid '-1'"),
        ("x", "error parsing address 'x'"),
        ("1:", "error parsing address '1:'"),
        (":1", "error parsing address ':1'"),
        ("", "error parsing address ''"),
        (":", "error parsing address ':'"),
        ("1", "error parsing address '1'"),
        ("1:2 ", "Failed to parse port '2 '"),
        ("1 :2", "Failed to parse cid '1 '"),
        ("0x1:2", "Failed to parse cid '0x1'"),
        ("4294967296:1", "Failed to parse cid '4294967296'"),
        ("18446744073709551616:1", "Failed to parse cid '18446744073709551616'"),
        ("1:4294967296", "Failed to parse port '4294967296'"),
        ("1:-1", "Failed to parse port '-1'"),
        ("1: -1", "Failed to parse port ' -1'"),
        ("1:2x", "Failed to parse port '2x'"),
        ("1:+", "Failed to parse port '+'"),
        ("1:2,3", "trailing characters in address '1:2,3'"),
        ("1:,3", "error parsing address '1:,3'"),
        ("1:" + String(repeating: "1", count: 33), "trailing characters in address '1:\(String(repeating: "1", count: 33))'"),
        (String(repeating: "1", count: 33) + ":1", "error parsing address '\(String(repeating: "1", count: 33)):1'"),
    ]

    @Test func vsockAddressParseErrors() {
        for (input, text) in Self.vsockParseCases {
            do {
                let address = try VsockAddress(parsing: input)
                Issue.record("'\(input)' parsed as \(address)")
            } catch {
                #expect(error.description == text, "input '\(input)'")
                #expect(error.isPermanent)
            }
            // Also as the channel reports it, retry or not.
            #expect(throws: ChannelError.self) {
                try GAChannel(method: .vsockListen, path: input, log: GALog(), retryPath: true)
            }
        }
        let accepted: [(String, VsockAddress)] = [
            ("4294967295:1024", VsockAddress(cid: 4294967295, port: 1024)),
            (" 1:2", VsockAddress(cid: 1, port: 2)),
            ("1: 2", VsockAddress(cid: 1, port: 2)),
            ("+1:+2", VsockAddress(cid: 1, port: 2)),
            ("01:02", VsockAddress(cid: 1, port: 2)),
            ("\t3:70000", VsockAddress(cid: 3, port: 70000)),
            (String(repeating: "0", count: 31) + "1:2", VsockAddress(cid: 1, port: 2)),
        ]
        for (input, address) in accepted {
            #expect((try? VsockAddress(parsing: input)) == address, "input '\(input)'")
        }
    }

    /// A round trip over vsock loopback (CID 1) where the kernel offers it.
    /// Where it does not (no vsock_loopback transport: binding CID 1 fails),
    /// the agent must report that failure in qemu-ga's words, and a listener
    /// on VMADDR_CID_ANY must still be a real listening vsock socket.
    @Test func vsockRoundTripOrTheExactBindError() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let probe = socket(AF_VSOCK, Int32(SOCK_STREAM.rawValue), 0)
        try #require(probe >= 0, "no AF_VSOCK here: \(SystemError(errno: errno))")
        defer { close(probe) }
        let port = UInt32(20000 + getpid() % 20000)
        var local = sockaddr_vm()
        local.svm_family = sa_family_t(AF_VSOCK)
        local.svm_cid = UInt32(VMADDR_CID_LOCAL)
        local.svm_port = port
        let loopback = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, socklen_t(MemoryLayout<sockaddr_vm>.size)) }
        } == 0
        let bindError = errno
        close(probe)

        if loopback {
            let agent = TestAgent(scratch: scratch)
            let channel = try GAChannel(method: .vsockListen, path: "1:\(port)", log: agent.log)
            agent.attach(channel)
            let client = socket(AF_VSOCK, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(client) }
            let connected = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(client, $0, socklen_t(MemoryLayout<sockaddr_vm>.size))
                }
            }
            try #require(connected == 0, "connect to 1:\(port): \(SystemError(errno: errno))")
            setNonBlocking(client)
            writeString(client, Self.sync7)
            #expect(readLines(from: client, until: "return") == ["{\"return\": 7}"])
        } else {
            #expect([EADDRNOTAVAIL, ENODEV].contains(bindError), "\(SystemError(errno: bindError))")
            do {
                _ = try GAChannel(method: .vsockListen, path: "1:\(port)", log: GALog())
                Issue.record("bound CID 1 where a raw socket could not")
            } catch {
                #expect(error.description == "Failed to bind socket: \(SystemError(errno: bindError))")
            }
            let channel = try GAChannel(method: .vsockListen, path: "4294967295:\(port)", log: GALog())
            let fd = try #require(channel.descriptor)
            var address = sockaddr_vm()
            var length = socklen_t(MemoryLayout<sockaddr_vm>.size)
            withUnsafeMutablePointer(to: &address) {
                _ = $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            #expect(Int32(address.svm_family) == AF_VSOCK && address.svm_port == port)
            var listening: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size)
            #expect(listening == 1)
        }
    }
}

import CGLib
import Glibc
import Testing
@testable import GuestAgent

/// Socket activation, `-r` retries, and fatal channel failures.
@Suite struct ChannelActivationTests {
    /// Descriptors far from anything the test process uses, standing in for
    /// systemd's 3 and 4 in the in-process tests.
    private static let first: Int32 = 900

    private func setActivationEnvironment(pid: String = String(getpid()), count: String) {
        setenv("LISTEN_PID", pid, 1)
        setenv("LISTEN_FDS", count, 1)
    }

    private func clearActivationEnvironment() {
        unsetenv("LISTEN_PID")
        unsetenv("LISTEN_FDS")
    }

    private var environmentIsSet: Bool { getenv("LISTEN_PID") != nil || getenv("LISTEN_FDS") != nil }

    /// Moves `fd` to `target` (not close-on-exec, as systemd passes it).
    private func place(_ fd: Int32, at target: Int32) {
        precondition(dup2(fd, target) == target)
        close(fd)
    }

    @Test func activationWithAnInheritedUnixListener() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.file("activated.sock")
        place(unixListener(path), at: Self.first)
        setActivationEnvironment(count: "1")
        defer { clearActivationEnvironment() }

        let found = try SocketActivation.inheritedListener(firstDescriptor: Self.first)
        #expect(found?.method == .unixListen)
        #expect(found?.descriptor == Self.first)
        #expect(!environmentIsSet)
        #expect(fcntl(Self.first, F_GETFD) & FD_CLOEXEC != 0)

        let agent = TestAgent(scratch: scratch)
        let channel = try GAChannel(method: .unixListen, listeningDescriptor: Self.first, log: agent.log)
        agent.attach(channel)
        let client = try #require(unixClient(path))
        defer { close(client) }
        writeString(client, "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":3}}\n")
        #expect(readLines(from: client, until: "return") == ["{\"return\": 3}"])
    }

    @Test func activationIsIgnoredUnlessTheEnvironmentIsForUs() throws {
        defer { clearActivationEnvironment() }
        for (pid, count) in [("1", "1"), (String(getpid()), "0"), (String(getpid()), "1x"), (String(getpid()) + " ", "1"),
                             (String(getpid()), "")] {
            setActivationEnvironment(pid: pid, count: count)
            #expect(try SocketActivation.inheritedListener(firstDescriptor: Self.first) == nil, "\(pid) \(count)")
            // Left alone, as qemu-ga does.
            #expect(String(cString: getenv("LISTEN_FDS")) == count)
        }
    }

    @Test func activationErrors() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        defer { clearActivationEnvironment() }

        // Nothing open at the descriptor.
        close(Self.first)
        setActivationEnvironment(count: "1")
        #expect(throws: SocketActivationError.invalidDescriptor(Self.first, errno: EBADF)) {
            try SocketActivation.inheritedListener(firstDescriptor: Self.first)
        }
        #expect(!environmentIsSet)
        #expect(SocketActivationError.invalidDescriptor(3, errno: EBADF).description
            == "Socket activation failed: invalid file descriptor fd = 3: Bad file descriptor")

        // Two sockets: both marked close-on-exec, then refused; a missing
        // second one is reported first.
        place(unixListener(scratch.file("a.sock")), at: Self.first)
        defer { close(Self.first) }
        close(Self.first + 1)
        setActivationEnvironment(count: "2")
        #expect(throws: SocketActivationError.invalidDescriptor(Self.first + 1, errno: EBADF)) {
            try SocketActivation.inheritedListener(firstDescriptor: Self.first)
        }
        place(unixListener(scratch.file("b.sock")), at: Self.first + 1)
        defer { close(Self.first + 1) }
        setActivationEnvironment(count: " +2")
        #expect(throws: SocketActivationError.multipleSockets) {
            try SocketActivation.inheritedListener(firstDescriptor: Self.first)
        }
        #expect(fcntl(Self.first + 1, F_GETFD) & FD_CLOEXEC != 0)
        #expect(SocketActivationError.multipleSockets.description == "qemu-ga only supports listening on one socket")

        // Not a unix or vsock socket: a pipe, then a TCP socket.
        var ends: [Int32] = [0, 0]
        pipe(&ends)
        close(ends[1])
        place(ends[0], at: Self.first)
        setActivationEnvironment(count: "1")
        #expect(throws: SocketActivationError.unsupportedType) {
            try SocketActivation.inheritedListener(firstDescriptor: Self.first)
        }
        place(socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0), at: Self.first)
        setActivationEnvironment(count: "1")
        #expect(throws: SocketActivationError.unsupportedType) {
            try SocketActivation.inheritedListener(firstDescriptor: Self.first)
        }
        #expect(SocketActivationError.unsupportedType.description == "unsupported listen fd type")

        // A vsock socket means vsock-listen.
        let vsock = socket(AF_VSOCK, Int32(SOCK_STREAM.rawValue), 0)
        if vsock >= 0 {
            place(vsock, at: Self.first)
            setActivationEnvironment(count: "1")
            #expect(try SocketActivation.inheritedListener(firstDescriptor: Self.first)?.method == .vsockListen)
        }
    }

    /// The built binary started by a systemd-like parent: fd 3 is a listening
    /// unix socket, LISTEN_PID is the agent's pid, and `-m`/`-p` are ignored.
    @Test func activatedBinaryServesTheInheritedSocket() throws {
        let binary = try #require(builtAgent(), "the built qemu-ga was not found next to the test bundle")
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.file("activated.sock")
        let listener = unixListener(path)
        defer { close(listener) }
        let child = ChildProcess(
            ["/bin/sh", "-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"", binary,
             "-m", "isa-serial", "-p", "/nonexistent/ttyS9"],
            descriptor3: listener)
        defer { close(child.stderr) }
        let client = try #require(unixClient(path))
        defer { close(client) }
        writeString(client, "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":11}}\n")
        var reply: [UInt8] = []
        let deadline = monotonicSeconds() + 5
        while !reply.contains(0x0A), monotonicSeconds() < deadline {
            reply += readAll(client)
            usleep(2000)
        }
        #expect(String(decoding: reply, as: UTF8.self) == "{\"return\": 11}\n", "stderr: \(child.errorOutput())")
        #expect(child.wait(timeout: 0.05) == nil, "the agent exited: \(child.errorOutput())")
        #expect(child.kill() == 128 + SIGKILL)
    }

    @Test func activatedBinaryRejectsAMissingDescriptor() throws {
        let binary = try #require(builtAgent(), "the built qemu-ga was not found next to the test bundle")
        let child = ChildProcess(["/bin/sh", "-c", "exec 3<&-; LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\"", binary])
        defer { close(child.stderr) }
        #expect(child.wait(timeout: 5) == 1)
        #expect(child.errorOutput() == "Socket activation failed: invalid file descriptor fd = 3: Bad file descriptor\n")
    }

    // MARK: -r

    /// An isa-serial port whose device vanishes (the pty behind the path is
    /// gone, so the re-open after EOF fails) and comes back later.
    @Test func retryReopensAVanishedPort() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let link = scratch.file("ttyS0")
        var pty = PseudoTerminal()
        symlink(pty.slavePath, link)
        let agent = TestAgent(scratch: scratch)
        let channel = try GAChannel(method: .isaSerial, path: link, log: agent.log, retryPath: true, retryInterval: 100)
        channel.reconnectDelay = 20
        agent.attach(channel)
        writeString(pty.master, "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1}}\n")
        #expect(readLines(from: pty.master, until: "return") == ["{\"return\": 1}"])

        pty.closeMaster()
        #expect(drive { channel.isWaitingToRetry })
        let messages = agent.logMessages
        #expect(messages.contains("critical: error opening channel '\(link)': No such file or directory"))
        #expect(messages.suffix(2) == ["warning: agent stopped unexpectedly, restarting...", "warning: waiting for channel path..."])
        // Still missing at the next round: qemu-ga's round of messages again.
        #expect(drive { agent.logMessages.filter { $0 == "critical: failed to create guest agent channel" }.count >= 1 })

        pty = PseudoTerminal()
        defer { pty.closeMaster() }
        unlink(link)
        symlink(pty.slavePath, link)
        #expect(drive { channel.isConnected })
        writeString(pty.master, "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":2}}\n")
        #expect(readLines(from: pty.master, until: "return") == ["{\"return\": 2}"])
        #expect(agent.fatalErrors == 0)
    }

    /// unix-listen in a directory that does not exist yet: qemu-ga's failed
    /// round is logged, and the socket appears once the directory does.
    @Test func retryWaitsForTheSocketDirectory() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.file("run/qga.sock")
        let agent = TestAgent(scratch: scratch)
        let channel = try GAChannel(method: .unixListen, path: path, log: agent.log, retryPath: true, retryInterval: 50)
        agent.attach(channel)
        #expect(!channel.isListening && channel.isWaitingToRetry)
        #expect(agent.logMessages == [
            "critical: Failed to bind socket to \(path): No such file or directory",
            "critical: failed to create guest agent channel",
            "critical: failed to initialize guest agent channel",
            "warning: agent stopped unexpectedly, restarting...",
            "warning: waiting for channel path...",
        ])
        mkdir(scratch.file("run"), 0o700)
        #expect(drive { channel.isListening })
        let client = try #require(unixClient(path))
        defer { close(client) }
        writeString(client, "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":5}}\n")
        #expect(readLines(from: client, until: "return") == ["{\"return\": 5}"])
    }

    @Test func retryIntervalIsFiveSecondsByDefault() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let channel = try GAChannel(method: .unixListen, path: scratch.file("no/such.sock"), log: GALog(), retryPath: true)
        #expect(channel.retryInterval == 5000)
        #expect(channel.isWaitingToRetry)
        // Nothing happens before the interval.
        drive(for: 0.3) { false }
        #expect(channel.isWaitingToRetry && !channel.isListening)
    }

    /// Without -r a vanished port is fatal: the agent stops (qemu-ga exits 0
    /// on a channel read error), instead of polling a dead descriptor.
    @Test func withoutRetryAVanishedPortIsFatal() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let link = scratch.file("ttyS0")
        let pty = PseudoTerminal()
        symlink(pty.slavePath, link)
        let agent = TestAgent(scratch: scratch)
        let channel = try GAChannel(method: .isaSerial, path: link, log: agent.log)
        channel.reconnectDelay = 20
        agent.attach(channel)
        pty.closeMaster()
        #expect(drive { agent.fatalErrors == 1 })
        #expect(!channel.isWaitingToRetry && !channel.isConnected)
        #expect(agent.logMessages.contains("critical: error opening channel '\(link)': No such file or directory"))
        drive(for: 0.1) { false }
        #expect(agent.fatalErrors == 1)

        #expect(throws: ChannelError.self) {
            try GAChannel(method: .unixListen, path: scratch.file("no/such.sock"), log: GALog())
        }
    }
}

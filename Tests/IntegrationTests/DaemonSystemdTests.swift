#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing

/// systemd's notification protocol, spoken by the agent itself: the test
/// binds the datagram socket that `NOTIFY_SOCKET` names (a path, or `@name`
/// in the abstract namespace) and reads what arrives.
@Suite("Daemon: systemd notification")
struct DaemonSystemdTests {
    private static func text(_ datagram: Bytes?) -> String { datagram.map { String(decoding: $0, as: UTF8.self) } ?? "(nothing)" }

    private static func texts(_ listener: SyslogListener) -> [String] { listener.drain().map { text($0) } }

    /// The first `count` datagrams, however long the agent takes under load
    /// to send them (30 s only against a hang); then whatever else is queued.
    private static func texts(_ count: Int, from listener: SyslogListener) -> [String] {
        var texts: [String] = []
        while texts.count < count, let datagram = listener.next(timeout: .seconds(30)) { texts.append(text(datagram)) }
        return texts + Self.texts(listener)
    }

    /// Our agent on `socketPath`, started as a plain process (the harness's
    /// `Agent` waits for the socket first, which these tests must not).
    private static func spawnAgent(_ directory: TemporaryDirectory, _ arguments: [String], environment: [String: String?]) throws -> pid_t {
        let binary = try AgentBinary.ours.path()
        return try spawnProcess(executable: binary, argv: [binary, "-m", "unix-listen", "-t", directory.path] + arguments,
                                environment: agentEnvironment(environment), stdout: directory("log"), stderr: nil)
    }

    private static func expectPong(_ socketPath: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let connection = try Connection(path: socketPath)
        defer { connection.close() }
        try connection.send(Request.ping)
        #expect(try connection.receive(lines: 1) == wire(Reply.pong), sourceLocation: sourceLocation)
    }

    @Test("READY=1 once the socket accepts, WATCHDOG=1 again and again, STOPPING=1 on SIGTERM")
    func lifecycle() throws {
        let directory = try TemporaryDirectory()
        let listener = try SyslogListener(path: directory("notify"))
        let pid = try Self.spawnAgent(directory, ["-p", directory("sock")],
                                      environment: ["NOTIFY_SOCKET": directory("notify"), "WATCHDOG_USEC": "200000"])
        defer {
            kill(pid, SIGKILL)
            _ = waitForChild(pid, timeout: .seconds(5))
        }
        #expect(Self.text(listener.next(timeout: .seconds(10))) == "READY=1")
        // Ready means the socket accepts: the first try connects.
        try Self.expectPong(directory("sock"))
        let pings = Self.texts(4, from: listener)
        #expect(pings.count >= 4 && Set(pings) == ["WATCHDOG=1"], "\(pings)")
        kill(pid, SIGTERM)
        #expect(exitCode(of: waitForChild(pid, timeout: .seconds(10))) == 0)
        let last = Self.texts(listener)
        #expect(last.last == "STOPPING=1" && Set(last.dropLast()).isSubset(of: ["WATCHDOG=1"]), "\(last)")
    }

    @Test("An abstract socket; no WATCHDOG_USEC, no keep-alives; children do not see the variables")
    func abstractSocket() throws {
        let name = "@qga-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let listener = try SyslogListener(path: name)
        let agent = try Agent(.ours, environment: ["NOTIFY_SOCKET": name, "WATCHDOG_PID": nil])
        #expect(Self.text(listener.next(timeout: .seconds(10))) == "READY=1")
        let environment = try Session(agent).run(ExecRequest.exec("/usr/bin/env", capture: "true"))
        let variables = String(decoding: readData(environment.replacing(#""out-data""#, with: #""buf-b64""#)) ?? [], as: UTF8.self)
        #expect(variables.contains("PATH=") && !variables.contains("NOTIFY_SOCKET") && !variables.contains("WATCHDOG_"), "\(variables)")
        usleep(300_000)
        agent.finish()
        #expect(Self.texts(listener) == ["STOPPING=1"])
    }

    /// `WATCHDOG_PID`: the keep-alives are for the process it names.
    @Test("WATCHDOG_PID naming another process turns the watchdog off; naming ours keeps it", arguments: [false, true])
    func watchdogPid(ours: Bool) throws {
        let directory = try TemporaryDirectory()
        let listener = try SyslogListener(path: directory("notify"))
        // The shell execs the agent, so its $$ is the agent's pid.
        let agent = try Agent(.ours, environment: ["NOTIFY_SOCKET": directory("notify"), "WATCHDOG_USEC": "200000",
                                                   "WATCHDOG_PID": ours ? nil : "1"],
                              launcher: { _ in ours ? ["/bin/sh", "-c", "WATCHDOG_PID=$$ exec \"$@\"", "sh"] : [] })
        defer { agent.finish() }
        #expect(Self.text(listener.next(timeout: .seconds(10))) == "READY=1")
        if ours {
            let pings = Self.texts(4, from: listener)
            #expect(pings.count >= 4 && Set(pings) == ["WATCHDOG=1"], "\(pings)")
        } else {
            // A second in which ours sends several keep-alives: silence
            // (load can only make it quieter).
            usleep(1_000_000)
            #expect(Self.texts(listener).isEmpty)
        }
    }

    @Test("Frozen: READY=1, and the keep-alives go on (no disk write involved)")
    func frozen() throws {
        let directory = try TemporaryDirectory()
        let listener = try SyslogListener(path: directory("notify"))
        let agent = try Agent(.ours, environment: ["NOTIFY_SOCKET": directory("notify"), "WATCHDOG_USEC": "200000"],
                              prepare: { try writeFile($0 + "/qga.state.isfrozen", []) })
        defer { DaemonStateTests.expectIgnoresSIGTERM(agent) }
        #expect(Self.text(listener.next(timeout: .seconds(10))) == "READY=1")
        let pings = Self.texts(4, from: listener)
        #expect(pings.count >= 4 && Set(pings) == ["WATCHDOG=1"], "\(pings)")
        #expect(try agent.ask(#"{"execute":"guest-fsfreeze-status"}"#) == Reply.return(#""frozen""#))
    }

    @Test("-r: READY=1 only once the channel could be opened")
    func readyAfterRetry() throws {
        let directory = try TemporaryDirectory()
        let listener = try SyslogListener(path: directory("notify"))
        let socketPath = directory("later") + "/sock"
        let pid = try Self.spawnAgent(directory, ["-p", socketPath, "-r"], environment: ["NOTIFY_SOCKET": directory("notify")])
        defer {
            kill(pid, SIGKILL)
            _ = waitForChild(pid, timeout: .seconds(5))
        }
        #expect(listener.next(timeout: .seconds(1)) == nil)
        try makeDirectory(directory("later"))
        // qemu-ga retries every 5 s.
        #expect(Self.text(listener.next(timeout: .seconds(15))) == "READY=1")
        try Self.expectPong(socketPath)
    }
}

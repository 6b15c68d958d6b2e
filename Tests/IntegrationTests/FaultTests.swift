#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Testing
import TestRequirements

/// Faults around a running agent: a full or read-only filesystem under the
/// state file and under a guest file, a log that cannot be written, a child
/// that exits before taking its input, a client that stops reading a large
/// reply and leaves, a state directory that disappears, signals during a
/// request. In each the agent answers with an error where a reply is due,
/// keeps what it acknowledged, and keeps running (`finish` checks that it
/// still answers and exits 0 on SIGTERM).
///
/// Small filesystems are 64 KiB tmpfs mounts in a private mount namespace of
/// the agent's own (`smallFilesystem`): they vanish with the agent, and the
/// test reaches them through `/proc/<pid>/root`.
@Suite("Faults")
struct FaultTests {
    static let commitFailed = Reply.error("failed to commit persistent state to disk")

    // MARK: The state file

    @Test("The state directory disappears: guest-file-open fails until it is back, handles stay unique")
    func stateDirectoryDisappears() throws {
        let agent = try Agent(.ours, extraArguments: ["-t", "$DIR/state"], prepare: { try makeDirectory($0 + "/state") })
        defer { agent.finish() }
        let session = try Session(agent)
        let first = try session.handle("/dev/null", mode: "r")
        removeTree(agent.directory + "/state")
        #expect(try session.ask(FileRequest.open("/dev/null", "r")) + "\n" == Self.commitFailed)
        #expect(try session.ask(Request.ping) + "\n" == Reply.pong)
        try makeDirectory(agent.directory + "/state")
        let second = try session.handle("/dev/null", mode: "r")
        #expect(second > first)
        #expect(readFile(agent.directory + "/state/qga.state") == counterFile(second + 1))
        for handle in [first, second] { #expect(try session.ask(FileRequest.close(handle)) == #"{"return": {}}"#) }
    }

    // MARK: Guest files and the log

    @Test("The log file cannot be written (/dev/full, -v): every request is answered")
    func logFileCannotBeWritten() throws {
        try withAgent(extraArguments: ["-v", "-l", "/dev/full"]) { agent in
            let client = try agent.connect()
            let requests = (0..<200).map { Request.sync($0) }.joined() + #"{"execute":"guest-info"}"#
            try client.send(requests)
            let replies = try client.receive(lines: 201, timeout: .seconds(30))
            let expected = (0..<200).map { Reply.return("\($0)") }.joined()
            #expect(Bytes(replies.prefix(expected.utf8.count)) == Bytes(expected.utf8))
        }
    }

    // MARK: Children

    @Test("guest-exec: a child that exits before its input is written is reported, nothing leaks")
    func execChildExitsBeforeItsInput() throws {
        try withAgent { agent in
            let session = try Session(agent)
            _ = try session.ask(Request.ping)  // connected: the client's descriptor counts
            let before = agent.descriptors
            let input = Data(garbage(seed: 3, count: 4 << 20)).base64EncodedString()
            for _ in 0..<3 {
                #expect(try session.run(ExecRequest.exec("/bin/true", input: input)) == #"{"return": {"exitcode": 0, "exited": true}}"#)
            }
            #expect(try session.ask(Request.ping) + "\n" == Reply.pong)
            expectSameDescriptors(agent.descriptors, before)
        }
    }

    @Test("guest-set-user-password: chpasswd exits before reading its input; the reply says so")
    func chpasswdExitsBeforeItsInput() throws {
        let fixture = try FixtureRoot()
        try fixture.program("/usr/sbin/chpasswd", "exit 0")
        try withFixtureAgent(fixture) { agent in
            let session = try Session(agent)
            _ = try session.ask(Request.ping)  // connected: the client's descriptor counts
            let before = agent.descriptors
            // Far more than a pipe holds: the write meets the closed pipe.
            let password = Data(garbage(seed: 4, count: 1 << 20, alphabet: Bytes("abcdefgh".utf8))).base64EncodedString()
            let reply = try session.ask(#"{"execute":"guest-set-user-password","arguments":{"username":"root","password":"\#(password)","crypted":false}}"#)
            #expect(reply == #"{"error": {"class": "GenericError", "desc": "set user password: cannot write to stdin pipe: Broken pipe"}}"#)
            #expect(try session.ask(Request.ping) + "\n" == Reply.pong)
            expectSameDescriptors(agent.descriptors, before)
        }
    }

    // MARK: Clients

    @Test("A client stops reading a 16 MiB reply and leaves: the next client is served, the memory goes back")
    func clientLeavesDuringALargeReply() throws {
        try withAgent { agent in
            let path = agent.directory + "/big"
            try writeFile(path, garbage(seed: 5, count: 16 << 20))
            let session = try Session(agent)
            let handle = try session.handle(path, mode: "r")
            _ = try session.ask(Request.ping)
            let baseline = agent.residentKiB

            let reader = try agent.connect(after: session)
            try reader.send(FileRequest.read(handle, 16 << 20) + String(repeating: Request.ping, count: 1000))
            try reader.waitUntilReplyQueued()
            usleep(200_000)  // the agent is blocked writing, its input paused
            reader.close()

            let next = try Session(agent)
            #expect(try next.ask(Request.sync(7)) + "\n" == Reply.return("7"))
            // The open file survives its client; the read went through.
            #expect(try next.ask(FileRequest.read(handle, 1)) == #"{"return": {"count": 0, "buf-b64": "", "eof": true}}"#)
            #expect(try next.ask(FileRequest.close(handle)) == #"{"return": {}}"#)
            // The 21 MiB reply is not kept: well under its size above the
            // baseline (except under AddressSanitizer, whose quarantine keeps
            // freed memory on purpose).
            if !builtWithAddressSanitizer {
                #expect(agent.residentKiB - baseline < 8 << 10, "VmRSS \(baseline) KiB -> \(agent.residentKiB) KiB")
            }
        }
    }

    // MARK: Signals

    @Test("SIGTERM during a request: the request is answered, then the agent exits 0")
    func sigtermDuringARequest() throws {
        let fixture = try FixtureRoot()
        // chpasswd says it runs, then waits for the test's word: the signal
        // comes while the request is in progress, however slow the machine.
        let (running, go) = (fixture.path("/running"), fixture.path("/go"))
        try fixture.program("/usr/sbin/chpasswd", "cat >/dev/null; touch '\(running)'; while [ ! -e '\(go)' ]; do sleep 0.05; done")
        let agent = try fixtureAgent(fixture)
        defer { agent.finish(expectRunning: false) }
        let client = try agent.connect()
        try client.send(#"{"execute":"guest-set-user-password","arguments":{"username":"root","password":"cGFzcw==","crypted":false}}"#)
        #expect(poll(timeout: .seconds(30)) { fileExists(running) }, "chpasswd did not start")
        kill(agent.pid, SIGTERM)
        try writeFile(go, [])
        expectBytes(try client.receive(lines: 1, timeout: .seconds(10)), wire(Reply.return("{}")), "the reply to the request in progress")
        #expect(agent.waitForExit(timeout: .seconds(10)), "the agent did not exit after SIGTERM")
        #expect(agent.statusText == "exit status 0")
    }

    @Test("Signals that need no handler (SIGCHLD storms, SIGPIPE, SIGWINCH, SIGURG, SIGCONT) change nothing")
    func harmlessSignalsDuringRequests() throws {
        try withAgent { agent in
            let session = try Session(agent)
            let pid = try session.start(ExecRequest.exec("/bin/sh", ["-c", "sleep 0.5; echo done"], capture: "true"))
            let client = try agent.connect(after: session)
            let signals = [SIGCHLD, SIGPIPE, SIGWINCH, SIGURG, SIGCONT]
            let count = 2000
            try client.send((0..<count).map { Request.sync($0) }.joined())
            for index in 0..<20_000 { kill(agent.pid, signals[index % signals.count]) }
            let expected = (0..<count).map { Reply.return("\($0)") }.joined()
            expectBytes(try client.receive(lines: count, timeout: .seconds(60)), Bytes(expected.utf8), "replies during the storm")
            client.close()
            let again = try Session(agent)
            #expect(try again.waitForExit(pid) == #"{"return": {"exitcode": 0, "out-data": "ZG9uZQo=", "out-truncated": false, "exited": true}}"#)
        }
    }

}

private func expectSameDescriptors(_ after: [String], _ before: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(after == before, "new: \(after.filter { !before.contains($0) }), gone: \(before.filter { !after.contains($0) }) of \(before)",
            sourceLocation: sourceLocation)
}

/// `qga.state` holding `counter` as the next handle.
private func counterFile(_ counter: Int) -> Bytes { Bytes("[global]\nfd_counter=\(counter)\n".utf8) }

/// A launcher that gives the agent a private mount namespace with a 64 KiB
/// tmpfs at DIR/small (gone when the agent is).
private func smallFilesystem(_ directory: String) -> [String] {
    let script = #"mkdir -p "$1/small" && mount -t tmpfs -o size=64k tmpfs "$1/small" && shift && exec "$@""#
    return ["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh", directory]
}

extension Agent {
    /// A path of DIR/small as the agent sees it.
    func inSmall(_ name: String) -> String { "/proc/\(pid)/root\(directory)/small/\(name)" }

    /// The agent's qga.state on its small filesystem.
    var stateFile: Bytes? { readFile(inSmall("qga.state")) }

    /// Fills the small filesystem with a file of `name`; its path.
    func fill(_ name: String) throws -> String {
        let path = "/proc/\(pid)/root\(directory)/\(name)"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HarnessError("open \(path): \(errnoText())") }
        defer { close(fd) }
        let block = Bytes(repeating: 0x55, count: 4096)
        while write(fd, block, block.count) > 0 {}
        guard errno == ENOSPC else { throw HarnessError("filling \(path): \(errnoText())") }
        return path
    }

    /// Remounts DIR/small `ro` or `rw` inside the agent's namespace.
    func remountSmall(_ mode: String) throws {
        let result = try run(["/usr/bin/nsenter", "-t", "\(pid)", "-m", "mount", "-o", "remount,\(mode)", directory + "/small"])
        guard result.status == 0 else { throw HarnessError("remount \(mode): \(result.output)") }
    }

    /// The agent's open descriptors: what each refers to.
    var descriptors: [String] {
        let directory = "/proc/\(pid)/fd"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + $0) }
            .map { $0.hasPrefix("socket:") || $0.hasPrefix("pipe:") ? String($0.prefix { $0 != ":" }) : $0 }.sorted()
    }

    /// A second client once `session`'s has left (one client at a time).
    func connect(after session: Session) throws -> Connection {
        session.connection.close()
        return try connect()
    }
}

extension NeedsSystem {
    /// The fault tests that mount a small filesystem in a private namespace
    /// (root), or compare with the reference qemu-ga 7.2.
    @Suite("Faults: full and read-only filesystems (root), the signals that end 7.2") struct FaultTestsNeedingSystem {
        @Test("The state file's filesystem is full: guest-file-open fails, the committed counter stays, no handle is reused")
        func stateFileOnAFullFilesystem() throws {
            let agent = try Agent(.ours, extraArguments: ["-t", "$DIR/small"], launcher: smallFilesystem)
            defer { agent.finish() }
            let session = try Session(agent)
            let first = try session.handle("/dev/null", mode: "r")
            #expect(agent.stateFile == counterFile(first + 1))

            let filler = try agent.fill("small/filler")
            #expect(try session.ask(FileRequest.open("/dev/null", "r")) + "\n" == FaultTests.commitFailed)
            #expect(agent.stateFile == counterFile(first + 1), "the state acknowledged before the failure changed")
            #expect(try session.ask(Request.ping) + "\n" == Reply.pong)

            unlink(filler)
            let second = try session.handle("/dev/null", mode: "r")
            #expect(second > first)
            #expect(agent.stateFile == counterFile(second + 1))
            #expect(agent.output.contains(Bytes("failed to write persistent state to".utf8)), "no critical line: \(agent.log)")
            for handle in [first, second] { #expect(try session.ask(FileRequest.close(handle)) == #"{"return": {}}"#) }
        }

        @Test("The state file's filesystem turns read-only: guest-file-open fails until it is writable again")
        func stateFileOnAReadOnlyFilesystem() throws {
            let agent = try Agent(.ours, extraArguments: ["-t", "$DIR/small"], launcher: smallFilesystem)
            defer { agent.finish() }
            let session = try Session(agent)
            let first = try session.handle("/dev/null", mode: "r")
            try agent.remountSmall("ro")
            #expect(try session.ask(FileRequest.open("/dev/null", "r")) + "\n" == FaultTests.commitFailed)
            #expect(try session.ask(FileRequest.open("$DIR/small/new", "w"))
                == #"{"error": {"class": "GenericError", "desc": "failed to open file '$DIR/small/new' (mode: 'w'): Read-only file system"}}"#)
            #expect(agent.stateFile == counterFile(first + 1))
            try agent.remountSmall("rw")
            let second = try session.handle("$DIR/small/new", mode: "w")
            #expect(second > first)
            #expect(agent.stateFile == counterFile(second + 1))
            for handle in [first, second] { #expect(try session.ask(FileRequest.close(handle)) == #"{"return": {}}"#) }
        }

        @Test("A guest file's filesystem fills up: the write or flush fails, flushed data stays, the agent goes on")
        func guestFileOnAFullFilesystem() throws {
            let agent = try Agent(.ours, launcher: smallFilesystem)
            defer { agent.finish() }
            let session = try Session(agent)
            let handle = try session.handle("$DIR/small/data", mode: "w")
            let acknowledged = garbage(seed: 1, count: 16 << 10)
            #expect(try session.ask(FileRequest.write(handle, bytes: acknowledged)) == #"{"return": {"count": 16384, "eof": false}}"#)
            #expect(try session.ask(FileRequest.flush(handle)) == #"{"return": {}}"#)

            // 128 KiB cannot fit: stdio writes what fits, then the write or the
            // flush reports the failure.
            let write = try session.ask(FileRequest.write(handle, bytes: garbage(seed: 2, count: 128 << 10)))
            let flush = try session.ask(FileRequest.flush(handle))
            let failures = [write, flush].filter { $0.contains("No space left on device") }
            #expect(!failures.isEmpty, "neither the write nor the flush failed: \(write) \(flush)")
            for reply in [write, flush] where !failures.contains(reply) {
                #expect(reply.hasPrefix(#"{"return": "#), "\(reply)")
            }
            _ = try session.ask(FileRequest.close(handle))
            let written = readFile(agent.inSmall("data")) ?? []
            #expect(Bytes(written.prefix(acknowledged.count)) == acknowledged, "flushed data lost")
            #expect(try session.ask(Request.ping) + "\n" == Reply.pong)
        }

        @Test("SIGHUP, SIGUSR1, SIGUSR2 and SIGALRM end the agent as they end qemu-ga (no handler); the committed state stays",
              arguments: [SIGHUP, SIGUSR1, SIGUSR2, SIGALRM])
        func terminatingSignals(_ signal: Int32) throws {
            for kind in [AgentBinary.ours, .reference] {
                let agent = try Agent(kind)
                defer { agent.finish(expectRunning: false) }
                let session = try Session(agent)
                let handle = try session.handle("/dev/null", mode: "r")
                kill(agent.pid, signal)
                #expect(agent.waitForExit(timeout: .seconds(10)), "\(kind) survived signal \(signal)")
                #expect(agent.statusText == "killed by signal \(signal)", "\(kind)")
                #expect(readFile(agent.directory + "/qga.state") == counterFile(handle + 1), "\(kind)")
            }
        }
    }
}

import Glibc
import QMPJSON
import Testing
@testable import GuestAgent

// guest-exec and guest-exec-status through the dispatcher, with the GLib
// loop driven by the test. (The integration tests cover the capture modes,
// input, environment and the reference's answers on the real binary.)

private func exec(_ path: String, _ arguments: [String] = [], extra: String = "") -> String {
    let list = arguments.map { "\"\($0)\"" }.joined(separator: ",")
    return #"{"execute":"guest-exec","arguments":{"path":"\#(path)","arg":[\#(list)]\#(extra)}}"#
}

private func status(_ pid: Int64) -> String { #"{"execute":"guest-exec-status","arguments":{"pid":\#(pid)}}"# }

@Suite("guest-exec") @MainActor
struct ExecCommandTests {
    /// Starts a child and drives the loop until the agent counts it as exited.
    private func runToExit(_ client: CommandClient, _ request: String) -> Int64 {
        let pid = client.value(request)["pid"]?.int ?? -1
        let exited = drive(for: 10) { client.agent.guestProcesses.find(pid)?.hasExited ?? true }
        #expect(exited, "child \(pid) of \(request) did not exit")
        return pid
    }

    @Test("The agent answers at once; the status says exited only after the child and its pipes are done")
    func asynchronous() {
        let client = CommandClient(GAState(system: .host()))
        let pid = client.value(exec("/bin/sh", ["-c", "read line; echo \\\"$line\\\""],
                                    extra: #","input-data":"aGVsbG8K","capture-output":true"#))["pid"]?.int ?? -1
        #expect(client.ask(status(pid)) == #"{"return": {"exited": false}}"#)
        #expect(drive(for: 10) { client.agent.guestProcesses.find(pid)?.hasExited == true })
        #expect(client.ask(status(pid)) == #"{"return": {"exitcode": 0, "out-data": "aGVsbG8K", "out-truncated": false, "exited": true}}"#)
        #expect(client.ask(status(pid)) == errorReply("Invalid parameter 'pid'"))
    }

    @Test("Finished records beyond the limit are forgotten, oldest first; running children never are")
    func finishedRecordsAreBounded() {
        let agent = GAState(system: .host())
        agent.guestProcesses = GuestProcesses(log: agent.log, finishedLimit: 3)
        let client = CommandClient(agent)
        let longRunning = client.value(exec("/bin/sleep", ["30"]))["pid"]?.int ?? -1
        let finished = (0..<5).map { index in runToExit(client, exec("/bin/sh", ["-c", "exit \(index)"])) }
        for pid in finished.prefix(2) {
            #expect(client.ask(status(pid)) == errorReply("Invalid parameter 'pid'"))
        }
        for (index, pid) in finished.enumerated().dropFirst(2) {
            #expect(client.ask(status(pid)) == #"{"return": {"exitcode": \#(index), "exited": true}}"#)
        }
        #expect(client.ask(status(longRunning)) == #"{"return": {"exited": false}}"#)
        kill(pid_t(longRunning), SIGKILL)
        #expect(drive(for: 10) { agent.guestProcesses.find(longRunning)?.hasExited == true })
        #expect(client.ask(status(longRunning)) == #"{"return": {"signal": 9, "exited": true}}"#)
    }

    @Test("Many children at once, each reported once")
    func manyChildren() {
        let client = CommandClient(GAState(system: .host()))
        let pids = (0..<60).map { index in
            client.value(exec("/bin/sh", ["-c", "echo \(index); echo e\(index) >&2; exit \(index % 7)"],
                              extra: #","capture-output":"separated""#))["pid"]?.int ?? -1
        }
        #expect(Set(pids).count == 60)
        #expect(drive(for: 20) { pids.allSatisfy { client.agent.guestProcesses.find($0)?.hasExited == true } })
        for (index, pid) in pids.enumerated() {
            let out = Base64.encode(Array("\(index)\n".utf8)), err = Base64.encode(Array("e\(index)\n".utf8))
            #expect(client.ask(status(pid)) == #"{"return": {"exitcode": \#(index % 7), "err-data": "\#(err)", "out-data": "\#(out)", "err-truncated": false, "out-truncated": false, "exited": true}}"#)
        }
    }

    @Test("The output budget: what does not fit is discarded and marked; a poll and a dropped record give it back")
    func outputBudget() {
        let agent = GAState(system: .host())
        agent.guestProcesses = GuestProcesses(log: agent.log, finishedLimit: 1, outputBudget: 100_000)
        let processes = agent.guestProcesses
        let client = CommandClient(agent)
        let capture = #","capture-output":true"#
        let first = runToExit(client, exec("/bin/sh", ["-c", "head -c 150000 /dev/zero"], extra: capture))
        #expect(processes.budgetLeft == 0)
        let second = runToExit(client, exec("/bin/sh", ["-c", "echo lost; exit 4"], extra: capture))
        // The second's exit drops the first's record (limit 1), and its bytes with it.
        #expect(processes.budgetLeft == 100_000)
        #expect(client.ask(status(first)) == errorReply("Invalid parameter 'pid'"))
        #expect(client.ask(status(second)) == #"{"return": {"exitcode": 4, "out-data": "", "out-truncated": true, "exited": true}}"#)
        let third = runToExit(client, exec("/bin/sh", ["-c", "head -c 50000 /dev/zero"], extra: capture))
        // The memory held is the bytes kept, give or take the last 64 KiB piece.
        #expect((50_000..<50_000 + (64 << 10)).contains(100_000 - processes.budgetLeft))
        let zeros = Base64.encode([UInt8](repeating: 0, count: 50_000))
        #expect(client.ask(status(third)) == #"{"return": {"exitcode": 0, "out-data": "\#(zeros)", "out-truncated": false, "exited": true}}"#)
        #expect(processes.budgetLeft == 100_000)
    }
}

/// `exec-allow`: a scratch directory with `bin/` (the pattern is
/// `<scratch>/bin/*`) and `other/`; each program prints its `$0` (for a
/// script, the file the kernel ran) and leaves a mark that it ran.
@Suite("guest-exec with exec-allow") @MainActor
struct ExecAllowTests {
    private final class Machine {
        let scratch = ScratchDirectory()
        let client: CommandClient
        var bin: String { scratch.path + "/bin" }
        var other: String { scratch.path + "/other" }

        init(patterns: [String]? = nil) {
            for directory in ["bin", "other"] { mkdir(scratch.file(directory), 0o755) }
            for program in ["bin/prog", "other/evil"] {
                writeBytes(scratch.file(program), Array("#!/bin/sh\necho \"$0\"\ntouch '\(scratch.path)/ran'\n".utf8))
                chmod(scratch.file(program), 0o755)
            }
            var config = GAConfig()
            config.execAllow = patterns ?? [scratch.path + "/bin/*"]
            client = CommandClient(GAState(config: config, system: .host()))
        }

        isolated deinit { scratch.remove() }

        /// The output of a program that was allowed.
        func output(_ request: String, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
            let pid = client.value(request, sourceLocation: sourceLocation)["pid"]?.int ?? -1
            #expect(drive(for: 10) { client.agent.guestProcesses.find(pid)?.hasExited ?? true }, sourceLocation: sourceLocation)
            return client.value(status(pid), sourceLocation: sourceLocation)["out-data"]?.base64Text
        }

        /// Refused, and nothing ran.
        func refused(_ path: String, env: [String]? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
            let environment = env.map { #","env":[\#($0.map { "\"\($0)\"" }.joined(separator: ","))]"# } ?? ""
            #expect(client.ask(exec(path, extra: environment + #","capture-output":true"#), sourceLocation: sourceLocation)
                == errorReply("Program '\(path)' is not allowed by exec-allow"), sourceLocation: sourceLocation)
            #expect(access(scratch.file("ran"), F_OK) != 0, "\(path) ran", sourceLocation: sourceLocation)
        }
    }

    @Test("An allowed program runs: the checked canonical file, with argv[0] as sent")
    func allowed() throws {
        let machine = Machine()
        #expect(machine.output(exec(machine.bin + "/prog", extra: #","capture-output":true"#)) == machine.bin + "/prog\n")
        #expect(machine.output(exec(machine.other + "/../bin/prog", extra: #","capture-output":true"#)) == machine.bin + "/prog\n")
        // Found through the request's PATH; the kernel ran the file that was checked.
        #expect(machine.output(exec("prog", extra: #","env":["PATH=/nonexistent:\#(machine.bin)"],"capture-output":true"#))
            == machine.bin + "/prog\n")
        // A link in an allowed directory to an allowed file runs that file...
        symlink("prog", machine.bin + "/alias")
        #expect(machine.output(exec(machine.bin + "/alias", extra: #","capture-output":true"#)) == machine.bin + "/prog\n")
        // ...under the name the host sent: a shell reports its argv[0].
        let shell = try #require(realpath("/bin/sh", nil))
        defer { free(shell) }
        let sh = Machine(patterns: [String(cString: shell)])
        #expect(sh.output(exec("sh", ["-c", "echo $0"], extra: #","capture-output":true"#)) == "sh\n")
    }

    @Test("Anything else is refused and nothing is started")
    func refused() {
        let machine = Machine()
        machine.refused(machine.other + "/evil")
        machine.refused(machine.bin + "/../other/evil")
        machine.refused(machine.bin + "/missing")
        machine.refused("/bin/sh")
        // Found through PATH, but outside the patterns.
        machine.refused("evil", env: ["PATH=\(machine.other):\(machine.bin)"])
        machine.refused("prog", env: ["PATH=/nonexistent"])
        // A link in the allowed directory to a program outside it.
        symlink(machine.other + "/evil", machine.bin + "/link")
        machine.refused(machine.bin + "/link")
        machine.refused("link", env: ["PATH=\(machine.bin)"])
        // A linked directory on the way.
        symlink(machine.other, machine.bin + "/dir")
        machine.refused(machine.bin + "/dir/evil")
        // An empty list allows nothing.
        Machine(patterns: []).refused(machine.bin + "/prog")
    }
}

/// `exec-timeout`: children still running after it are killed with SIGKILL.
@Suite("guest-exec with exec-timeout") @MainActor
struct ExecTimeoutTests {
    private func client(timeout: Int?) -> CommandClient {
        var config = GAConfig()
        config.execTimeout = timeout
        return CommandClient(GAState(config: config, system: .host()))
    }

    private func finalStatus(_ client: CommandClient, _ pid: Int64, within seconds: Double = 20) -> String {
        #expect(drive(for: seconds) { client.agent.guestProcesses.find(pid)?.hasExited ?? true }, "child \(pid) still running")
        return client.ask(status(pid))
    }

    @Test("Killed after the timeout: signal 9 and the output captured so far")
    func killed() {
        let client = client(timeout: 1)
        let pid = client.value(exec("/bin/sh", ["-c", "echo before; echo error >&2; exec sleep 30"],
                                    extra: #","capture-output":true"#))["pid"]?.int ?? -1
        #expect(client.ask(status(pid)) == #"{"return": {"exited": false}}"#)
        let out = Base64.encode(Array("before\n".utf8)), err = Base64.encode(Array("error\n".utf8))
        #expect(finalStatus(client, pid)
            == returnLine(#"{"exited": true, "signal": 9, "out-data": "\#(out)", "err-data": "\#(err)", "out-truncated": false, "err-truncated": false}"#))
    }

    @Test("A grandchild holding the output pipe does not keep a killed child's record running")
    func grandchildHoldsThePipe() {
        let client = client(timeout: 1)
        let pid = client.value(exec("/bin/sh", ["-c", "sleep 30 & echo started; wait"],
                                    extra: #","capture-output":true"#))["pid"]?.int ?? -1
        let out = Base64.encode(Array("started\n".utf8))
        #expect(finalStatus(client, pid, within: 10)
            == returnLine(#"{"exited": true, "signal": 9, "out-data": "\#(out)", "out-truncated": false}"#))
    }

    @Test("Children that end in time, and every child without a timeout, are left alone", arguments: [nil, 0, 30])
    func notKilled(timeout: Int?) {
        let client = client(timeout: timeout)
        let quick = client.value(exec("/bin/sh", ["-c", "exit 3"]))["pid"]?.int ?? -1
        #expect(finalStatus(client, quick) == #"{"return": {"exitcode": 3, "exited": true}}"#)
        let slow = client.value(exec("/bin/sleep", ["2"]))["pid"]?.int ?? -1
        #expect(finalStatus(client, slow) == #"{"return": {"exitcode": 0, "exited": true}}"#)
    }
}

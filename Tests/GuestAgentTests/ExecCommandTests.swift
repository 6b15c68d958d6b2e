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
        let client = CommandClient(GAState())
        let pid = client.value(exec("/bin/sh", ["-c", "read line; echo \\\"$line\\\""],
                                    extra: #","input-data":"aGVsbG8K","capture-output":true"#))["pid"]?.int ?? -1
        #expect(client.ask(status(pid)) == #"{"return": {"exited": false}}"#)
        #expect(drive(for: 10) { client.agent.guestProcesses.find(pid)?.hasExited == true })
        #expect(client.ask(status(pid)) == #"{"return": {"exitcode": 0, "out-data": "aGVsbG8K", "out-truncated": false, "exited": true}}"#)
        #expect(client.ask(status(pid)) == errorReply("Invalid parameter 'pid'"))
    }

    @Test("Finished records beyond the limit are forgotten, oldest first; running children never are")
    func finishedRecordsAreBounded() {
        let agent = GAState()
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
        let client = CommandClient(GAState())
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
        let agent = GAState()
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

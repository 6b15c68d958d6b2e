#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Testing
import TestRequirements

private typealias E = ExecRequest

private func exitedWith(_ members: String) -> String { #"{"return": {\#(members)"exited": true}}"# }
private func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

/// Reaped by the agent (its own children, so not by us).
private func reaped(_ pid: Int) -> Bool { kill(pid_t(pid), 0) != 0 && errno == ESRCH }

private func waitUntilReaped(_ pids: [Int], timeout: Duration = .seconds(120)) throws {
    let deadline = ContinuousClock.now + timeout
    while !pids.allSatisfy(reaped) {
        guard ContinuousClock.now < deadline else { throw HarnessError("children \(pids.filter { !reaped($0) }) not reaped") }
        usleep(10_000)
    }
}

/// The members of a guest-exec-status reply.
private func members(_ reply: String) -> [String: Any] {
    let object = try? JSONSerialization.jsonObject(with: Data(reply.utf8)) as? [String: Any]
    return object?["return"] as? [String: Any] ?? [:]
}

/// A stream's data decoded (nil when the member is missing or not base64).
private func decoded(_ value: Any?) -> Data? { (value as? String).flatMap { Data(base64Encoded: $0) } }

/// guest-exec and guest-exec-status on the built agent and, where 7.2 has
/// the same interface (capture-output as a boolean), against the reference.
@Suite("Exec: guest-exec, guest-exec-status")
struct ExecTests {
    @Test("Every capture mode of the newest interface really works")
    func captureModes() throws {
        try withAgent { agent in
            let session = try Session(agent)
            let script = ["-c", "echo out; echo err >&2; exit 2"]
            let out = #""out-data": "\#(base64("out\n"))""#, err = #""err-data": "\#(base64("err\n"))""#
            let expectations = [
                ("\"none\"", exitedWith(#""exitcode": 2, "#)),
                ("false", exitedWith(#""exitcode": 2, "#)),
                ("\"stdout\"", exitedWith(#""exitcode": 2, \#(out), "out-truncated": false, "#)),
                ("\"stderr\"", exitedWith(#""exitcode": 2, \#(err), "err-truncated": false, "#)),
                ("\"separated\"", exitedWith(#""exitcode": 2, \#(err), \#(out), "err-truncated": false, "out-truncated": false, "#)),
                ("true", exitedWith(#""exitcode": 2, \#(err), \#(out), "err-truncated": false, "out-truncated": false, "#)),
                ("\"merged\"", exitedWith(#""exitcode": 2, "out-data": "\#(base64("out\nerr\n"))", "out-truncated": false, "#)),
            ]
            for (mode, expected) in expectations {
                #expect(try session.run(E.exec("/bin/sh", script, capture: mode)) == expected, "capture-output \(mode)")
            }
            // A mode whose stream stays silent has no data member.
            #expect(try session.run(E.exec("/bin/sh", ["-c", "echo err >&2"], capture: "\"stdout\"")) == exitedWith(#""exitcode": 0, "#))
            #expect(try session.ask(E.exec("/bin/true", capture: "\"all\""))
                == #"{"error": {"class": "GenericError", "desc": "Parameter 'capture-output' does not accept value 'all'"}}"#)
            #expect(try session.ask(E.exec("/bin/true", capture: "1"))
                == #"{"error": {"class": "GenericError", "desc": "Invalid parameter type for 'capture-output', expected: GuestExecCaptureOutput"}}"#)
        }
    }

    @Test("exited waits for a grandchild that holds the output pipe, not only for the child")
    func grandchildHoldsThePipe() throws {
        try withAgent { agent in
            let session = try Session(agent)
            let pid = try session.start(E.exec("/bin/sh", ["-c", "sleep 2 & echo started"], capture: "true"))
            // The shell ends at once and is reaped...
            try waitUntilReaped([pid], timeout: .seconds(10))
            // ...but its sleeping child still has the pipe.
            #expect(try session.ask(E.status(pid)) == #"{"return": {"exited": false}}"#)
            #expect(try session.waitForExit(pid)
                == exitedWith(#""exitcode": 0, "out-data": "\#(base64("started\n"))", "out-truncated": false, "#))
        }
    }

    @Test("Input is fed from the main loop: the agent answers while a child does not read it")
    func inputDoesNotBlock() throws {
        try withAgent { agent in
            let session = try Session(agent)
            let input = Data(garbage(seed: 9, count: 4 << 20)).base64EncodedString()
            let sleeper = try session.start(E.exec("/bin/sleep", ["1"], input: input))
            #expect(try session.ask(Request.ping) == #"{"return": {}}"#)
            #expect(try session.ask(E.status(sleeper)) == #"{"return": {"exited": false}}"#)
            _ = try session.waitForExit(sleeper)
            // And a child that reads it all gets it all.
            let reply = try session.run(E.exec("/usr/bin/sha256sum", input: input, capture: "true"))
            let digest = try session.run(E.exec("/bin/sh", ["-c", "base64 -d | sha256sum"], input: base64(input), capture: "true"))
            #expect(reply == digest)
        }
    }

    @Test("Many children at once, each reported once")
    func manyChildren() throws {
        try withAgent { agent in
            let session = try Session(agent)
            let pids = try (0..<100).map { index in
                try session.start(E.exec("/bin/sh", ["-c", "echo \(index); exit \(index % 5)"], capture: "true"))
            }
            for (index, pid) in pids.enumerated() {
                #expect(try session.waitForExit(pid) == exitedWith(
                    #""exitcode": \#(index % 5), "out-data": "\#(base64("\(index)\n"))", "out-truncated": false, "#))
                #expect(try session.ask(E.status(pid)) == #"{"error": {"class": "GenericError", "desc": "Invalid parameter 'pid'"}}"#)
            }
        }
    }

    @Test("At most 1024 finished children wait to be asked about; the oldest goes first")
    func finishedRecordCap() throws {
        try withAgent { agent in
            let session = try Session(agent)
            let oldest = try session.start(E.exec("/bin/true"))
            try waitUntilReaped([oldest])
            let rest = try (0..<1024).map { _ in try session.start(E.exec("/bin/true")) }
            try waitUntilReaped(rest, timeout: .seconds(60))
            #expect(try session.ask(E.status(oldest)) == #"{"error": {"class": "GenericError", "desc": "Invalid parameter 'pid'"}}"#)
            for pid in [rest.first!, rest[500], rest.last!] {
                #expect(try session.ask(E.status(pid)) == exitedWith(#""exitcode": 0, "#))
            }
        }
    }

    @Test("32 children writing 16 MiB to stdout and 16 MiB to stderr, nobody polling: the default budget keeps the agent under 300 MiB, exit codes real")
    func outputBudgetBoundsMemory() throws {
        try withAgent { agent in
            let session = try Session(agent)
            let pids = try (0..<32).map { index in
                try session.start(E.exec("/bin/sh", ["-c", "head -c 16777216 /dev/zero; head -c 16777216 /dev/zero >&2; exit \(index % 8)"],
                                         capture: "true"))
            }
            try waitUntilReaped(pids)
            // (qemu-ga 7.2 and we without the budget: over 1 GiB.)
            if !builtWithAddressSanitizer {
                #expect(agent.peakResidentKiB < 300 << 10, "VmHWM \(agent.peakResidentKiB) KiB")
            }
            var kept = 0
            for (index, pid) in pids.enumerated() {
                let status = members(try session.waitForExit(pid))
                #expect(status["exitcode"] as? Int == index % 8, "child \(index): \(status.keys)")
                for stream in ["out", "err"] {
                    // (Data's == compares at memory speed, a debug build's allSatisfy does not.)
                    let data = decoded(status["\(stream)-data"]) ?? Data()
                    #expect(data == Data(count: data.count))
                    #expect(status["\(stream)-truncated"] as? Bool == (data.count < 16 << 20), "child \(index) \(stream): \(data.count) bytes")
                    kept += data.count
                }
            }
            // Spent to its end, every stream at most its last 64 KiB piece short.
            #expect(kept <= 256 << 20 && kept > (256 << 20) - 64 * (64 << 10), "\(kept) bytes kept")
            if !builtWithAddressSanitizer {
                #expect(agent.residentKiB < 300 << 10, "VmRSS \(agent.residentKiB) KiB after the polls")
            }
        }
    }

    // MARK: Beyond qemu-ga

    /// `$DIR/bin/prog` and `$DIR/other/evil` print their `$0` and leave a
    /// mark that they ran; `$DIR/bin/link` leads to `evil`, `$DIR/bin/dir`
    /// to `$DIR/other`.
    static func preparePrograms(_ directory: String) throws {
        for name in ["bin", "other"] { try makeDirectory(directory + "/" + name) }
        for program in ["bin/prog", "other/evil"] {
            try writeFile(directory + "/" + program, Bytes("#!/bin/sh\necho \"$0\"\necho > \"\(directory)/ran\"\n".utf8))
            chmod(directory + "/" + program, 0o755)
        }
        symlink(directory + "/other/evil", directory + "/bin/link")
        symlink(directory + "/other", directory + "/bin/dir")
    }

    @Test("--exec-allow: the canonical program must match; links, `..` and PATH lead nowhere else")
    func execAllow() throws {
        try withAgent(extraArguments: ["--exec-allow=$DIR/bin/*"], prepare: Self.preparePrograms) { agent in
            let session = try Session(agent)
            // The file that was checked runs, also when found through PATH.
            let ran = exitedWith(#""exitcode": 0, "out-data": "\#(base64(agent.directory + "/bin/prog\n"))", "out-truncated": false, "#)
            #expect(try session.run(E.exec("$DIR/bin/prog", capture: "true")) == ran)
            #expect(try session.run(E.exec("prog", env: ["PATH=$DIR/other:$DIR/bin"], capture: "true")) == ran)
            unlink(agent.directory + "/ran")
            for (path, env) in [("$DIR/other/evil", nil), ("$DIR/bin/link", nil), ("$DIR/bin/dir/evil", nil),
                                ("$DIR/bin/../other/evil", nil), ("link", ["PATH=$DIR/bin"]), ("evil", ["PATH=$DIR/bin:$DIR/other"]),
                                ("/bin/sh", nil), ("$DIR/bin/missing", nil)] as [(String, [String]?)] {
                #expect(try session.ask(E.exec(path, ["-c", "echo > $DIR/ran"], env: env))
                    == #"{"error": {"class": "GenericError", "desc": "Program '\#(path)' is not allowed by exec-allow"}}"#)
            }
            #expect(!fileExists(agent.directory + "/ran"), "a refused program ran")
        }
    }

    @Test("--exec-timeout: a child still running is killed (signal 9, the output so far); others are not")
    func execTimeout() throws {
        try withAgent(extraArguments: ["--exec-timeout=1"]) { agent in
            let session = try Session(agent)
            let slow = try session.start(E.exec("/bin/sh", ["-c", "echo started; exec sleep 30"], capture: "true"))
            let quick = try session.start(E.exec("/bin/sh", ["-c", "exit 4"]))
            #expect(try session.waitForExit(slow, timeout: .seconds(20))
                == exitedWith(#""out-data": "\#(base64("started\n"))", "signal": 9, "out-truncated": false, "#))
            #expect(try session.waitForExit(quick) == exitedWith(#""exitcode": 4, "#))
        }
    }
}

extension NeedsSystem {
    /// The exec tests that need the reference qemu-ga 7.2, or root for the
    /// syslog launcher.
    @Suite("Exec: the same outcomes as 7.2, and syslog (root)") struct ExecTestsNeedingSystem {
        /// Runs each request to its end on both agents; the final status lines
        /// (and spawn errors) must be the same.
        private func expectSameOutcomes(_ requests: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
            try withBothAgents(sourceLocation: sourceLocation) { ours, reference in
                let theirs = try Session(reference), mine = try Session(ours)
                for request in requests {
                    let expected = try outcome(theirs, request), actual = try outcome(mine, request)
                    #expect(actual == expected, "\(request)", sourceLocation: sourceLocation)
                }
            }
        }

        /// The final status, or the error reply of guest-exec itself; plus the
        /// reply to asking once more.
        private func outcome(_ session: Session, _ request: String) throws -> [String] {
            let reply = try session.ask(request)
            guard let pid = (try JSONSerialization.jsonObject(with: Data(reply.utf8)) as? [String: Any])
                .flatMap({ $0["return"] as? [String: Any] })?["pid"] as? Int else { return [reply] }
            return [try session.waitForExit(pid), try session.ask(E.status(pid))]
        }

        @Test("Same as 7.2: exit codes, output, input, environment, PATH search, signals, errors")
        func sameAsReference() throws {
            try expectSameOutcomes([
                E.exec("/bin/echo", ["hello", "world"], capture: "true"),
                E.exec("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"], capture: "true"),
                E.exec("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"]),
                E.exec("/bin/sh", ["-c", "echo out; exit 4"], capture: "false"),
                E.exec("/bin/sh", ["-c", "exit 0"], capture: "true"),
                E.exec("/bin/cat", input: base64("from stdin\n"), capture: "true"),
                E.exec("/bin/cat", input: "", capture: "true"),
                E.exec("/bin/cat", capture: "true"),
                E.exec("/bin/cat", input: "QQ ==", capture: "true"),
                E.exec("/usr/bin/env", env: ["FOO=bar", "X=1"], capture: "true"),
                E.exec("/usr/bin/env", env: [], capture: "true"),
                E.exec("echo", ["found", "in", "PATH"], capture: "true"),
                E.exec("echo", ["default", "path"], env: ["FOO=bar"], capture: "true"),
                E.exec("echo", ["nowhere"], env: ["PATH=/nonexistent"], capture: "true"),
                E.exec("sh", ["-c", "echo $PATH"], env: ["PATH=/bin"], capture: "true"),
                E.exec("/bin/sh", ["-c", "kill -TERM $$"], capture: "true"),
                E.exec("/bin/sh", ["-c", "echo partial; kill -KILL $$"], capture: "true"),
                E.exec("/nonexistent/prog"),
                E.exec("/etc/passwd"),
                E.exec("/tmp"),
                E.exec("/bin/sh", ["-c", "trap '' PIPE; yes | head -c 10"], capture: "true"),
                E.exec("/bin/sh", ["-c", "printf '\\001\\377\\000x'"], capture: "true"),
                E.exec("/bin/sh", ["-c", "cd; pwd"], env: ["HOME=/"], capture: "true"),
                E.exec("/bin/sh", ["-c", "exit 255"]),
                #"{"execute":"guest-exec","arguments":{"arg":["x"]}}"#,
                #"{"execute":"guest-exec","arguments":{"path":"/bin/echo","arg":"x"}}"#,
                #"{"execute":"guest-exec","arguments":{"path":"/bin/echo","env":[1]}}"#,
                #"{"execute":"guest-exec","arguments":{"path":"/bin/echo","extra":1}}"#,
                E.status(1), E.status(-1), #"{"execute":"guest-exec-status","arguments":{"pid":"1"}}"#,
                #"{"execute":"guest-exec-status"}"#,
            ])
        }

        @Test("Same as 7.2: a child inherits no descriptor of the agent but 0, 1 and 2")
        func noDescriptorLeaks() throws {
            try withBothAgents { ours, reference in
                var listings: [String] = []
                for agent in [reference, ours] {
                    let session = try Session(agent)
                    _ = try session.handle("$DIR/open-file", mode: "w")
                    // A second child running meanwhile, with pipes of its own.
                    let other = try session.start(E.exec("/bin/sleep", ["1"], input: base64("x"), capture: "true"))
                    listings.append(try session.run(E.exec("/bin/ls", ["/proc/self/fd"], capture: "true")))
                    _ = try session.waitForExit(other)
                }
                #expect(listings[1] == listings[0])
                #expect(listings[1] == exitedWith(#""exitcode": 0, "out-data": "\#(base64("0\n1\n2\n3\n"))", "out-truncated": false, "#))
            }
        }

        @Test("Same as 7.2: output is kept up to 16 MiB per stream, and the rest is marked truncated")
        func captureLimit() throws {
            try withBothAgents { ours, reference in
                let sessions = [try Session(reference), try Session(ours)]
                for bytes in [16_777_216, 17_000_000] {
                    var replies: [String] = []
                    for session in sessions {
                        replies.append(try session.run(E.exec("/bin/sh", ["-c", "head -c \(bytes) /dev/zero; head -c \(bytes) /dev/zero >&2"],
                                                              capture: "true")))
                    }
                    let same = replies[0] == replies[1]
                    #expect(same, "\(bytes) bytes: ours \(replies[1].prefix(100))… differs from 7.2's \(replies[0].prefix(100))…")
                    #expect(replies[1].hasSuffix(#""err-truncated": \#(bytes > 16_777_216), "out-truncated": \#(bytes > 16_777_216), "exited": true}}"#))
                    let decoded = readData(replies[1].replacing(#""out-data""#, with: #""buf-b64""#))
                    #expect(decoded == Bytes(repeating: 0, count: 16_777_216))
                }
            }
        }

        /// Better (`exec-output-budget`): one budget for the output of all
        /// children not yet handed to the host.
        @Test("--exec-output-budget=1: what does not fit is discarded and marked, the kept prefix is exact, a poll gives it back, syslog says so once per child")
        func outputBudget() throws {
            let (agent, listener) = try DaemonSyslogTests.start(.ours, ["--exec-output-budget=1"])
            defer { agent.finish() }
            let session = try Session(agent)
            // 1.9 MB on stdout, then the same on stderr: stdout alone fills the
            // budget (seq ends only once the agent has read all but a pipe's worth).
            let first = try session.start(E.exec("/bin/sh", ["-c", "seq 300000; seq 300000 >&2; exit 3"], capture: "true"))
            try waitUntilReaped([first])
            // Nothing is left for the next child, which still runs to its end.
            let second = try session.start(E.exec("/bin/sh", ["-c", "echo hello; exit 5"], capture: "true"))
            #expect(try session.waitForExit(second) == exitedWith(#""exitcode": 5, "out-data": "", "out-truncated": true, "#))
            let status = members(try session.waitForExit(first))
            #expect(status["exitcode"] as? Int == 3 && status["out-truncated"] as? Bool == true && status["err-truncated"] as? Bool == true)
            let written = Bytes((1...300_000).map { "\($0)\n" }.joined().utf8)
            #expect(decoded(status["out-data"]) == Data(written.prefix(1 << 20)))
            #expect(decoded(status["err-data"]) == Data())
            // Polled, its MiB is free again.
            #expect(try session.run(E.exec("/bin/sh", ["-c", "echo hello"], capture: "true"))
                == exitedWith(#""exitcode": 0, "out-data": "\#(base64("hello\n"))", "out-truncated": false, "#))
            let budgetLines = listener.drain().compactMap { SyslogRecord($0)?.message }.filter { $0.hasPrefix("info: exec-output-budget") }
            #expect(budgetLines == [first, second].map { "info: exec-output-budget (1 MiB) is full: discarding output of guest-exec child \($0)" })
        }

        /// With every program allowed, what runs is what 7.2 runs: the PATH
        /// search, argv[0], environment and errors of exec are the same.
        @Test("--exec-allow='*': the same outcomes as 7.2")
        func execAllowEverything() throws {
            let reference = try Agent(.reference)
            defer { reference.finish() }
            let ours = try Agent(.ours, extraArguments: ["--exec-allow=*"])
            defer { ours.finish() }
            let theirs = try Session(reference), mine = try Session(ours)
            for request in [
                E.exec("/bin/echo", ["hello"], capture: "true"),
                E.exec("echo", ["found", "in", "PATH"], capture: "true"),
                E.exec("echo", ["default", "path"], env: ["FOO=bar"], capture: "true"),
                E.exec("sh", ["-c", "echo $0 $PATH"], env: ["PATH=/bin"], capture: "true"),
                E.exec("/usr/bin/env", env: ["X=1"], capture: "true"),
                E.exec("/bin/cat", input: base64("in\n"), capture: "true"),
                E.exec("/bin/sh", ["-c", "kill -TERM $$"], capture: "true"),
                E.exec("/etc/passwd"),
            ] {
                #expect(try outcome(mine, request) == outcome(theirs, request), "\(request)")
            }
        }
    }
}

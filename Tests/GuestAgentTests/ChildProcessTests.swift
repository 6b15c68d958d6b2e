import Glibc
import Testing
@testable import GuestAgent

/// The helper that runs a program to completion (`ChildProcess`): how the child
/// is set up, how its end is reported, and where programs are found.
@Suite struct ChildProcessTests {
    private func run(_ machine: FixtureTree, _ arguments: [String], input: [UInt8]? = nil, timeout: Int? = nil) -> QMPError? {
        do {
            try GuestAgent.ChildProcess.run(arguments, input: input, action: "do things", system: machine.system, timeout: timeout)
            return nil
        } catch {
            return error
        }
    }

    @Test func successIsSilent() throws {
        let machine = try FixtureTree()
        try machine.fake("/sbin/tool")
        #expect(run(machine, ["/sbin/tool", "a b", "c"]) == nil)
        #expect(machine.calls == ["tool a b c"])
    }

    @Test func aFailureCarriesTheOutputOrTheStatus() throws {
        let machine = try FixtureTree()
        try machine.fake("/sbin/loud", status: 1, output: "out\nerr\n")
        try machine.program("/sbin/both", "echo to-stdout; echo to-stderr >&2; exit 4")
        try machine.fake("/sbin/quiet", status: 3)
        #expect(run(machine, ["/sbin/loud"]) == QMPError("child process has failed to do things: out\nerr\n"))
        #expect(run(machine, ["/sbin/both"]) == QMPError("child process has failed to do things: to-stdout\nto-stderr\n"))
        #expect(run(machine, ["/sbin/quiet"]) == QMPError("child process has failed to do things: exit status 3"))
    }

    @Test func aSignalDeathIsAbnormal() throws {
        let machine = try FixtureTree()
        try machine.program("/sbin/killed", "kill -9 $$")
        try machine.program("/sbin/said", "echo last words; kill -TERM $$")
        #expect(run(machine, ["/sbin/killed"]) == QMPError("child process has terminated abnormally"))
        #expect(run(machine, ["/sbin/said"]) == QMPError("child process has terminated abnormally: last words\n"))
    }

    @Test func execFailuresAreReportedAsTheChildWould() throws {
        let machine = try FixtureTree()
        try machine.file("/sbin/plain", "not a program\n")
        #expect(run(machine, ["/sbin/missing", "-x"])
                    == QMPError("child process has failed to do things: failed to exec '/sbin/missing': No such file or directory\n"))
        #expect(run(machine, ["/sbin/plain"])
                    == QMPError("child process has failed to do things: failed to exec '/sbin/plain': Permission denied\n"))
        #expect(run(machine, ["missing"])
                    == QMPError("child process has failed to do things: failed to exec 'missing': No such file or directory\n"))
    }

    /// A name without a slash is searched in PATH, each directory taken
    /// inside the fixture: `true` exists on the real machine, not here.
    @Test func pathSearchStaysInsideTheSystemRoot() throws {
        let machine = try FixtureTree()
        try machine.fake("/usr/bin/tool")
        try machine.file("/sbin/tool", "shadowing, not executable\n")
        #expect(run(machine, ["tool", "x"]) == nil)
        #expect(machine.calls == ["tool x"])
        #expect(run(machine, ["true"])
                    == QMPError("child process has failed to do things: failed to exec 'true': No such file or directory\n"))
        #expect(throws: SystemError(errno: ENOENT)) { try machine.system.executable("true") }
        #expect(try machine.system.executable("tool") == machine.path("/usr/bin/tool"))
        var relative = machine.system
        relative.searchPath = ".:bin:"
        #expect(throws: SystemError(errno: ENOENT)) { try relative.executable("tool") }
        // Only unexecutable candidates: exec's EACCES.
        var onlySbin = machine.system
        onlySbin.searchPath = "/sbin"
        #expect(throws: SystemError(errno: EACCES)) { try onlySbin.executable("tool") }
    }

    @Test func theRealRootSearchesThePathAsGiven() throws {
        #expect(try SystemEnvironment.host(searchPath: "/nonexistent:/bin").executable("sh") == "/bin/sh")
        #expect(SystemEnvironment.host(searchPath: "x").path("/sbin/poweroff") == "/sbin/poweroff")
    }

    /// A new session; stdin /dev/null without input; stdout and stderr one pipe.
    @Test func theChildIsSetUpAsQemuGasIs() throws {
        let machine = try FixtureTree()
        try machine.program("/sbin/check", """
            [ "$(cut -d' ' -f6 /proc/$$/stat)" = "$$" ] || { echo not a session leader; exit 1; }
            [ "$(readlink /proc/$$/fd/0)" = /dev/null ] || { echo stdin is $(readlink /proc/$$/fd/0); exit 1; }
            [ "$(readlink /proc/$$/fd/1)" = "$(readlink /proc/$$/fd/2)" ] || { echo two pipes; exit 1; }
            case "$(readlink /proc/$$/fd/1)" in pipe:*) ;; *) echo stdout is not a pipe; exit 1;; esac
            """)
        #expect(run(machine, ["/sbin/check"]) == nil)
    }

    @Test func inputIsFedOnStdin() throws {
        let machine = try FixtureTree()
        try machine.fake("/usr/sbin/reader", input: true)
        #expect(run(machine, ["reader"], input: Array("user:secret\n".utf8)) == nil)
        #expect(machine.calls == ["reader", "reader stdin: user:secret"])
    }

    @Test func aChildThatLeavesItsInputUnreadIsAnErrorNotASignal() throws {
        let machine = try FixtureTree()
        try machine.program("/sbin/deaf", "exec 0<&-; exit 0")
        // Far more than a pipe holds: the write meets the closed pipe, and
        // this process (which set no disposition of its own) must survive it.
        let input = [UInt8](repeating: 0x61, count: 1 << 20)
        #expect(run(machine, ["/sbin/deaf"], input: input) == QMPError("do things: cannot write to stdin pipe: Broken pipe"))
    }

    @Test func theOutputStopsAtANulByteButCountsIt() throws {
        let machine = try FixtureTree()
        try machine.program("/sbin/nul", #"printf 'abc\000def'; exit 2"#)
        try machine.program("/sbin/lead", #"printf '\000rest'; exit 2"#)
        #expect(run(machine, ["/sbin/nul"]) == QMPError("child process has failed to do things: abc"))
        #expect(run(machine, ["/sbin/lead"]) == QMPError("child process has failed to do things: "))
    }

    /// With a timeout, a child that does not finish is killed with its
    /// whole session, so a grandchild holding the pipe cannot keep the
    /// agent waiting.
    @Test func aTimeoutKillsTheSession() throws {
        let machine = try FixtureTree()
        let grandchild = machine.path("/grandchild")
        try machine.program("/sbin/hang", "sleep 60 & echo $! > '\(grandchild)'\nwait")
        let started = monotonicSeconds()
        #expect(run(machine, ["/sbin/hang"], timeout: 1)
                    == QMPError("child process has failed to do things: timed out after 1 s and was killed"))
        // Not before the timeout; and not after the grandchild's 60 s either,
        // which the text and the grandchild's end below prove without a clock.
        #expect(monotonicSeconds() - started >= 0.9)
        let pid = try #require(readFile(grandchild).flatMap { pid_t($0.split(separator: "\n").first ?? "") })
        #expect(processGone(pid), "the grandchild \(pid) survived")
        // Closing its output does not get a child out of the timeout.
        try machine.program("/sbin/quiet-hang", "exec >/dev/null 2>&1\nsleep 60")
        #expect(run(machine, ["/sbin/quiet-hang"], timeout: 1)
                    == QMPError("child process has failed to do things: timed out after 1 s and was killed"))
        // A quick child is not affected.
        try machine.fake("/sbin/quick")
        #expect(run(machine, ["/sbin/quick"], timeout: 1) == nil)
    }
}

/// True when `pid` has ended (gone, or a zombie nobody reaps yet).
func processGone(_ pid: pid_t, within seconds: Double = 5) -> Bool {
    drive(for: seconds) {
        guard let stat = readFile("/proc/\(pid)/stat") else { return true }
        return stat.split(separator: ")").last?.split(separator: " ").first == "Z"
    }
}

import Glibc
import Testing
@testable import GuestAgent

/// Runs the command line with no config file unless one is given.
private func configure(_ arguments: [String], config: String? = nil) -> StartupAction {
    guard let config else {
        return AgentCommandLine.configure(arguments: ["qemu-ga"] + arguments, environment: ["QGA_CONF": "/nonexistent/qemu-ga.conf"])
    }
    let path = temporaryFile(config)
    defer { unlink(path) }
    return AgentCommandLine.configure(arguments: ["qemu-ga"] + arguments, environment: ["QGA_CONF": path])
}

private func temporaryFile(_ contents: String) -> String {
    var template = Array("/tmp/qga-test-XXXXXX".utf8CString)
    let fd = mkstemp(&template)
    let bytes = Array(contents.utf8)
    _ = write(fd, bytes, bytes.count)
    close(fd)
    return String(cString: template)
}

private func runConfig(_ action: StartupAction, sourceLocation: SourceLocation = #_sourceLocation) -> GAConfig {
    guard case .run(let config) = action else {
        Issue.record("expected to run, got \(action)", sourceLocation: sourceLocation)
        return GAConfig()
    }
    return config
}

@Suite struct CommandLineTests {
    @Test func defaultsMatchQemuGa() {
        let config = runConfig(configure([]))
        #expect(config == GAConfig())
        #expect(config.method == nil && config.path == nil && config.logFile == nil && config.fsfreezeHook == nil)
        #expect(config.pidFile == "/var/run/qemu-ga.pid" && config.stateDirectory == "/var/run")
        #expect(!config.daemonize && !config.verbose && !config.retryPath && !config.dumpConfig)
    }

    @Test func everyOptionShortAndLong() {
        var expected = GAConfig()
        expected.method = "unix-listen"
        expected.path = "/tmp/s"
        expected.logFile = "/tmp/log"
        expected.pidFile = "/tmp/pid"
        expected.fsfreezeHook = "/tmp/hook"
        expected.stateDirectory = "/tmp/state"
        expected.verbose = true
        expected.daemonize = true
        expected.blockedRPCs = ["guest-ping"]
        expected.allowedRPCs = ["guest-info"]
        expected.dumpConfig = true
        expected.retryPath = true
        #expect(runConfig(configure(["-m", "unix-listen", "-p", "/tmp/s", "-l", "/tmp/log", "-f", "/tmp/pid", "-F/tmp/hook",
                                     "-t/tmp/state", "-v", "-d", "-b", "guest-ping", "-a", "guest-info", "-D", "-r"])) == expected)
        #expect(runConfig(configure(["--method=unix-listen", "--path", "/tmp/s", "--logfile=/tmp/log", "--pidfile", "/tmp/pid",
                                     "--fsfreeze-hook=/tmp/hook", "--statedir=/tmp/state", "--verbose", "--daemonize",
                                     "--block-rpcs=guest-ping", "--allow-rpcs", "guest-info", "--dump-conf", "--retry-path"])) == expected)
        // Unique prefixes, as getopt_long takes them.
        #expect(runConfig(configure(["--meth=unix-listen", "--pa", "/tmp/s", "--log=/tmp/log", "--pid=/tmp/pid",
                                     "--fs=/tmp/hook", "--stat=/tmp/state", "--verb", "--daemon", "--bl=guest-ping",
                                     "--al=guest-info", "--dump", "--retry"])) == expected)
    }

    @Test func fsfreezeHookArgumentMustBeAttached() {
        #expect(runConfig(configure(["-F"])).fsfreezeHook == "/etc/qemu/fsfreeze-hook")
        // A separate word is an ignored operand, as in qemu-ga.
        #expect(runConfig(configure(["-F", "/tmp/hook"])).fsfreezeHook == "/etc/qemu/fsfreeze-hook")
        #expect(runConfig(configure(["--fsfreeze-hook"])).fsfreezeHook == "/etc/qemu/fsfreeze-hook")
    }

    @Test func lastScalarWinsListsAccumulateAndOperandsAreIgnored() {
        let config = runConfig(configure(["-p", "a", "operand", "-p", "b", "-b", "guest-ping,guest-exec", "-b", "guest-info"]))
        #expect(config.path == "b")
        #expect(config.blockedRPCs == ["guest-ping", "guest-exec", "guest-info"])
    }

    @Test func listsAlsoSplitOnSemicolons() {
        #expect(runConfig(configure(["-b", "guest-ping;guest-exec,guest-info"])).blockedRPCs == ["guest-ping", "guest-exec", "guest-info"])
    }

    @Test func versionNamesTheInterfaceAndOurRelease() {
        #expect(configure(["-V", "--bogus"])
            == .exit(status: 0, output: "QEMU Guest Agent \(qgaInterfaceVersion)\nswift-qemu-ga \(swiftQemuGaVersion)\n"))
    }

    @Test func helpListsEveryOption() {
        guard case .exit(0, let text) = AgentCommandLine.configure(arguments: ["/usr/sbin/qemu-ga", "--help"], environment: [:]) else {
            Issue.record("help did not exit 0")
            return
        }
        #expect(text.hasPrefix("Usage: /usr/sbin/qemu-ga [-m <method> -p <path>] [<options>]\n"))
        for option in ["-c, --config", "-m, --method", "-p, --path", "-l, --logfile", "-f, --pidfile", "-F, --fsfreeze-hook",
                       "-t, --statedir", "-v, --verbose", "-V, --version", "-d, --daemonize", "-b, --block-rpcs",
                       "-a, --allow-rpcs", "-D, --dump-conf", "-r, --retry-path", "-h, --help"] {
            #expect(text.contains(option), "\(option)")
        }
    }

    @Test(arguments: ["-b", "-a", "--block-rpcs", "--allow-rpcs"], ["help", "?"])
    func helpListsTheCommandsInRegistrationOrder(option: String, word: String) {
        let names = registeredCommands.map { $0.name + "\n" }.joined()
        #expect(names.hasPrefix("guest-sync-delimited\nguest-sync\nguest-ping\n"))
        #expect(configure([option, word]) == .exit(status: 0, output: names))
    }

    @Test(arguments: [["-x"], ["--bogus"], ["-m"], ["--blacklist=guest-ping"]])
    func badOptionsExitOneWithQemuGasHint(arguments: [String]) {
        #expect(configure(arguments) == .exit(status: 1, output: "Unknown option, try 'qemu-ga --help' for more information.\n"))
    }
}

@Suite struct ConfigFileTests {
    @Test func everyKey() {
        let config = runConfig(configure([], config: """
            # a comment
            [general]
            daemon = 1
            method=unix-listen
            path=/tmp/sock
            logfile=/tmp/log
            pidfile=/tmp/pid
            fsfreeze-hook=/tmp/hook
            statedir=/tmp/state
            verbose=true
            retry-path=true
            block-rpcs=guest-ping,guest-exec
            allow-rpcs=guest-info
            unknown-key=ignored
            [other]
            method=ignored
            """))
        var expected = GAConfig()
        expected.daemonize = true
        expected.method = "unix-listen"
        expected.path = "/tmp/sock"
        expected.logFile = "/tmp/log"
        expected.pidFile = "/tmp/pid"
        expected.fsfreezeHook = "/tmp/hook"
        expected.stateDirectory = "/tmp/state"
        expected.verbose = true
        expected.retryPath = true
        expected.blockedRPCs = ["guest-ping", "guest-exec"]
        expected.allowedRPCs = ["guest-info"]
        #expect(config == expected)
    }

    @Test func trailingSpacesAreKeptAndEscapesRead() {
        let config = runConfig(configure([], config: "[general]\npath= /x y \nlogfile=a\\sb\nfsfreeze-hook=\n"))
        #expect(config.path == "/x y ")
        #expect(config.logFile == "a b")
        #expect(config.fsfreezeHook == "")
    }

    @Test func commandLineComesAfterTheFile() {
        let config = runConfig(configure(["-p", "/cli", "-b", "guest-info"], config: "[general]\npath=/file\nblock-rpcs=guest-ping\nverbose=false\n"))
        #expect(config.path == "/cli")
        #expect(config.blockedRPCs == ["guest-ping", "guest-info"])
        #expect(runConfig(configure(["-v"], config: "[general]\nverbose=false\n")).verbose)
    }

    @Test func daemonizeIsReadAsDaemon() {
        #expect(runConfig(configure([], config: "[general]\ndaemonize=true\n")).daemonize)
        #expect(!runConfig(configure([], config: "[general]\ndaemonize=true\ndaemon=false\n")).daemonize)
    }

    @Test(arguments: ["[general]\nverbose=yes\n", "garbage\n", "[general]\ndaemon=True\n", "[general]\nretry-path=2\n", "[general]\npath=\\q\n", "[general]\npath=x\\\n"])
    func badFilesStopTheAgentEvenForVersion(text: String) {
        #expect(configure(["-V"], config: text) == .exit(status: 1, output: ""))
    }

    @Test func explicitConfigMustExist() {
        #expect(AgentCommandLine.configure(arguments: ["qemu-ga", "-c", "/nonexistent/x.conf", "-D"], environment: [:])
            == .exit(status: 1, output: ""))
        let path = temporaryFile("[general]\npath=/from-c\n")
        defer { unlink(path) }
        #expect(runConfig(AgentCommandLine.configure(arguments: ["qemu-ga", "--config=\(path)"], environment: ["QGA_CONF": "/nonexistent"])).path == "/from-c")
    }
}

@Suite struct DumpTests {
    @Test func defaultDumpIsQemuGas() {
        var config = GAConfig()
        config.path = "/dev/virtio-ports/org.qemu.guest_agent.0"
        #expect(config.dump() == """
            [general]
            daemon=false
            method=virtio-serial
            path=/dev/virtio-ports/org.qemu.guest_agent.0
            pidfile=/var/run/qemu-ga.pid
            statedir=/var/run
            verbose=false
            retry-path=false
            block-rpcs=
            allow-rpcs=

            """)
    }

    @Test func dumpReadsBackAsTheSameConfiguration() {
        let first = runConfig(configure(["-m", "unix-listen", "-p", " /lead", "-l", "/log", "-F", "-v", "-d", "-r",
                                         "-b", "guest-ping;guest-exec", "-b", "guest-info", "-a", "guest-sync"]))
        let dumped = first.dump()
        #expect(dumped.contains("path=\\s/lead\n"))
        #expect(dumped.contains("block-rpcs=guest-ping,guest-exec,guest-info\n"))
        let second = runConfig(configure([], config: dumped))
        #expect(second == first)
        #expect(second.dump() == dumped)
    }
}

import Testing
@testable import GuestAgent

@Suite struct CommandLineTests {
    @Test func defaultsMatchQemuGa() {
        var expected = AgentOptions()
        expected.method = "virtio-serial"
        expected.pidFile = "/var/run/qemu-ga.pid"
        expected.stateDirectory = "/var/run"
        #expect(AgentCommandLine.parse(["qemu-ga"]) == .run(expected))
    }

    @Test func shortAndLongOptionsAndUniquePrefixes() {
        var expected = AgentOptions()
        expected.method = "unix-listen"
        expected.path = "/tmp/s"
        expected.stateDirectory = "/tmp/state"
        expected.pidFile = "/tmp/pid"
        expected.verbose = true
        #expect(AgentCommandLine.parse(["qemu-ga", "-m", "unix-listen", "-p", "/tmp/s", "-t/tmp/state", "-f", "/tmp/pid", "-v"]) == .run(expected))
        #expect(AgentCommandLine.parse(["qemu-ga", "--method=unix-listen", "--path", "/tmp/s", "--statedir=/tmp/state", "--pid=/tmp/pid", "--verb"]) == .run(expected))
    }

    @Test func lastScalarWinsAndOperandsAreIgnored() {
        guard case .run(let options) = AgentCommandLine.parse(["qemu-ga", "-p", "a", "operand", "-p", "b"]) else {
            Issue.record("expected to run")
            return
        }
        #expect(options.path == "b")
    }

    @Test func versionNamesTheInterfaceAndOurRelease() {
        #expect(AgentCommandLine.parse(["qemu-ga", "-V", "--bogus"])
            == .exit(status: 0, output: "QEMU Guest Agent \(qgaInterfaceVersion)\nswift-qemu-ga \(swiftQemuGaVersion)\n"))
    }

    @Test func helpListsEveryOption() {
        guard case .exit(0, let text) = AgentCommandLine.parse(["/usr/sbin/qemu-ga", "--help"]) else {
            Issue.record("help did not exit 0")
            return
        }
        #expect(text.hasPrefix("Usage: /usr/sbin/qemu-ga [-m <method> -p <path>] [<options>]\n"))
        for option in ["-m, --method", "-p, --path", "-f, --pidfile", "-t, --statedir", "-v, --verbose", "-V, --version", "-h, --help"] {
            #expect(text.contains(option), "\(option)")
        }
    }

    @Test(arguments: [["qemu-ga", "-x"], ["qemu-ga", "--bogus"], ["qemu-ga", "-m"]])
    func badOptionsExitOneWithQemuGasHint(arguments: [String]) {
        #expect(AgentCommandLine.parse(arguments)
            == .exit(status: 1, output: "Unknown option, try 'qemu-ga --help' for more information.\n"))
    }
}

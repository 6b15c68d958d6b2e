import Testing
import TestRequirements

/// The command line (qemu-ga(8), OPTIONS): getopt_long diagnostics, `-V`, `-h`,
/// `-b help` / `-a help`, a missing channel path. The effective values of the
/// options are checked through `-D` in `DaemonDumpTests`.
///
/// Differential tests run both binaries with argv[0] `qemu-ga` and compare
/// stdout and stderr byte for byte (GLib's pid and time normalized).
@Suite("Daemon: command line")
struct DaemonCommandLineTests {
    static let unknownOption = "Unknown option, try 'qemu-ga --help' for more information.\n"

    /// Bad options common to 7.2 and the newest option set, with getopt's
    /// exact stderr text (argv[0] = `qemu-ga`).
    static let badOptions: [([String], String)] = [
        (["-x"], "qemu-ga: invalid option -- 'x'\n"),
        (["--bogus"], "qemu-ga: unrecognized option '--bogus'\n"),
        (["--bogus=1"], "qemu-ga: unrecognized option '--bogus=1'\n"),
        (["-m"], "qemu-ga: option requires an argument -- 'm'\n"),
        (["--method"], "qemu-ga: option '--method' requires an argument\n"),
        (["-p"], "qemu-ga: option requires an argument -- 'p'\n"),
        (["--path"], "qemu-ga: option '--path' requires an argument\n"),
        (["-l"], "qemu-ga: option requires an argument -- 'l'\n"),
        (["-f"], "qemu-ga: option requires an argument -- 'f'\n"),
        (["-t"], "qemu-ga: option requires an argument -- 't'\n"),
        (["-b"], "qemu-ga: option requires an argument -- 'b'\n"),
        (["--statedir"], "qemu-ga: option '--statedir' requires an argument\n"),
        (["--b"], "qemu-ga: option '--block-rpcs' requires an argument\n"),
        (["--d"], "qemu-ga: option '--d' is ambiguous; possibilities: '--dump-conf' '--daemonize'\n"),
        (["--ver"], "qemu-ga: option '--ver' is ambiguous; possibilities: '--version' '--verbose'\n"),
        (["--v"], "qemu-ga: option '--v' is ambiguous; possibilities: '--version' '--verbose'\n"),
        (["--p"], "qemu-ga: option '--p' is ambiguous; possibilities: '--pidfile' '--path'\n"),
        (["--help=x"], "qemu-ga: option '--help' doesn't allow an argument\n"),
        (["--verbose=1"], "qemu-ga: option '--verbose' doesn't allow an argument\n"),
        (["--dump-conf=yes"], "qemu-ga: option '--dump-conf' doesn't allow an argument\n"),
        (["--retry=1"], "qemu-ga: option '--retry-path' doesn't allow an argument\n"),
        (["-Dx"], "qemu-ga: invalid option -- 'x'\n"),
        (["-vdz"], "qemu-ga: invalid option -- 'z'\n"),
        (["-D", "-m", "isa-serial", "-x"], "qemu-ga: invalid option -- 'x'\n"),
        // The error is seen before the option that would have acted.
        (["-x", "-V"], "qemu-ga: invalid option -- 'x'\n"),
        (["-x", "-h"], "qemu-ga: invalid option -- 'x'\n"),
        (["-x", "-b", "help"], "qemu-ga: invalid option -- 'x'\n"),
        (["-m", "unix-listen", "--bogus"], "qemu-ga: unrecognized option '--bogus'\n"),
    ]

    @Test("A bad option: getopt's text on stderr, the hint on stdout, exit 1",
          arguments: [AgentBinary.ours], badOptions.map { ($0.0, $0.1) })
    func badOption(kind: AgentBinary, option: ([String], String)) throws {
        let run = try runAgent(kind, option.0, argv0: "qemu-ga")
        #expect(run.exitStatus == 1, "\(run)")
        #expect(run.out == Self.unknownOption, "\(run)")
        #expect(run.err == option.1, "\(run)")
    }

    @Test("argv[0] is quoted verbatim in both messages", arguments: [AgentBinary.ours])
    func argv0Verbatim(kind: AgentBinary) throws {
        let run = try runAgent(kind, ["--bogus"], argv0: "/some where/qemu-ga")
        #expect(run.exitStatus == 1, "\(run)")
        #expect(run.out == "Unknown option, try '/some where/qemu-ga --help' for more information.\n", "\(run)")
        #expect(run.err == "/some where/qemu-ga: unrecognized option '--bogus'\n", "\(run)")
    }

    /// qemu-ga 9.1 removed `--blacklist` (7.2 accepts it as `-b`).
    @Test("--blacklist is an unknown option (newest)")
    func blacklistRemoved() throws {
        let run = try runAgent(.ours, ["--blacklist=guest-ping", "-D"], argv0: "qemu-ga")
        #expect(run.exitStatus == 1, "\(run)")
        #expect(run.out == Self.unknownOption, "\(run)")
        #expect(run.err == "qemu-ga: unrecognized option '--blacklist=guest-ping'\n", "\(run)")
    }

    // MARK: A channel without a path

    static let missingPath: [[String]] = [
        ["-m", "unix-listen"],
        ["-m", "vsock-listen"],
        ["-m", "unix-listen", "-D"],
        ["--method=vsock-listen", "--dump-conf"],
        ["-m", "no-such-method"],
        ["-m", "isa-serial", "-m", "unix-listen", "-v"],
    ]

    @Test("unix-listen or vsock-listen without -p: GLib critical, exit 1",
          arguments: [AgentBinary.ours], missingPath)
    func missingPathError(kind: AgentBinary, arguments: [String]) throws {
        let run = try runAgent(kind, arguments, argv0: "qemu-ga")
        #expect(run.exitStatus == 1, "\(run)")
        #expect(run.stdout.isEmpty, "\(run)")
        #expect(normalizedDiagnostics(run.stderr) == glibDefaultHandlerLine("CRITICAL", "must specify a path for this channel"),
                "\(run)")
    }

    // MARK: -V

    static var versionPattern: Regex<AnyRegexOutput> {
        try! Regex(#"QEMU Guest Agent 11\.1\.0\nswift-qemu-ga [0-9]+\.[0-9]+\.[0-9]+[^\n]*\n"#)
    }

    @Test("-V: the interface version and ours, exit 0",
          arguments: [["-V"], ["--version"], ["--vers"], ["-V", "-x"], ["-V", "-m", "unix-listen"], ["-vV"],
                      ["-m", "unix-listen", "-V"]])
    func version(arguments: [String]) throws {
        let run = try runAgent(.ours, arguments, argv0: "qemu-ga")
        #expect(run.exitStatus == 0, "\(run)")
        #expect((try? Self.versionPattern.wholeMatch(in: run.out)) != nil, "\(run)")
        #expect(run.stderr.isEmpty, "\(run)")
    }

    // MARK: -h

    /// The newest option set, in the order the newest qemu-ga's `-h` lists it.
    static let helpOptions = [
        ("c", "config"), ("m", "method"), ("p", "path"), ("l", "logfile"), ("f", "pidfile"), ("F", "fsfreeze-hook"),
        ("t", "statedir"), ("v", "verbose"), ("V", "version"), ("d", "daemonize"), ("b", "block-rpcs"),
        ("a", "allow-rpcs"), ("D", "dump-conf"), ("r", "retry-path"), ("h", "help"),
    ]

    /// Compared structurally only (our own wording): the usage line, every
    /// option once and in order, exit 0, nothing on stderr.
    @Test("-h: the reference's shape, every newest option in order",
          arguments: [["-h"], ["--help"], ["--he"], ["-h", "-x"], ["-m", "unix-listen", "-h"]])
    func help(arguments: [String]) throws {
        let run = try runAgent(.ours, arguments, argv0: "qemu-ga")
        #expect(run.exitStatus == 0, "\(run)")
        #expect(run.stderr.isEmpty, "\(run)")
        let lines = run.out.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.first == "Usage: qemu-ga [-m <method> -p <path>] [<options>]", "\(run)")
        var positions: [Int] = []
        for (short, long) in Self.helpOptions {
            let prefix = "  -\(short), --\(long)"
            let matches = lines.indices.filter {
                lines[$0].hasPrefix(prefix)
                    && (lines[$0].count == prefix.count || [" ", "="].contains(lines[$0].dropFirst(prefix.count).first))
            }
            #expect(matches.count == 1, "option -\(short), --\(long) listed \(matches.count) times in: \(run.out)")
            positions += matches
        }
        #expect(positions == positions.sorted(), "options out of order: \(run.out)")
        #expect(run.out.contains("/etc/qemu/qemu-ga.conf"), "the default config path is not mentioned")
        #expect(run.out.contains("/var/run/qemu-ga.pid") && run.out.contains("/etc/qemu/fsfreeze-hook"),
                "defaults not mentioned: \(run.out)")
        #expect(run.out.hasSuffix("\n"))
    }

    // MARK: -b help / -a help

    static func listCommands(_ kind: AgentBinary, _ arguments: [String]) throws -> [String] {
        let run = try runAgent(kind, arguments, argv0: "qemu-ga")
        #expect(run.exitStatus == 0, "\(run)")
        #expect(run.stderr.isEmpty, "\(run)")
        #expect(run.out.hasSuffix("\n"), "\(run)")
        return run.out.split(separator: "\n").map(String.init)
    }

    static let blockHelpForms: [[String]] = [
        ["-b", "help"], ["-b", "?"], ["-bhelp"], ["--block-rpcs=help"], ["--block-rpcs", "?"], ["--bl=help"],
        // acts at once: later options, even bad ones, are not seen
        ["-b", "guest-ping", "-b", "help", "-x"], ["-D", "-b", "help", "-V"],
    ]

    @Test("-b help lists the registered commands in registration order (guest-info reversed)",
          arguments: [AgentBinary.ours], blockHelpForms)
    func blockHelp(kind: AgentBinary, arguments: [String]) throws {
        let expected = try registeredCommands(kind)
        let listed = try Self.listCommands(kind, arguments)
        #expect(listed == expected, "\(kind) \(arguments)")
        #expect(listed.contains("guest-ping") && listed.first == "guest-sync-delimited")
    }

    @Test("-a help lists the same commands (newest)",
          arguments: [["-a", "help"], ["-a", "?"], ["--allow-rpcs=help"], ["-a", "guest-ping", "-a", "help", "-x"]])
    func allowHelp(arguments: [String]) throws {
        #expect(try Self.listCommands(.ours, arguments) == registeredCommands(.ours), "\(arguments)")
    }

    // MARK: Our own options

    /// Long-only, with first letters no qemu-ga option has: qemu-ga's
    /// abbreviations mean what they meant (the `-D` cases run them on both
    /// agents), and only our own can be ambiguous among themselves.
    @Test("Our own options: in --help; ambiguous only among themselves")
    func ownOptions() throws {
        let help = try runAgent(.ours, ["--help"], argv0: "qemu-ga")
        for key in ["thaw-after", "kill-hook-after", "exec-timeout", "exclude-interfaces", "exec-allow", "open-allow",
                    "exec-output-budget"] {
            #expect(help.out.contains("\n      --\(key)="), "--\(key) not described: \(help.out)")
        }
        let ambiguous = try runAgent(.ours, ["--exec=1"], argv0: "qemu-ga")
        #expect(ambiguous.exitStatus == 1 && ambiguous.out == Self.unknownOption, "\(ambiguous)")
        #expect(ambiguous.err == "qemu-ga: option '--exec=1' is ambiguous; possibilities: '--exec-timeout' '--exec-allow' '--exec-output-budget'\n",
                "\(ambiguous)")
        let seconds = try runAgent(.ours, ["--exec-timeout=soon"], argv0: "qemu-ga")
        #expect(seconds.exitStatus == 1 && seconds.err == "qemu-ga: --exec-timeout takes a number of seconds, not 'soon'\n",
                "\(seconds)")
    }
}

extension NeedsSystem {
    /// The tests above that compare with qemu-ga 7.2, and our agent's
    /// cases run on 7.2 itself: its answers are what ours are held to.
    @Suite("Daemon: command line, on qemu-ga 7.2") struct DaemonCommandLineTestsNeedingSystem {
        @Test("A bad option: byte-identical to 7.2", arguments: DaemonCommandLineTests.badOptions.map(\.0))
        func badOptionDifferential(arguments: [String]) throws {
            let ours = try runAgent(.ours, arguments, argv0: "qemu-ga")
            let reference = try runAgent(.reference, arguments, argv0: "qemu-ga")
            #expect(ours.statusText == reference.statusText, "ours: \(ours)\n7.2: \(reference)")
            expectBytes(ours.stdout, reference.stdout, "stdout of \(arguments): ours (actual) vs 7.2 (expected)")
            expectBytes(ours.stderr, reference.stderr, "stderr of \(arguments): ours (actual) vs 7.2 (expected)")
        }

        /// With `-d`, 7.2 unlinks the pidfile on this early exit; ours removes
        /// only a pidfile it created (see `DaemonProcessTests`): here none.
        @Test("Missing path with -d: the same error")
        func missingPathDaemonized() throws {
            let directory = try TemporaryDirectory()
            for kind in [AgentBinary.ours, .reference] {
                let run = try runAgent(kind, ["-d", "-f", directory("pid"), "-m", "unix-listen"], argv0: "qemu-ga")
                #expect(run.exitStatus == 1, "\(run)")
                #expect(normalizedDiagnostics(run.stderr) == glibDefaultHandlerLine("CRITICAL", "must specify a path for this channel"),
                        "\(run)")
                #expect(!fileExists(directory("pid")), "\(kind) created a pidfile")
            }
        }

        /// The same forms on 7.2: one line, `QEMU Guest Agent 7.2.x`.
        @Test("-V on 7.2 (the forms and their immediacy)",
              arguments: [["-V"], ["--version"], ["--vers"], ["-V", "-x"], ["-V", "-m", "unix-listen"], ["-vV"]])
        func versionReference(arguments: [String]) throws {
            let run = try runAgent(.reference, arguments, argv0: "qemu-ga")
            #expect(run.exitStatus == 0, "\(run)")
            #expect(run.out.hasPrefix("QEMU Guest Agent 7.2.") && run.out.filter { $0 == "\n" }.count == 1, "\(run)")
        }

        /// Ours registers only the commands it implements (and none that newest
        /// qemu-ga leaves out on Linux); those it shares with 7.2 come in 7.2's order.
        @Test("-b help: the commands shared with 7.2 come in 7.2's order")
        func blockHelpOrderMatchesReference() throws {
            let ours = try DaemonCommandLineTests.listCommands(.ours, ["-b", "help"])
            let reference = try DaemonCommandLineTests.listCommands(.reference, ["-b", "help"])
            let shared = Set(ours).intersection(reference)
            #expect(ours.filter(shared.contains) == reference.filter(shared.contains), "ours: \(ours)\n7.2: \(reference)")
            #expect(Set(ours).count == ours.count, "duplicates: \(ours)")
            for name in ["guest-sync-delimited", "guest-sync", "guest-ping", "guest-info"] {
                #expect(ours.contains(name), "\(name) missing: \(ours)")
            }
        }

        // The cases of our agent above, on qemu-ga 7.2 (the same bodies).

        @Test(arguments: DaemonCommandLineTests.badOptions.map { ($0.0, $0.1) })
        func badOption(option: ([String], String)) throws { try DaemonCommandLineTests().badOption(kind: .reference, option: option) }

        @Test func argv0Verbatim() throws { try DaemonCommandLineTests().argv0Verbatim(kind: .reference) }

        @Test(arguments: DaemonCommandLineTests.missingPath)
        func missingPathError(arguments: [String]) throws { try DaemonCommandLineTests().missingPathError(kind: .reference, arguments: arguments) }

        @Test(arguments: DaemonCommandLineTests.blockHelpForms)
        func blockHelp(arguments: [String]) throws { try DaemonCommandLineTests().blockHelp(kind: .reference, arguments: arguments) }
    }
}

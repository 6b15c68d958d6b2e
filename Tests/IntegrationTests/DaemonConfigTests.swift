import Testing
import TestRequirements

/// The config file (qemu-ga(8), CONFIGURATION FILE): `QGA_CONF`, `-c`, every
/// key and its type, GKeyFile's errors, precedence and lists. Effective values
/// are read back with `-D`; the cases run on ours and on 7.2 (see
/// `DaemonDumpTests`), except the newest and "better" ones.
@Suite("Daemon: config file")
struct DaemonConfigTests {
    typealias Case = DaemonDumpTests.Case
    static func dump(_ change: (inout DaemonDumpTests.Dump) -> Void) -> DaemonDumpTests.Dump {
        DaemonDumpTests.dump(change)
    }

    static let keyCases: [Case] = [
        Case(name: "an empty file", arguments: [], config: "", expected: dump { _ in }),
        Case(name: "only comments and blank lines", arguments: [], config: "# comment\n\n   \n# [general]\n",
             expected: dump { _ in }),
        Case(name: "an empty [general]", arguments: [], config: "[general]\n", expected: dump { _ in }),
        Case(name: "every key",
             arguments: [],
             config: """
                 [general]
                 daemon=true
                 method=unix-listen
                 path=/run/qga.sock
                 logfile=/var/log/qga.log
                 pidfile=$DIR/pid
                 fsfreeze-hook=/etc/hook
                 statedir=/var/lib/qga
                 verbose=true
                 retry-path=true
                 block-rpcs=guest-exec

                 """,
             expected: dump {
                 $0.daemon = "true"; $0.method = "unix-listen"; $0.path = "/run/qga.sock"; $0.logfile = "/var/log/qga.log"
                 $0.pidfile = "$DIR/pid"; $0.hook = "/etc/hook"; $0.statedir = "/var/lib/qga"; $0.verbose = "true"
                 $0.retry = "true"; $0.block = "guest-exec"
             }),
        Case(name: "booleans 1", arguments: [], config: "[general]\ndaemon=1\nverbose=1\nretry-path=1\npidfile=$DIR/pid\n",
             expected: dump { $0.daemon = "true"; $0.verbose = "true"; $0.retry = "true"; $0.pidfile = "$DIR/pid" }),
        Case(name: "booleans 0 and false", arguments: [], config: "[general]\ndaemon=0\nverbose=false\nretry-path=0\n",
             expected: dump { _ in }),
        Case(name: "booleans with spaces around", arguments: [],
             config: "[general]\n  daemon  =  true  \nverbose= 1\nretry-path =false\n",
             expected: dump { $0.daemon = "true"; $0.verbose = "true" }),
        Case(name: "isa-serial from the file: its default path", arguments: [], config: "[general]\nmethod=isa-serial\n",
             expected: dump { $0.method = "isa-serial"; $0.path = "/dev/ttyS0" }),
        Case(name: "an empty fsfreeze-hook", arguments: [], config: "[general]\nfsfreeze-hook=\n",
             expected: dump { $0.hook = "" }),
        Case(name: "trailing spaces are kept, leading ones dropped", arguments: [],
             config: "[general]\nmethod = unix-listen  \npath=  /p \nlogfile =/l\t\n",
             expected: dump { $0.method = "unix-listen  "; $0.path = "/p "; $0.logfile = "/l\t" }),
        Case(name: "escapes in values", arguments: [], config: "[general]\npath=\\sx\\ty\\n\\\\\n",
             expected: dump { $0.path = "\\sx\ty\\n\\\\" }),
        Case(name: "unknown keys and groups are ignored", arguments: [],
             config: "[general]\nfoo=bar\nDaemon=1\n[other]\nmethod=isa-serial\n[General]\nverbose=1\n",
             expected: dump { _ in }),
        Case(name: "the manual's daemonize key is not read by 7.2", arguments: [], config: "[general]\ndaemonize=0\n",
             expected: dump { _ in }),
        Case(name: "keys before [general] in another group", arguments: [],
             config: "[x]\ndaemon=yes\n[general]\nmethod=isa-serial\n",
             expected: dump { $0.method = "isa-serial"; $0.path = "/dev/ttyS0" }),
        Case(name: "a repeated key: the last one", arguments: [], config: "[general]\npath=/a\npath=/b\n",
             expected: dump { $0.path = "/b" }),
        Case(name: "verbose=false cannot lower -v", arguments: ["-v"], config: "[general]\nverbose=false\n",
             expected: dump { $0.verbose = "true" }),
        Case(name: "daemon=false cannot lower -d", arguments: ["-d", "-f", "$DIR/pid"], config: "[general]\ndaemon=false\n",
             expected: dump { $0.daemon = "true"; $0.pidfile = "$DIR/pid" }),
        Case(name: "a list with spaces and empty names, in the order given (7.2 reverses it)", arguments: [],
             config: "[general]\nblock-rpcs = a , b ,,\n", expected: dump { $0.block = "a , b ,," }, newestOnly: true),
        Case(name: "an empty list", arguments: [], config: "[general]\nblock-rpcs=\n", expected: dump { _ in }),

        // Precedence: the file, then the command line.
        Case(name: "command-line scalars override the file",
             arguments: ["-m", "isa-serial", "-p", "/dev/ttyS3", "-l", "/cl", "-f", "$DIR/cl.pid", "-F/clhook", "-t", "/clstate"],
             config: "[general]\nmethod=unix-listen\npath=/p\nlogfile=/l\npidfile=$DIR/pid\nfsfreeze-hook=/h\nstatedir=/s\n",
             expected: dump {
                 $0.method = "isa-serial"; $0.path = "/dev/ttyS3"; $0.logfile = "/cl"; $0.pidfile = "$DIR/cl.pid"
                 $0.hook = "/clhook"; $0.statedir = "/clstate"
             }),
        Case(name: "the file fills what the command line leaves", arguments: ["-p", "/cli"],
             config: "[general]\nmethod=unix-listen\nstatedir=/s\n",
             expected: dump { $0.method = "unix-listen"; $0.path = "/cli"; $0.statedir = "/s" }),
        Case(name: "lists: the file's, then each -b in command-line order (7.2 reverses each list)",
             arguments: ["-b", "d,e", "-b", "f"], config: "[general]\nblock-rpcs=a,b,c\n",
             expected: dump { $0.block = "a,b,c,d,e,f" }, newestOnly: true),
        Case(name: "a path in the file is kept when -m changes the method", arguments: ["-m", "isa-serial"],
             config: "[general]\npath=/dev/ttyS9\n", expected: dump { $0.method = "isa-serial"; $0.path = "/dev/ttyS9" }),

        // Newest: allow-rpcs, blacklist gone.
        Case(name: "allow-rpcs (newest)", arguments: ["-a", "c"], config: "[general]\nallow-rpcs=a,b\n",
             expected: dump { $0.allow = "a,b,c" }, newestOnly: true),
        Case(name: "block-rpcs and allow-rpcs together (newest ≥ 9.1)", arguments: [],
             config: "[general]\nblock-rpcs=a\nallow-rpcs=b\n", expected: dump { $0.block = "a"; $0.allow = "b" },
             newestOnly: true),
        Case(name: "the blacklist key is ignored (newest ≥ 9.1)", arguments: [],
             config: "[general]\nblacklist=x,y\nblock-rpcs=a\n", expected: dump { $0.block = "a" }, newestOnly: true),
    ]

    @Test("Each key, its type and precedence", arguments: [AgentBinary.ours], keyCases)
    func keys(kind: AgentBinary, testCase: Case) throws {
        try DaemonDumpTests.check(kind, testCase)
    }

    // MARK: Which file

    @Test("QGA_CONF names the file; a missing one is ignored", arguments: [AgentBinary.ours])
    func qgaConf(kind: AgentBinary) throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("my.conf", "[general]\nmethod=isa-serial\n")
        let used = try runAgent(kind, ["-D"], environment: ["QGA_CONF": path])
        #expect(used.out.contains("\nmethod=isa-serial\npath=/dev/ttyS0\n"), "\(used)")
        let missing = try runAgent(kind, ["-D"], environment: ["QGA_CONF": directory("missing.conf")])
        #expect(missing.exitStatus == 0 && missing.stderr.isEmpty, "\(missing)")
        expectBytes(missing.stdout, Bytes(DaemonDumpTests.Dump().text(newest: kind == .ours).utf8), "missing QGA_CONF")
    }

    static func configError(_ path: String, _ message: String) -> String {
        glibDefaultHandlerLine("CRITICAL", asPrintedByGLib("error loading configuration from path: \(path), \(message)"))
    }

    @Test("-c names the file and beats QGA_CONF (newest)",
          arguments: [["-c", "$C"], ["--config=$C"], ["--conf", "$C"], ["-c$C"], ["-c", "$DIR/missing", "-c", "$C"]])
    func configOption(arguments: [String]) throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("my.conf", "[general]\nmethod=isa-serial\n")
        try directory.write("env.conf", "[general]\nretry-path=true\n")
        let expanded = arguments.map {
            $0.replacingOccurrences("$C", with: path).replacingOccurrences("$DIR", with: directory.path)
        }
        let run = try runAgent(.ours, expanded + ["-D"], environment: ["QGA_CONF": directory("env.conf")])
        #expect(run.exitStatus == 0 && run.stderr.isEmpty, "\(run)")
        expectBytes(run.stdout, Bytes(DaemonDumpTests.dump { $0.method = "isa-serial"; $0.path = "/dev/ttyS0" }
                        .text(newest: true).utf8), "dump with \(arguments)")
    }

    /// `-c` makes the file mandatory, and it is read before `-h`/`-V` act
    /// (qemu-ga ≥ 9.1 scans the command line for `-c` first).
    @Test("-c with a missing file: fatal, even with -h or -V (newest)",
          arguments: [["-D"], ["-h"], ["-V"], ["-b", "help"], []])
    func configOptionMissing(more: [String]) throws {
        let directory = try TemporaryDirectory()
        let run = try runAgent(.ours, ["-c", directory("missing.conf")] + more, argv0: "qemu-ga")
        #expect(run.exitStatus == 1, "\(run)")
        #expect(run.stdout.isEmpty, "\(run)")
        #expect(normalizedDiagnostics(run.stderr)
                    == Self.configError(directory("missing.conf"), "No such file or directory"), "\(run)")
    }

    // MARK: Errors

    /// (name, file content or nil for "a directory", GLib's message).
    static let errorCases: [(String, String?, String)] = [
        ("boolean yes", "[general]\ndaemon=yes\n", "Key file contains key “daemon” which has a value that cannot be interpreted."),
        ("boolean TRUE", "[general]\nverbose=TRUE\n",
         "Key file contains key “verbose” which has a value that cannot be interpreted."),
        ("boolean empty", "[general]\nretry-path=\n",
         "Key file contains key “retry-path” which has a value that cannot be interpreted."),
        ("boolean 2", "[general]\nretry-path=2\n",
         "Key file contains key “retry-path” which has a value that cannot be interpreted."),
        ("bad boolean after good keys", "[general]\nmethod=isa-serial\ndaemon=on\nblock-rpcs=x\n",
         "Key file contains key “daemon” which has a value that cannot be interpreted."),
        ("a line that is no key", "[general]\ngarbage\n",
         "Key file contains line “garbage” which is not a key-value pair, group, or comment"),
        ("an unterminated group", "[general\n",
         "Key file contains line “[general” which is not a key-value pair, group, or comment"),
        ("a key without a name", "[general]\n=x\n",
         "Key file contains line “=x” which is not a key-value pair, group, or comment"),
        ("a key before any group", "daemon=1\n", "Key file does not start with a group"),
        ("an invalid escape in a string", "[general]\npath=\\q\n",
         "Key file contains key “path” which has a value that cannot be interpreted."),
        ("a directory", nil, "Not a regular file"),
    ]

    @Test("A broken file: GLib's message, exit 1", arguments: [AgentBinary.ours], errorCases.map(\.0))
    func brokenFile(kind: AgentBinary, name: String) throws {
        let (_, content, message) = Self.errorCases.first { $0.0 == name }!
        let directory = try TemporaryDirectory()
        let path = try content.map { try directory.write("qemu-ga.conf", $0) } ?? directory.path
        let run = try runAgent(kind, ["-D"], argv0: "qemu-ga", environment: ["QGA_CONF": path])
        #expect(run.exitStatus == 1, "\(run)")
        #expect(run.stdout.isEmpty, "\(run)")
        #expect(normalizedDiagnostics(run.stderr) == Self.configError(path, message), "\(run)")
    }

    /// More GKeyFile failures, compared with 7.2 byte for byte (GLib's
    /// process id and time normalized).
    static let differentialErrors: [(String, Bytes)] = [
        ("a byte-order mark", Bytes([0xEF, 0xBB, 0xBF]) + Bytes("[general]\ndaemon=1\n".utf8)),
        ("a non-UTF-8 value", Bytes("[general]\npath=".utf8) + [0xFF, 0x0A]),
        ("a non-UTF-8 key", Bytes("[general]\npa".utf8) + [0xC3, 0x28] + Bytes("th=x\n".utf8)),
        ("a non-UTF-8 group", Bytes("[gen".utf8) + [0xFE] + Bytes("]\n".utf8)),
        ("a NUL byte", Bytes("[general]\npath=a".utf8) + [0] + Bytes("b\n".utf8)),
        ("a group with brackets inside", Bytes("[gen[er]al]\n".utf8)),
        ("a key with spaces inside", Bytes("[general]\nmy key=1\n".utf8)),
        ("a bad boolean in another group is ignored", Bytes("[other]\ndaemon=yes\n".utf8)),
        ("an escape at the end of a value", Bytes("[general]\npath=x\\\n".utf8)),
        ("a number where a boolean is", Bytes("[general]\nverbose=10\n".utf8)),
    ]

    // MARK: Better than 7.2

    /// The manual calls the list keys string lists: `;` separates names too
    /// (7.2 takes `a;b` as one name and blocks nothing).
    @Test("Better: ';' separates list entries in the file",
          arguments: [("block-rpcs", "guest-ping;guest-sync"), ("block-rpcs", "guest-ping;guest-sync;"),
                      ("allow-rpcs", "guest-ping;guest-sync"), ("block-rpcs", "guest-ping,guest-sync;guest-info")])
    func semicolonLists(key: String, value: String) throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("qemu-ga.conf", "[general]\n\(key)=\(value)\n")
        let run = try runAgent(.ours, ["-D"], environment: ["QGA_CONF": path])
        #expect(run.exitStatus == 0, "\(run)")
        let line = run.out.split(separator: "\n").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
        let expected = value.split(whereSeparator: { $0 == ";" || $0 == "," }).map(String.init)
        let printed = (line ?? "").split(separator: ",").map(String.init)
        #expect(Set(printed) == Set(expected) && printed.count == expected.count,
                "\(key)=\(value) printed as \(line ?? "nothing"): \(run)")
    }

    @Test("Better: the manual's key daemonize is read as daemon",
          arguments: [("daemonize=1", "true"), ("daemonize=true", "true"), ("daemonize=0", "false")])
    func daemonizeKey(line: String, expected: String) throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("qemu-ga.conf", "[general]\n\(line)\npidfile=\(directory("pid"))\n")
        let run = try runAgent(.ours, ["-D"], environment: ["QGA_CONF": path])
        #expect(run.exitStatus == 0, "\(run)")
        #expect(run.out.contains("\ndaemon=\(expected)\n"), "\(line): \(run)")
    }

    @Test("Better: daemonize=yes is a bad boolean like daemon=yes")
    func daemonizeKeyBadValue() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("qemu-ga.conf", "[general]\ndaemonize=yes\n")
        let run = try runAgent(.ours, ["-D"], environment: ["QGA_CONF": path])
        #expect(run.exitStatus == 1, "\(run)")
        #expect(normalizedDiagnostics(run.stderr).contains("which has a value that cannot be interpreted."), "\(run)")
    }

    /// Beyond qemu-ga, from the config file: `exclude-interfaces` on this
    /// machine's own interfaces (getifaddrs).
    @Test("exclude-interfaces in the config file: lo is left out, the rest keep their order")
    func excludeInterfaces() throws {
        func names(_ agent: Agent) throws -> [String] {
            let reply = try agent.ask(#"{"execute":"guest-network-get-interfaces"}"#)
            return reply.matches(of: try Regex(#"\{"name": "([^"]*)""#)).compactMap { $0.output[1].substring.map(String.init) }
        }
        let all = try withAgent { try names($0) }
        #expect(all.contains("lo"))
        let directory = try TemporaryDirectory()
        let config = try directory.write("qemu-ga.conf", "[general]\nexclude-interfaces=lo;nothing-like-it*\n")
        let kept = try withAgent(environment: ["QGA_CONF": config]) { try names($0) }
        #expect(kept == all.filter { $0 != "lo" })
    }
}

extension NeedsSystem {
    /// The tests above that compare with qemu-ga 7.2, and our agent's
    /// cases run on 7.2 itself: its answers are what ours are held to.
    @Suite("Daemon: config file, on qemu-ga 7.2") struct DaemonConfigTestsNeedingSystem {
        /// 7.2 reads the file before the command line; a broken file wins over
        /// everything, even an unknown option.
        @Test("A broken file fails before any option acts", arguments: [["-h"], ["-V"], ["-b", "help"], ["-x"], ["--bogus"], []])
        func brokenFileFirst(arguments: [String]) throws {
            let directory = try TemporaryDirectory()
            let path = try directory.write("qemu-ga.conf", "[general]\ndaemon=yes\n")
            for kind in [AgentBinary.ours, .reference] {
                let run = try runAgent(kind, arguments, argv0: "qemu-ga", environment: ["QGA_CONF": path])
                #expect(run.exitStatus == 1, "\(kind): \(run)")
                #expect(run.stdout.isEmpty, "\(kind): \(run)")
                #expect(normalizedDiagnostics(run.stderr)
                            == DaemonConfigTests.configError(path, "Key file contains key “daemon” which has a value that cannot be interpreted."),
                        "\(kind): \(run)")
            }
        }

        @Test("GKeyFile corner cases: byte-identical to 7.2", arguments: DaemonConfigTests.differentialErrors.map(\.0))
        func differentialError(name: String) throws {
            let content = DaemonConfigTests.differentialErrors.first { $0.0 == name }!.1
            let directory = try TemporaryDirectory()
            try writeFile(directory("qemu-ga.conf"), content)
            let environment: [String: String?] = ["QGA_CONF": directory("qemu-ga.conf")]
            let ours = try runAgent(.ours, ["-D"], argv0: "qemu-ga", environment: environment)
            let reference = try runAgent(.reference, ["-D"], argv0: "qemu-ga", environment: environment)
            #expect(ours.statusText == reference.statusText, "ours: \(ours)\n7.2: \(reference)")
            let expectedOut = reference.exitStatus == 0 ? reference.stdout + Bytes("allow-rpcs=\n".utf8) : reference.stdout
            expectBytes(ours.stdout, expectedOut, "\(name): stdout, ours (actual) vs 7.2 (expected)")
            #expect(normalizedDiagnostics(ours.stderr) == normalizedDiagnostics(reference.stderr),
                    "\(name): stderr\nours: \(render(ours.stderr))\n7.2:  \(render(reference.stderr))")
        }

        // The cases of our agent above, on qemu-ga 7.2 (the same bodies).

        @Test(arguments: DaemonConfigTests.keyCases)
        func keys(testCase: DaemonDumpTests.Case) throws { try DaemonConfigTests().keys(kind: .reference, testCase: testCase) }

        @Test func qgaConf() throws { try DaemonConfigTests().qgaConf(kind: .reference) }

        @Test(arguments: DaemonConfigTests.errorCases.map(\.0))
        func brokenFile(name: String) throws { try DaemonConfigTests().brokenFile(kind: .reference, name: name) }
    }
}

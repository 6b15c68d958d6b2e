import Testing
import TestRequirements

/// The effective configuration as `-D` prints it.
///
/// Each case states the expected fields; it runs on ours (newest format:
/// `allow-rpcs=` printed after `block-rpcs=`, always) and on 7.2 (no
/// `allow-rpcs` line), so the expectations are checked against the
/// reference every time. Differential cases compare ours with 7.2 byte for
/// byte (plus the newest `allow-rpcs=` line).
///
/// `$DIR` in arguments, config text and expected values is the test's
/// temporary directory (pidfiles of `-d` runs must live there: 7.2 unlinks
/// the pidfile on every exit of a `-d` run, `-D` included).
@Suite("Daemon: -D dump")
struct DaemonDumpTests {
    /// The printed fields; the defaults are qemu-ga's (qemu-ga(8), OPTIONS).
    struct Dump: Sendable {
        var daemon = "false"
        var method = "virtio-serial"
        var path: String? = "/dev/virtio-ports/org.qemu.guest_agent.0"
        var logfile: String?
        var pidfile = "/var/run/qemu-ga.pid"
        var hook: String?
        var statedir = "/var/run"
        var verbose = "false"
        var retry = "false"
        var block = ""
        var allow = ""

        func text(newest: Bool) -> String {
            var lines = ["[general]", "daemon=\(daemon)", "method=\(method)"]
            if let path { lines.append("path=\(path)") }
            if let logfile { lines.append("logfile=\(logfile)") }
            lines.append("pidfile=\(pidfile)")
            if let hook { lines.append("fsfreeze-hook=\(hook)") }
            lines += ["statedir=\(statedir)", "verbose=\(verbose)", "retry-path=\(retry)", "block-rpcs=\(block)"]
            if newest { lines.append("allow-rpcs=\(allow)") }
            return lines.map { $0 + "\n" }.joined()
        }
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let arguments: [String]
        var config: String?
        let expected: Dump
        /// Uses what 7.2 does not have (`-a`, `-c`, `allow-rpcs`).
        var newestOnly = false
        var testDescription: String { name }
    }

    static func dump(_ change: (inout Dump) -> Void) -> Dump {
        var dump = Dump()
        change(&dump)
        return dump
    }

    static let commandLineCases: [Case] = [
        Case(name: "defaults", arguments: [], expected: Dump()),
        Case(name: "isa-serial: its default path", arguments: ["-m", "isa-serial"],
             expected: dump { $0.method = "isa-serial"; $0.path = "/dev/ttyS0" }),
        Case(name: "unix-listen with a path", arguments: ["-m", "unix-listen", "-p", "/run/x.sock"],
             expected: dump { $0.method = "unix-listen"; $0.path = "/run/x.sock" }),
        Case(name: "vsock-listen with an address (not parsed for -D)", arguments: ["-m", "vsock-listen", "-p", "3:1234"],
             expected: dump { $0.method = "vsock-listen"; $0.path = "3:1234" }),
        Case(name: "an unknown method is printed as given", arguments: ["-m", "bogus", "-p", "/x"],
             expected: dump { $0.method = "bogus"; $0.path = "/x" }),
        Case(name: "virtio-serial with a path", arguments: ["-p", "/dev/vport0p1"],
             expected: dump { $0.path = "/dev/vport0p1" }),
        Case(name: "every short option",
             arguments: ["-m", "isa-serial", "-p", "/dev/ttyS1", "-l", "/l/log", "-f", "$DIR/pid", "-F/h/hook", "-t", "/s",
                         "-v", "-d", "-r", "-b", "guest-ping"],
             expected: dump {
                 $0.daemon = "true"; $0.method = "isa-serial"; $0.path = "/dev/ttyS1"; $0.logfile = "/l/log"
                 $0.pidfile = "$DIR/pid"; $0.hook = "/h/hook"; $0.statedir = "/s"; $0.verbose = "true"; $0.retry = "true"
                 $0.block = "guest-ping"
             }),
        Case(name: "every long option",
             arguments: ["--method=unix-listen", "--path", "/p", "--logfile=/l", "--pidfile", "$DIR/pid",
                         "--fsfreeze-hook=/h", "--statedir=/s", "--verbose", "--daemonize", "--retry-path",
                         "--block-rpcs=a", "--dump-conf"],
             expected: dump {
                 $0.daemon = "true"; $0.method = "unix-listen"; $0.path = "/p"; $0.logfile = "/l"; $0.pidfile = "$DIR/pid"
                 $0.hook = "/h"; $0.statedir = "/s"; $0.verbose = "true"; $0.retry = "true"; $0.block = "a"
             }),
        Case(name: "unique prefixes of long options",
             arguments: ["--meth=unix-listen", "--pa=/p", "--log=/l", "--pid=$DIR/pid", "--fs=/h", "--stat=/s", "--verb",
                         "--daemon", "--retry", "--block=a", "--dump"],
             expected: dump {
                 $0.daemon = "true"; $0.method = "unix-listen"; $0.path = "/p"; $0.logfile = "/l"; $0.pidfile = "$DIR/pid"
                 $0.hook = "/h"; $0.statedir = "/s"; $0.verbose = "true"; $0.retry = "true"; $0.block = "a"
             }),
        // 7.2: --bl matches block-rpcs and blacklist, which are the same option; newest: only block-rpcs.
        Case(name: "--bl is --block-rpcs", arguments: ["--bl=x"], expected: dump { $0.block = "x" }),
        Case(name: "-F with an attached argument", arguments: ["-F/x/hook"], expected: dump { $0.hook = "/x/hook" }),
        Case(name: "bare -F: the default hook", arguments: ["-F"], expected: dump { $0.hook = "/etc/qemu/fsfreeze-hook" }),
        Case(name: "-F /path: bare -F plus an ignored operand", arguments: ["-F", "/y/hook"],
             expected: dump { $0.hook = "/etc/qemu/fsfreeze-hook" }),
        Case(name: "--fsfreeze-hook=/path", arguments: ["--fsfreeze-hook=/z"], expected: dump { $0.hook = "/z" }),
        Case(name: "--fsfreeze-hook /path: no argument plus an operand", arguments: ["--fsfreeze-hook", "/z"],
             expected: dump { $0.hook = "/etc/qemu/fsfreeze-hook" }),
        Case(name: "--fsfreeze-hook= (empty argument)", arguments: ["--fsfreeze-hook="], expected: dump { $0.hook = "" }),
        Case(name: "last -F wins, bare or not", arguments: ["-F/a", "-F"], expected: dump { $0.hook = "/etc/qemu/fsfreeze-hook" }),
        Case(name: "operands are ignored", arguments: ["operand", "-m", "isa-serial", "x", "y"],
             expected: dump { $0.method = "isa-serial"; $0.path = "/dev/ttyS0" }),
        Case(name: "last scalar wins",
             arguments: ["-m", "isa-serial", "-m", "unix-listen", "-p", "/a", "-p", "/b", "-l", "/l1", "-l", "/l2",
                         "-f", "/f1", "-f", "/f2", "-F/h1", "-F/h2", "-t", "/t1", "-t", "/t2"],
             expected: dump {
                 $0.method = "unix-listen"; $0.path = "/b"; $0.logfile = "/l2"; $0.pidfile = "/f2"; $0.hook = "/h2"
                 $0.statedir = "/t2"
             }),
        Case(name: "repeated flags", arguments: ["-v", "-v", "-r", "-r"], expected: dump { $0.verbose = "true"; $0.retry = "true" }),
        // Lists keep the order given (7.2 reverses each list, so its dump does
        // not read back as the same configuration): these differ from 7.2.
        Case(name: "-b accumulates in the order given",
             arguments: ["-b", "guest-ping,guest-exec", "-b", "guest-info"],
             expected: dump { $0.block = "guest-ping,guest-exec,guest-info" }, newestOnly: true),
        Case(name: "-b lists of three", arguments: ["-b", "a,b,c", "--block-rpcs=d,e,f"],
             expected: dump { $0.block = "a,b,c,d,e,f" }, newestOnly: true),
        Case(name: "-b keeps empty names and duplicates", arguments: ["-b", ",a,,a", "-b", ""],
             expected: dump { $0.block = ",a,,a" }, newestOnly: true),
        Case(name: "-b unknown names are kept", arguments: ["-b", "no-such-command"], expected: dump { $0.block = "no-such-command" }),
        Case(name: "combined short flags", arguments: ["-vrd", "-f", "$DIR/pid"],
             expected: dump { $0.verbose = "true"; $0.retry = "true"; $0.daemon = "true"; $0.pidfile = "$DIR/pid" }),
        Case(name: "attached short arguments", arguments: ["-misa-serial", "-p/dev/ttyS2", "-t/s", "-bx"],
             expected: dump { $0.method = "isa-serial"; $0.path = "/dev/ttyS2"; $0.statedir = "/s"; $0.block = "x" }),
        Case(name: "-D given twice", arguments: ["-D", "-D"], expected: Dump()),
        Case(name: "relative paths are printed as given", arguments: ["-t", "run", "-l", "log", "-m", "unix-listen", "-p", "s"],
             expected: dump { $0.statedir = "run"; $0.logfile = "log"; $0.method = "unix-listen"; $0.path = "s" }),
        // GKeyFile escaping of values (g_key_file_set_string).
        Case(name: "leading spaces are escaped as \\s", arguments: ["-p", " lead", "-l", "  two"],
             expected: dump { $0.path = "\\slead"; $0.logfile = "\\s\\stwo" }),
        Case(name: "trailing spaces are kept", arguments: ["-p", "trail  "], expected: dump { $0.path = "trail  " }),
        Case(name: "backslash, newline, CR are escaped; a tab only among leading spaces",
             arguments: ["-p", "a\\b\tc\nd\re", "-l", " \t x\t"],
             expected: dump { $0.path = "a\\\\b\tc\\nd\\re"; $0.logfile = "\\s\\t\\sx\t" }),
        Case(name: "#, =, [ ], ; and UTF-8 are printed as they are", arguments: ["-p", "#x=y[z];é"],
             expected: dump { $0.path = "#x=y[z];é" }),
        Case(name: "escaping in lists", arguments: ["-b", " a,b\\"], expected: dump { $0.block = "\\sa,b\\\\" },
             newestOnly: true),

        // The newest options.
        Case(name: "-a accumulates like -b", arguments: ["-a", "guest-ping,guest-info", "-a", "guest-sync"],
             expected: dump { $0.allow = "guest-ping,guest-info,guest-sync" }, newestOnly: true),
        Case(name: "--allow-rpcs and -b together", arguments: ["--allow-rpcs=a,b", "-b", "c", "--al=d"],
             expected: dump { $0.allow = "a,b,d"; $0.block = "c" }, newestOnly: true),
    ]

    @Test("-D prints the effective command line", arguments: [AgentBinary.ours], commandLineCases)
    func commandLine(kind: AgentBinary, testCase: Case) throws {
        try Self.check(kind, testCase)
    }

    static func check(_ kind: AgentBinary, _ testCase: Case, sourceLocation: SourceLocation = #_sourceLocation) throws {
        if kind == .reference && testCase.newestOnly { return }
        let directory = try TemporaryDirectory()
        let expand = { (text: String) in text.replacingOccurrences("$DIR", with: directory.path) }
        var environment: [String: String?] = ["QGA_CONF": directory("absent.conf")]
        if let config = testCase.config {
            environment["QGA_CONF"] = try directory.write("qemu-ga.conf", expand(config))
        }
        var arguments = testCase.arguments.map(expand)
        if !arguments.contains(where: { $0 == "-D" || $0.hasPrefix("--dump") }) { arguments.append("-D") }
        let run = try runAgent(kind, arguments, environment: environment)
        #expect(run.exitStatus == 0, "\(run)", sourceLocation: sourceLocation)
        #expect(run.stderr.isEmpty, "\(run)", sourceLocation: sourceLocation)
        expectBytes(run.stdout, Bytes(expand(testCase.expected.text(newest: kind == .ours)).utf8),
                    "\(kind) -D \(testCase.name)", sourceLocation: sourceLocation)
    }

    @Test("The default config file is /etc/qemu/qemu-ga.conf; here it is missing, which is not an error",
          arguments: [AgentBinary.ours])
    func defaultConfigPath(kind: AgentBinary) throws {
        #expect(!fileExists("/etc/qemu/qemu-ga.conf"),
                "this test expects no /etc/qemu/qemu-ga.conf on the test machine")
        let run = try runAgent(kind, ["-D"])
        #expect(run.exitStatus == 0 && run.stderr.isEmpty, "\(run)")
        expectBytes(run.stdout, Bytes(Dump().text(newest: kind == .ours).utf8), "\(kind) default dump")
    }

    // MARK: Differential

    /// Byte for byte against 7.2 (ours adds `allow-rpcs=`), for inputs
    /// whose exact output is not spelled out above.
    static let differentialInputs: [(String, [String], String?)] = [
        ("defaults", [], nil),
        ("non-ASCII and control bytes in values", ["-p", "\u{1}\u{7f}é\u{2028}", "-l", "x\u{0b}y"], nil),
        ("a value that is only spaces", ["-p", "   "], nil),
        ("an empty value", ["-p", "", "-l", "", "-t", ""], nil),
        ("a value with [general] and a newline", ["-l", "\n[general]\ndaemon=true"], nil),
        ("a config with every key", [],
         "[general]\ndaemon=true\nmethod=unix-listen\npath=/p\nlogfile=/l\npidfile=$DIR/pid\nfsfreeze-hook=/h\n"
             + "statedir=/s\nverbose=true\nretry-path=true\nblock-rpcs=a\n"),
        ("config escapes", [], "[general]\npath=\\sx\\ty\\n\\\\\\r\nlogfile=  spaced  \n"),
        ("config lists with spaces", [], "[general]\nblock-rpcs = a b \n"),
        ("config list of empty names", [], "[general]\nblock-rpcs=,,\n"),
        ("config and command line", ["-m", "isa-serial", "-b", "c", "-F"],
         "[general]\nmethod=unix-listen\npath=/p\nblock-rpcs=a\nfsfreeze-hook=/cfg\n"),
        ("CRLF config", [], "[general]\r\ndaemon=1\r\npidfile=$DIR/pid\r\n"),
        ("duplicate keys and groups", [], "[general]\npath=a\npath=b\n[other]\npath=c\n[general]\nlogfile=l\n"),
        ("localized keys are other keys", [], "[general]\npath[de]=x\nlogfile[fr]=y\n"),
    ]

    // MARK: Round trip

    /// What ours prints, used as the config file, gives the same dump again
    /// (on 7.2 too for lists of one name; 7.2 reverses longer ones).
    static let roundTripCases: [(String, [String])] = [
        ("defaults", []),
        ("everything set",
         ["-d", "-m", "unix-listen", "-p", "/p", "-l", "/l", "-f", "$DIR/pid", "-F/h", "-t", "/s", "-v", "-r",
          "-b", "guest-ping"]),
        ("escaped values", ["-p", " lead\\back\ttab\nnl\rcr  ", "-l", "é#=[x]", "-b", " x "]),
        ("empty values", ["-p", "", "-l", "", "--fsfreeze-hook=", "-t", ""]),
        ("isa-serial", ["-m", "isa-serial"]),
    ]

    @Test("-D round trip: the dump as config file gives the same dump",
          arguments: [AgentBinary.ours], roundTripCases.map { $0.0 })
    func roundTrip(kind: AgentBinary, name: String) throws {
        let arguments = Self.roundTripCases.first { $0.0 == name }!.1
        let directory = try TemporaryDirectory()
        let expand = { (text: String) in text.replacingOccurrences("$DIR", with: directory.path) }
        let first = try runAgent(kind, arguments.map(expand) + ["-D"], environment: ["QGA_CONF": directory("absent")])
        #expect(first.exitStatus == 0, "\(first)")
        try writeFile(directory("dumped.conf"), first.stdout)
        let second = try runAgent(kind, ["-D"], environment: ["QGA_CONF": directory("dumped.conf")])
        #expect(second.exitStatus == 0 && second.stderr.isEmpty, "\(second)")
        expectBytes(second.stdout, first.stdout, "\(kind) \(name): dump of the dump")
    }

    @Test("-D round trip with the newest allow-rpcs key")
    func roundTripAllow() throws {
        let directory = try TemporaryDirectory()
        let first = try runAgent(.ours, ["-a", "guest-ping", "-b", "guest-info", "-D"],
                                 environment: ["QGA_CONF": directory("absent")])
        #expect(first.out.hasSuffix("block-rpcs=guest-info\nallow-rpcs=guest-ping\n"), "\(first)")
        try writeFile(directory("dumped.conf"), first.stdout)
        let second = try runAgent(.ours, ["-D"], environment: ["QGA_CONF": directory("dumped.conf")])
        expectBytes(second.stdout, first.stdout, "dump of the dump")
    }

    @Test("-D round trip: a list of several names comes back in the same order (7.2 reverses it)")
    func roundTripKeepsListOrder() throws {
        let directory = try TemporaryDirectory()
        let first = try runAgent(.ours, ["-b", "a,b", "-b", "c", "-a", "x;y", "-D"], environment: ["QGA_CONF": directory("absent")])
        #expect(first.out.hasSuffix("\nblock-rpcs=a,b,c\nallow-rpcs=x,y\n"), "\(first)")
        try writeFile(directory("dumped.conf"), first.stdout)
        let second = try runAgent(.ours, ["-D"], environment: ["QGA_CONF": directory("dumped.conf")])
        expectBytes(second.stdout, first.stdout, "dump of the dump")
    }
}

extension DaemonDumpTests {
    /// Beyond qemu-ga: our own keys come after `fsfreeze-hook` (a plain
    /// configuration dumps as qemu-ga's, see above); lists accumulate from
    /// the file and each option given; the dump reads back the same.
    @Test("-D: our own settings only when set, and the dump reads back the same")
    func ownSettings() throws {
        let directory = try TemporaryDirectory()
        let config = try directory.write("qemu-ga.conf", "[general]\nexec-allow=/usr/bin/*\nexclude-interfaces=lo\nexec-timeout=5\n")
        let first = try runAgent(.ours, ["--exec-allow=/opt/*;/srv/x", "--exclude-interfaces=veth*", "--exec-timeout=30",
                                         "--open-allow=", "--fs=/h", "--log=/l", "--dump"], environment: ["QGA_CONF": config])
        #expect(first.exitStatus == 0 && first.stderr.isEmpty, "\(first)")
        expectBytes(first.stdout, Bytes("""
            [general]
            daemon=false
            method=virtio-serial
            path=/dev/virtio-ports/org.qemu.guest_agent.0
            logfile=/l
            pidfile=/var/run/qemu-ga.pid
            fsfreeze-hook=/h
            exec-timeout=30
            exclude-interfaces=lo,veth*
            exec-allow=/usr/bin/*,/opt/*,/srv/x
            open-allow=
            statedir=/var/run
            verbose=false
            retry-path=false
            block-rpcs=
            allow-rpcs=

            """.utf8), "-D with our own settings")
        try writeFile(directory("dumped.conf"), first.stdout)
        let second = try runAgent(.ours, ["-D"], environment: ["QGA_CONF": directory("dumped.conf")])
        expectBytes(second.stdout, first.stdout, "dump of the dump")
    }
}

extension String {
    func replacingOccurrences(_ target: String, with replacement: String) -> String {
        replacing(target, with: replacement)
    }
}

extension NeedsSystem {
    /// The tests above that compare with qemu-ga 7.2, and our agent's
    /// cases run on 7.2 itself: its answers are what ours are held to.
    @Suite("Daemon: -D dump, on qemu-ga 7.2") struct DaemonDumpTestsNeedingSystem {
        @Test("-D: byte-identical to 7.2 plus allow-rpcs=", arguments: DaemonDumpTests.differentialInputs)
        func differential(name: String, arguments: [String], config: String?) throws {
            let directory = try TemporaryDirectory()
            let expand = { (text: String) in text.replacingOccurrences("$DIR", with: directory.path) }
            var environment: [String: String?] = ["QGA_CONF": directory("absent.conf")]
            if let config { environment["QGA_CONF"] = try directory.write("qemu-ga.conf", expand(config)) }
            let ours = try runAgent(.ours, arguments.map(expand) + ["-D"], environment: environment)
            let reference = try runAgent(.reference, arguments.map(expand) + ["-D"], environment: environment)
            #expect(reference.exitStatus == 0, "\(reference)")
            #expect(ours.exitStatus == 0, "\(ours)")
            expectBytes(ours.stdout, reference.stdout + Bytes("allow-rpcs=\n".utf8), "\(name): ours (actual) vs 7.2 (expected)")
            expectBytes(ours.stderr, reference.stderr, "\(name): stderr")
        }

        // The cases of our agent above, on qemu-ga 7.2 (the same bodies).

        @Test(arguments: DaemonDumpTests.commandLineCases)
        func commandLine(testCase: DaemonDumpTests.Case) throws { try DaemonDumpTests().commandLine(kind: .reference, testCase: testCase) }

        @Test func defaultConfigPath() throws { try DaemonDumpTests().defaultConfigPath(kind: .reference) }

        @Test(arguments: DaemonDumpTests.roundTripCases.map { $0.0 })
        func roundTrip(name: String) throws { try DaemonDumpTests().roundTrip(kind: .reference, name: name) }
    }
}

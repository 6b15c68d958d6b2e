import Glibc
import Testing
@testable import GuestAgent

/// Our own settings, as keys and as long options: the fsfreeze safety net
/// (`thaw-after`, `kill-hook-after`), the operators' policies
/// (`exec-timeout`, `exclude-interfaces`, `exec-allow`, `open-allow`) and
/// `exec-output-budget`.
@Suite struct ControlConfigTests {
    private func configure(_ arguments: [String], config: String = "") -> StartupAction {
        var template = Array("/tmp/qga-conf-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        let bytes = Array(config.utf8)
        _ = write(fd, bytes, bytes.count)
        close(fd)
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { unlink(path) }
        return AgentCommandLine.configure(arguments: ["qemu-ga"] + arguments, environment: ["QGA_CONF": path])
    }

    private func config(_ action: StartupAction, sourceLocation: SourceLocation = #_sourceLocation) -> GAConfig? {
        guard case .run(let config) = action else {
            Issue.record("expected to run, got \(action)", sourceLocation: sourceLocation)
            return nil
        }
        return config
    }

    @Test func optionsAndKeys() {
        #expect(config(configure([]))?.thawAfter == nil)
        #expect(config(configure([]))?.killHookAfter == nil)
        let fromOptions = config(configure(["--thaw-after=300", "--kill-hook-after", "20"]))
        #expect(fromOptions?.thawAfter == 300 && fromOptions?.killHookAfter == 20)
        let fromFile = config(configure([], config: "[general]\nthaw-after=60\nkill-hook-after=0\n"))
        #expect(fromFile?.thawAfter == 60 && fromFile?.killHookAfter == 0)
        // The command line wins; 0 switches a file's setting off.
        #expect(config(configure(["--thaw-after=0"], config: "[general]\nthaw-after=60\n"))?.thawAfter == 0)
        // Abbreviations, as getopt allows them.
        #expect(config(configure(["--thaw=5", "--kill=6"]))?.killHookAfter == 6)
    }

    @Test func execOutputBudget() {
        let plain = config(configure([]))
        #expect(plain?.execOutputBudget == nil && plain?.execOutputBudgetBytes == 256 << 20)
        #expect(config(configure(["--exec-output-budget=1"]))?.execOutputBudgetBytes == 1 << 20)
        #expect(config(configure([], config: "[general]\nexec-output-budget=4096\n"))?.execOutputBudgetBytes == 4 << 30)
        // 0: no budget at all.
        let unbounded = config(configure(["--exec-output-budget", "0"]))
        #expect(unbounded?.execOutputBudget == 0 && unbounded?.execOutputBudgetBytes == nil)
        // The last one wins, the command line over the file.
        #expect(config(configure(["--exec-output-budget=1", "--exec-output=2"], config: "[general]\nexec-output-budget=3\n"))?
            .execOutputBudget == 2)
    }

    @Test func policyOptionsAndKeys() {
        let plain = config(configure([]))
        #expect(plain?.execTimeout == nil && plain?.excludedInterfaces == nil && plain?.execAllow == nil && plain?.openAllow == nil)
        let fromFile = config(configure([], config: """
            [general]
            exec-timeout=30
            exclude-interfaces=veth*;docker?,lo
            exec-allow=/usr/bin/*
            open-allow=/srv/*,/tmp/x
            """))
        #expect(fromFile?.execTimeout == 30)
        #expect(fromFile?.excludedInterfaces == ["veth*", "docker?", "lo"])
        #expect(fromFile?.execAllow == ["/usr/bin/*"])
        #expect(fromFile?.openAllow == ["/srv/*", "/tmp/x"])
        // A repeated option adds to the list, after the file's items, as -b does.
        let both = config(configure(["--exec-allow=/bin/sh", "--exec-allow", "/sbin/*;/opt/*", "--exec-timeout=5",
                                     "--exclude-interfaces=cali*", "--open-allow=/var/*"],
                                    config: "[general]\nexec-allow=/usr/bin/*\nexec-timeout=30\nexclude-interfaces=lo\n"))
        #expect(both?.execAllow == ["/usr/bin/*", "/bin/sh", "/sbin/*", "/opt/*"])
        #expect(both?.execTimeout == 5)
        #expect(both?.excludedInterfaces == ["lo", "cali*"])
        #expect(both?.openAllow == ["/var/*"])
        // Given empty, an allow list is set and allows nothing.
        #expect(config(configure(["--exec-allow="]))?.execAllow == [])
        #expect(config(configure([], config: "[general]\nopen-allow=\n"))?.openAllow == [])
        // Unique prefixes of our own.
        let abbreviated = config(configure(["--exc=eth9", "--exec-a=/x", "--exec-t=7", "--o=/y"]))
        #expect(abbreviated?.excludedInterfaces == ["eth9"] && abbreviated?.execAllow == ["/x"])
        #expect(abbreviated?.execTimeout == 7 && abbreviated?.openAllow == ["/y"])
    }

    /// qemu-ga's own abbreviations stay unambiguous: no new option shares
    /// a first letter with one of qemu-ga's.
    @Test func qemuGasAbbreviationsStillWork() {
        #expect(config(configure(["--f=/hook"]))?.fsfreezeHook == "/hook")
        #expect(config(configure(["--fsfreeze=/hook"]))?.fsfreezeHook == "/hook")
        #expect(config(configure(["--fs=/hook"]))?.fsfreezeHook == "/hook")
        #expect(config(configure(["--s=/state"]))?.stateDirectory == "/state")
        #expect(config(configure(["--log=/l"]))?.logFile == "/l")
        #expect(config(configure(["--l=/l"]))?.logFile == "/l")
        #expect(config(configure(["--dump"]))?.dumpConfig == true)
        #expect(config(configure(["--dum"]))?.dumpConfig == true)
        #expect(config(configure(["--m=isa-serial"]))?.method == "isa-serial")
        #expect(config(configure(["--a=guest-ping"]))?.allowedRPCs == ["guest-ping"])
        #expect(config(configure(["--b=guest-ping"]))?.blockedRPCs == ["guest-ping"])
        #expect(config(configure(["--r"]))?.retryPath == true)
        // Among our own options, getopt refuses an ambiguous prefix.
        #expect(configure(["--exec=1"]) == .exit(status: 1, output: "Unknown option, try 'qemu-ga --help' for more information.\n"))
    }

    @Test(arguments: [["--thaw-after=-1"], ["--thaw-after=x"], ["--kill-hook-after="], ["--kill-hook-after=99999999999"],
                      ["--exec-timeout=-3"], ["--exec-timeout=1s"],
                      ["--exec-output-budget=-1"], ["--exec-output-budget=1.5"], ["--exec-output-budget=lots"]])
    func badNumbersStopTheAgent(arguments: [String]) {
        #expect(configure(arguments) == .exit(status: 1, output: ""))
    }

    @Test(arguments: ["[general]\nthaw-after=-5\n", "[general]\nkill-hook-after=soon\n", "[general]\nexec-timeout=-1\n",
                      "[general]\nexec-allow=\\q\n", "[general]\nexec-output-budget=-1\n", "[general]\nexec-output-budget=1M\n"])
    func badKeysStopTheAgent(text: String) {
        #expect(configure([], config: text) == .exit(status: 1, output: ""))
    }

    /// In -D only when set, so a plain configuration dumps as qemu-ga's; the
    /// dump reads back as the same configuration.
    @Test func dump() {
        let plain = config(configure(["-F"]))?.dump() ?? ""
        for setting in GAConfig.ownSettings {
            #expect(!plain.contains(setting.key), "\(setting.key) in \(plain)")
        }
        let first = config(configure(["-m", "virtio-serial", "-F/hook", "--thaw-after=120", "--kill-hook-after=0",
                                      "--exec-output-budget=64"]))
        let dumped = first?.dump() ?? ""
        #expect(dumped.contains("fsfreeze-hook=/hook\nthaw-after=120\nkill-hook-after=0\nexec-output-budget=64\nstatedir="), "\(dumped)")
        let second = config(configure([], config: dumped))
        #expect(second == first)
        #expect(second?.dump() == dumped)
    }

    @Test func dumpOfThePolicies() {
        let first = config(configure(["-m", "virtio-serial", "--exec-timeout=9", "--exclude-interfaces=veth*;lo",
                                      "--exec-allow=/usr/bin/*", "--exec-allow= /opt/x", "--open-allow="]))
        let dumped = first?.dump() ?? ""
        #expect(dumped.contains("\nexec-timeout=9\nexclude-interfaces=veth*,lo\nexec-allow=/usr/bin/*, /opt/x\nopen-allow=\nstatedir="),
                "\(dumped)")
        let second = config(configure([], config: dumped))
        #expect(second == first)
        #expect(second?.openAllow == [])
        #expect(second?.dump() == dumped)
    }

    @Test func helpDescribesThem() {
        guard case .exit(0, let text) = configure(["--help"]) else {
            Issue.record("no help")
            return
        }
        #expect(text.contains("--thaw-after=SECONDS") && text.contains("--kill-hook-after=SECONDS")
                && text.contains("--exec-output-budget=MiB"))
        for option in ["--exec-timeout=SECONDS", "--exclude-interfaces=LIST", "--exec-allow=LIST", "--open-allow=LIST"] {
            #expect(text.contains("\n      \(option)\n"), "\(option)")
        }
    }
}

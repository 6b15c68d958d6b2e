import Glibc
import GuestAgent
import MachineFixtures
import QMPJSON

/// The machine the dispatcher fuzzer's agent manages: a temporary tree created
/// at start-up (in `$TMPDIR`) and removed at exit. No request reaches the real
/// machine; command by command (grouped by the way each reaches the machine):
///
/// - Through the fixture machine (`SystemEnvironment.fixture(root:)`):
///   everything under /proc, /sys, /etc, home directories and utmp, the clock
///   (`<root>/settimeofday`), and every program the agent runs to completion
///   (hwclock, poweroff/halt/reboot/shutdown, chpasswd, systemctl, pm-utils),
///   which are the fakes below or missing. guest-set-time, -shutdown,
///   -suspend-*, -set-vcpus, -set-memory-blocks, -set-user-password and the
///   guest-ssh-* commands therefore run for real, on the tree. The SSH-key
///   commands only know the user `fuzz` of `<root>/etc/passwd`, whose home is
///   in the tree.
/// - fsfreeze and fstrim act on the mount list, which is `<root>/proc/self/
///   mountinfo`: it is empty, so no FIFREEZE or FITRIM is ever issued (a
///   mount point of the tree would be a directory of the real filesystem the
///   tree lives on). No fsfreeze hook is configured.
/// - Not through the system root, so rewritten by `confine` before dispatch:
///   guest-file-open's `path` (the host's own path) becomes one of the files
///   of `<tree>/files` (regular files, a directory, a FIFO, a missing one) or
///   /dev/full (harmless: writes fail with ENOSPC, truncation is ignored);
///   guest-exec's `path` becomes one of the programs of `<tree>/bin` (a
///   script that echoes and reads its input, one that exits at once, a file
///   that is not executable, a missing one), and each string of its `env`
///   becomes `FUZZn=1`, so no loader or shell variable of the host's choosing
///   reaches the child (the scripts use shell built-ins only). A path or env
///   that is not a string (or not a list) is kept: argument decoding rejects
///   it before the command runs, and that rejection is what is exercised.
///   `arg` reaches only our scripts, which ignore it.
/// - The working directory stays where libFuzzer writes its corpus: no path
///   from the host is used relative to it (the two above become absolute,
///   and programs the agent runs have fixed absolute names or are searched
///   in the tree).
/// - Commands are matched as the dispatcher matches them
///   (`CommandRegistry.entry(named:)`), and members as the argument decoder
///   does (byte for byte), so nothing slips past the rewrite.
///
/// No command is blocked: every registered command's arguments are decoded
/// and the command run.
@MainActor
final class FixtureMachine {
    let tree: String
    let agent: GAState
    private let fileTargets: [String]
    private let programTargets: [String]

    init() {
        let temporary = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array((temporary + "/qga-fuzz.XXXXXX").utf8CString)
        guard mkdtemp(&template) != nil else { fatalError("mkdtemp failed: errno \(errno)") }
        let tree = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        self.tree = tree
        let root = tree + "/root"
        let uid = getuid(), gid = getgid()
        let exitAtOnce = "#!/bin/sh\nexit 0\n"
        let files: [(String, String, mode_t)] = [
            ("root/proc/self/mountinfo", "", 0o644),
            ("root/proc/self/mounts", "", 0o644),
            ("root/proc/stat", "cpu  1 2 3 4 5 6 7 8 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\ncpu1 9 8 7 6 5 4 3 2 1 0\nintr 1\n", 0o644),
            ("root/proc/loadavg", "0.10 0.20 0.30 1/100 1234\n", 0o644),
            ("root/proc/diskstats", "   8       0 vda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n", 0o644),
            ("root/proc/net/dev", "Inter-|   Receive\n face |bytes\n    lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", 0o644),
            ("root/proc/net/route", "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n", 0o644),
            ("root/proc/net/ipv6_route", "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n", 0o644),
            ("root/sys/devices/system/cpu/cpu0/topology/core_id", "0\n", 0o644),
            ("root/sys/devices/system/cpu/cpu1/online", "1\n", 0o644),
            ("root/sys/devices/system/memory/block_size_bytes", "8000000\n", 0o644),
            ("root/sys/devices/system/memory/memory0/state", "online\n", 0o644),
            ("root/sys/devices/system/memory/memory0/removable", "0\n", 0o644),
            ("root/sys/devices/system/memory/memory1/state", "offline\n", 0o644),
            ("root/sys/devices/system/memory/memory1/removable", "1\n", 0o644),
            ("root/sys/power/state", "freeze mem disk\n", 0o644),
            ("root/sys/power/disk", "[platform] shutdown reboot suspend\n", 0o644),
            ("root/sys/class/net/eth0/address", "52:54:00:12:34:56\n", 0o644),
            ("root/getifaddrs", "lo 127.0.0.1 255.0.0.0\neth0 10.0.0.2 255.255.255.0\neth0 fe80::1 ffff:ffff:ffff:ffff::\n", 0o644),
            ("root/etc/passwd", "fuzz:x:\(uid):\(gid)::/home/fuzz:/bin/sh\n", 0o644),
            ("root/etc/os-release", "ID=fuzz\nNAME=\"Fuzz OS\"\nVERSION_ID=1\n", 0o644),
            ("root/home/fuzz/.ssh/authorized_keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA fuzz@host\n", 0o600),
            ("root/sbin/poweroff", exitAtOnce, 0o755),
            ("root/sbin/halt", exitAtOnce, 0o755),
            ("root/sbin/reboot", exitAtOnce, 0o755),
            ("root/sbin/hwclock", exitAtOnce, 0o755),
            ("root/usr/sbin/chpasswd", "#!/bin/sh\nwhile read -r line; do :; done\nexit 0\n", 0o755),
            ("files/f0", "hello\nworld\n", 0o644),
            ("files/f1", "", 0o644),
            ("bin/echo", "#!/bin/sh\necho out\necho err >&2\nwhile read -r line; do echo \"$line\"; done\nexit 3\n", 0o755),
            ("bin/quit", exitAtOnce, 0o755),
            ("bin/plain", exitAtOnce, 0o644),
        ]
        for (path, content, mode) in files { Self.write(tree + "/" + path, content, mode: mode) }
        Self.makeDirectories(tree + "/root/sys/block")
        Self.makeDirectories(tree + "/state")
        guard mkfifo(tree + "/files/fifo", 0o644) == 0 else { fatalError("mkfifo") }
        fileTargets = ["f0", "f1", "f2", "f3", "fifo", "", "missing/f"].map { tree + "/files/" + $0 } + ["/dev/full"]
        programTargets = ["echo", "quit", "plain", "missing"].map { tree + "/bin/" + $0 }

        var config = GAConfig()
        config.stateDirectory = tree + "/state"
        let log = GALog()
        log.verbose = true  // every log line is formatted, then written to /dev/null
        try! log.openFile("/dev/null")
        let state = try! PersistentState.load(directory: config.stateDirectory, create: true)
        let system = SystemEnvironment.fixture(root: root)
        precondition(root.count > 1 && system.path("/") == root + "/")
        agent = GAState(config: config, system: system, log: log, persistentState: state)
    }

    /// The request as the agent may run it: see the type's comment.
    func confine(_ request: JSONValue) -> JSONValue {
        request.rewritingArguments(for: agent.commands) { command, arguments in
            switch command {
            case "guest-file-open":
                if case .string(let path)? = arguments["path"] { arguments["path"] = .string(pick(fileTargets, for: path)) }
            case "guest-exec":
                if case .string(let path)? = arguments["path"] { arguments["path"] = .string(pick(programTargets, for: path)) }
                if case .array(let environment)? = arguments["env"] {
                    arguments["env"] = .array(environment.enumerated().map { index, entry in
                        if case .string = entry { .string("FUZZ\(index)=1") } else { entry }
                    })
                }
            default:
                return false
            }
            return true
        }
    }

    /// Removes the tree.
    func remove() {
        Self.removeTree(tree)
    }

    /// The same choice for the same host path, so that inputs replay.
    private func pick(_ targets: [String], for path: String) -> String {
        var hash: UInt64 = 14_695_981_039_346_656_037
        for byte in path.utf8 { hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211 }
        return targets[Int(hash % UInt64(targets.count))]
    }

    private static func makeDirectories(_ path: String) {
        var prefix = ""
        for component in path.split(separator: "/") {
            prefix += "/" + component
            _ = mkdir(prefix, 0o755)
        }
    }

    private static func write(_ path: String, _ content: String, mode: mode_t) {
        makeDirectories(String(path[..<path.lastIndex(of: "/")!]))
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { fatalError("cannot create \(path)") }
        let bytes = Array(content.utf8)
        precondition(bytes.isEmpty || Glibc.write(fd, bytes, bytes.count) == bytes.count)
        fchmod(fd, mode)
        close(fd)
    }

    private static func removeTree(_ path: String) {
        if let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { removeTree(path + "/" + name) }
            }
            closedir(directory)
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}

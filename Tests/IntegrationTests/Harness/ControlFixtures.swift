#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing

// The machine the control commands act on, for the test-only build of the
// agent (qemu-ga-fixture): a fixture tree given as `QGA_SYSTEM_ROOT`, with
// fake programs that record their calls, and at most loop-mounted images of our own. Nothing here lets a
// command reach this machine's filesystems, clock, CPUs, power or accounts:
// the agent finds every program, mount table and sysfs file inside the
// tree, and the only filesystems in a fixture mount table are our loops.

final class FixtureRoot {
    private let scratch: TemporaryDirectory
    private var loops: [LoopFilesystem] = []
    /// The directory that stands for `/`.
    let root: String

    init() throws {
        scratch = try TemporaryDirectory()
        root = scratch("root")
        try makeDirectory(root)
    }

    deinit {
        // Thawed and unmounted before the tree is removed.
        for loop in loops.reversed() { loop.unmount() }
    }

    func path(_ machinePath: String) -> String { root + machinePath }

    /// The agent's environment: this root, and a PATH whose directories the
    /// agent looks up inside it.
    var environment: [String: String?] {
        ["QGA_SYSTEM_ROOT": root, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
    }

    func write(_ machinePath: String, _ text: String, mode: mode_t = 0o644) throws {
        let real = path(machinePath)
        try makeDirectory(String(real[..<real.lastIndex(of: "/")!]))
        try writeFile(real, Bytes(text.utf8))
        chmod(real, mode)
    }

    func program(_ machinePath: String, _ body: String) throws {
        try write(machinePath, "#!/bin/sh\n" + body + "\n", mode: 0o755)
    }

    /// A fake program appending `<name> <arguments>` (and with `input`,
    /// `<name> stdin: <what it read>`) to /calls, then exiting with `status`.
    func fake(_ machinePath: String, status: Int32 = 0, input: Bool = false) throws {
        var body = #"echo "$(basename "$0")${*:+ $*}" >> '\#(path("/calls"))'"#
        if input { body += "\n" + #"echo "$(basename "$0") stdin: $(cat)" >> '\#(path("/calls"))'"# }
        try program(machinePath, body + "\nexit \(status)")
    }

    var calls: [String] {
        String(decoding: readFile(path("/calls")) ?? [], as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// A hook at /etc/qemu/fsfreeze-hook that logs its argument to /calls as
    /// `hook <arg>` and then runs `freeze` or `thaw` (shell).
    func hook(freeze: String = "exit 0", thaw: String = "exit 0") throws {
        try program("/etc/qemu/fsfreeze-hook", """
            echo "hook $1" >> '\(path("/calls"))'
            if [ "$1" = freeze ]; then
            \(freeze)
            else
            \(thaw)
            fi
            """)
    }

    /// An ext4 image loop-mounted at `mountPoint` inside the tree, and a
    /// mount table that lists that mount only.
    @discardableResult
    func mountLoop(at mountPoint: String = "/mnt/data") throws -> LoopFilesystem {
        let loop = try LoopFilesystem(image: scratch("image\(loops.count)"), mountPoint: path(mountPoint))
        loops.append(loop)
        try write("/proc/self/mountinfo", "40 1 \(loop.major):\(loop.minor) / \(mountPoint) rw,relatime - ext4 \(loop.device) rw\n")
        return loop
    }
}

/// An ext4 image of ours, mounted through a loop device: root, mkfs.ext4
/// and loop devices (the tests that use it are in `NeedsSystem`).
final class LoopFilesystem {
    let mountPoint: String
    let device: String
    let major: Int
    let minor: Int
    private var mounted = true

    init(image: String, mountPoint: String) throws {
        self.mountPoint = mountPoint
        try makeDirectory(mountPoint)
        let truncate = try run(["/usr/bin/truncate", "-s", "32M", image])
        guard truncate.status == 0 else { throw HarnessError("truncate: \(truncate.output)") }
        let mkfs = try run(["/sbin/mkfs.ext4", "-q", "-F", image])
        guard mkfs.status == 0 else { throw HarnessError("mkfs.ext4 failed (the loop tests need e2fsprogs): \(mkfs.output)") }
        let mount = try run(["/bin/mount", "-o", "loop", image, mountPoint])
        guard mount.status == 0 else {
            throw HarnessError("mount -o loop failed: \(mount.output)(the fsfreeze and fstrim tests need root and loop devices)")
        }
        // The mount's device numbers, as the kernel's mount table says.
        let table = String(decoding: readFile("/proc/self/mountinfo") ?? [], as: UTF8.self)
        guard let line = table.split(separator: "\n").last(where: { $0.split(separator: " ")[4] == mountPoint }) else {
            throw HarnessError("\(mountPoint) is not in /proc/self/mountinfo")
        }
        let fields = line.split(separator: " ")
        let numbers = fields[2].split(separator: ":")
        guard numbers.count == 2, let major = Int(numbers[0]), let minor = Int(numbers[1]), major != 0,
              let separator = fields.firstIndex(of: "-"), fields[separator + 2].hasPrefix("/dev/loop")
        else { throw HarnessError("unexpected mount of \(mountPoint): \(line)") }
        self.major = major
        self.minor = minor
        device = String(fields[separator + 2])
    }

    deinit { unmount() }

    func unmount() {
        guard mounted else { return }
        mounted = false
        _ = try? run(["/sbin/fsfreeze", "--unfreeze", mountPoint])
        _ = try? run(["/bin/umount", mountPoint])
    }

    /// Whether the kernel has this filesystem frozen: FIFREEZE on a frozen
    /// filesystem fails with EBUSY (one that was not frozen is thawed again
    /// at once).
    func isFrozen() throws -> Bool {
        let freeze = try run(["/sbin/fsfreeze", "--freeze", mountPoint])
        if freeze.status == 0 {
            _ = try run(["/sbin/fsfreeze", "--unfreeze", mountPoint])
            return false
        }
        guard freeze.output.contains("Device or resource busy") else { throw HarnessError("fsfreeze: \(freeze.output)") }
        return true
    }

    /// Freezes it from outside the agent.
    func freeze() throws {
        let freeze = try run(["/sbin/fsfreeze", "--freeze", mountPoint])
        guard freeze.status == 0 else { throw HarnessError("fsfreeze --freeze: \(freeze.output)") }
    }
}

/// Runs a program to completion; its exit status (-1 if killed) and output.
func run(_ argv: [String], timeout: Duration = .seconds(60)) throws -> (status: Int32, output: String) {
    let scratch = try TemporaryDirectory()
    let pid = try spawnProcess(executable: argv[0], argv: argv, environment: agentEnvironment(), stdout: scratch("out"), stderr: nil)
    guard let status = waitForChild(pid, timeout: timeout) else {
        kill(pid, SIGKILL)
        _ = waitForChild(pid, timeout: .seconds(5))
        throw HarnessError("\(argv) did not finish within \(timeout)")
    }
    return (exitCode(of: status) ?? -1, String(decoding: readFile(scratch("out")) ?? [], as: UTF8.self))
}

func makeDirectory(_ path: String) throws {
    var current = ""
    for component in path.split(separator: "/") {
        current += "/" + component
        if mkdir(current, 0o755) != 0 && errno != EEXIST { throw HarnessError("mkdir \(current): \(errnoText())") }
    }
}

/// Our agent on a fixture machine (never on this one).
func withFixtureAgent<R>(
    _ fixture: FixtureRoot, extraArguments: [String] = [], prepare: ((String) throws -> Void)? = nil,
    launcher: ((String) -> [String])? = nil, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: (Agent) throws -> R
) throws -> R {
    let agent = try fixtureAgent(fixture, extraArguments: extraArguments, prepare: prepare, launcher: launcher)
    defer { agent.finish(sourceLocation: sourceLocation) }
    return try body(agent)
}

func fixtureAgent(
    _ fixture: FixtureRoot, extraArguments: [String] = [], prepare: ((String) throws -> Void)? = nil,
    launcher: ((String) -> [String])? = nil
) throws -> Agent {
    let environment = fixture.environment
    precondition(environment["QGA_SYSTEM_ROOT"]??.count ?? 0 > 1)
    return try Agent(.oursOnFixture, extraArguments: extraArguments, environment: environment, prepare: prepare, launcher: launcher)
}

/// A launcher that takes CAP_SYS_ADMIN (FIFREEZE, FITRIM) and CAP_SYS_TIME
/// (settimeofday, the RTC) and CAP_SYS_BOOT away from the agent: whatever a
/// command tries, it cannot freeze, trim, set the clock or reboot.
func withoutMachineCapabilities(_ directory: String) -> [String] {
    ["/usr/bin/setpriv", "--bounding-set=-sys_admin,-sys_time,-sys_boot", "--"]
}

extension Agent {
    /// Sends `request` and requires that no reply comes (a command that
    /// answers nothing on success), proven by a ping answered next.
    func expectNoReply(_ request: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let client = try connect()
        defer { client.close() }
        try client.send(request + Request.ping)
        let first = try client.receive(lines: 1, timeout: .seconds(20))
        expectBytes(first, wire(Reply.pong), "the first reply after \(request)", sourceLocation: sourceLocation)
        expectBytes(try client.receiveUntilQuiet(), [], "more replies", sourceLocation: sourceLocation)
    }
}

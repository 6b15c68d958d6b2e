import Testing
@testable import GuestAgent
import MachineFixtures

/// A stand-in for the kernel: the filesystem ioctls never reach a real
/// filesystem (a frozen count per mount point instead), every other call is
/// the real one on the fixture tree unless `faults` names it. Each call is
/// recorded, with the machine path it concerns.
nonisolated final class FakeKernel: SystemCalls, @unchecked Sendable {
    enum Call: Hashable, CustomStringConvertible {
        case open(String), read(String), write(String), freeze(String), thaw(String), trim(String)

        var description: String {
            switch self {
            case .open(let path): "open \(path)"
            case .read(let path): "read \(path)"
            case .write(let path): "write \(path)"
            case .freeze(let path): "freeze \(path)"
            case .thaw(let path): "thaw \(path)"
            case .trim(let path): "trim \(path)"
            }
        }
    }

    private let root: String
    /// The error a call fails with, by call.
    var faults: [Call: SystemError] = [:]
    /// What `read` returns instead of the file's bytes, by path.
    var reads: [String: [UInt8]] = [:]
    private(set) var calls: [Call] = []
    private(set) var frozen: [String: Int] = [:]
    private var paths: [FileDescriptor: String] = [:]

    init(root: String) { self.root = root }

    private func machinePath(_ path: String) -> String {
        path.hasPrefix(root) ? String(path.dropFirst(root.count)) : path
    }

    private func perform(_ call: Call) throws(SystemError) {
        calls.append(call)
        if let fault = faults[call] { throw fault }
    }

    func open(
        _ path: String, _ mode: FileDescriptor.AccessMode, options: FileDescriptor.OpenOptions, permissions: UInt32,
        in directory: FileDescriptor?
    ) throws(SystemError) -> FileDescriptor {
        let name = directory.flatMap { paths[$0] }.map { $0 + "/" + path } ?? machinePath(path)
        try perform(.open(name))
        let fd = try FileDescriptor.open(path, mode, options: options, permissions: permissions, in: directory)
        paths[fd] = name
        return fd
    }

    func close(_ fd: FileDescriptor) {
        paths[fd] = nil
        fd.close()
    }

    func read(_ fd: FileDescriptor, upTo count: Int, at offset: Int64?) throws(SystemError) -> [UInt8] {
        let path = paths[fd] ?? "?"
        try perform(.read(path))
        if let bytes = reads[path] { return Array(bytes.prefix(count)) }
        return try fd.read(upTo: count, at: offset)
    }

    func write(_ fd: FileDescriptor, _ bytes: [UInt8], at offset: Int64?) throws(SystemError) -> Int {
        try perform(.write(paths[fd] ?? "?"))
        return try fd.write(bytes, at: offset)
    }

    func freezeFilesystem(_ fd: FileDescriptor) throws(SystemError) {
        let path = paths[fd] ?? "?"
        try perform(.freeze(path))
        // A second FIFREEZE of a frozen filesystem is EBUSY, as the kernel says.
        if frozen[path, default: 0] > 0 { throw .busy }
        frozen[path, default: 0] += 1
    }

    func thawFilesystem(_ fd: FileDescriptor) throws(SystemError) {
        let path = paths[fd] ?? "?"
        try perform(.thaw(path))
        guard frozen[path, default: 0] > 0 else { throw .invalidArgument }
        frozen[path, default: 0] -= 1
    }

    func trimFilesystem(_ fd: FileDescriptor, minimum: UInt64) throws(SystemError) -> TrimmedRange {
        try perform(.trim(paths[fd] ?? "?"))
        return TrimmedRange(trimmed: 1 << 20, minimum: max(minimum, 4096))
    }

    func setTime(seconds: Int, microseconds: Int) throws(SystemError) {
        Issue.record("the clock is not part of these tests")
        throw .operationNotPermitted
    }
}

/// The error paths of FIFREEZE, FITHAW, FITRIM and sysfs attributes, as the
/// kernel reports them, through the machine's system calls: no root, no
/// device, no filesystem is touched.
@Suite struct SystemCallFaultTests {
    /// A tree whose mount table lists `mountPoints` (directories of the
    /// tree, children after parents), and the fake kernel under it.
    static func machine(mountPoints: [String]) throws -> (FixtureTree, FakeKernel) {
        let machine = try FixtureTree()
        var table = ""
        for (index, mountPoint) in mountPoints.enumerated() {
            try machine.directory(mountPoint)
            table += "\(30 + index) 1 8:\(index) / \(mountPoint) rw - ext4 /dev/sda\(index) rw\n"
        }
        try machine.file("/proc/self/mountinfo", table)
        let kernel = FakeKernel(root: machine.root)
        machine.kernel = kernel
        return (machine, kernel)
    }

    @Test func freezeCountsWhatFroze() throws {
        let (machine, kernel) = try Self.machine(mountPoints: ["/", "/data", "/srv"])
        let agent = machine.agent()
        expectReturn("guest-fsfreeze-freeze", "3", agent: agent)
        // Children before their parents.
        #expect(kernel.calls.filter { if case .freeze = $0 { true } else { false } }
                    == [.freeze("/srv"), .freeze("/data"), .freeze("/")])
        #expect(agent.isFrozen)
        // Each frozen filesystem is thawed until the kernel says EINVAL.
        expectReturn("guest-fsfreeze-thaw", "3", agent: agent)
        #expect(kernel.frozen.values.allSatisfy { $0 == 0 })
        #expect(kernel.calls.filter { if case .thaw("/data") = $0 { true } else { false } }.count == 2)
        #expect(!agent.isFrozen)
    }

    /// EBUSY (a second mount of a frozen filesystem) and EOPNOTSUPP (a
    /// filesystem that cannot freeze) are passed over, uncounted.
    @Test(arguments: [SystemError.busy, .notSupported])
    func busyAndUnsupportedAreNotCounted(_ error: SystemError) throws {
        let (machine, kernel) = try Self.machine(mountPoints: ["/", "/data"])
        kernel.faults[.freeze("/data")] = error
        let agent = machine.agent()
        expectReturn("guest-fsfreeze-freeze", "1", agent: agent)
        #expect(agent.isFrozen)
        expectReturn("guest-fsfreeze-thaw", "1", agent: agent)
    }

    /// Nothing freezes: the agent does not enter frozen mode.
    @Test func nothingFrozenIsNotFrozenMode() throws {
        let (machine, kernel) = try Self.machine(mountPoints: ["/"])
        kernel.faults[.freeze("/")] = .notSupported
        let agent = machine.agent()
        expectReturn("guest-fsfreeze-freeze", "0", agent: agent)
        #expect(!agent.isFrozen)
    }

    /// Any other failure fails the command and thaws what froze before it.
    @Test func aFailedFreezeThawsEverything() throws {
        let (machine, kernel) = try Self.machine(mountPoints: ["/", "/data", "/srv"])
        kernel.faults[.freeze("/data")] = .operationNotPermitted
        let agent = machine.agent()
        expectError("guest-fsfreeze-freeze", "failed to freeze /data: Operation not permitted", agent: agent)
        #expect(kernel.frozen["/srv"] == 0)
        #expect(!agent.isFrozen)
        #expect(kernel.calls.contains(.thaw("/srv")))
    }

    @Test func aMountPointThatCannotBeOpened() throws {
        let (machine, kernel) = try Self.machine(mountPoints: ["/", "/data"])
        kernel.faults[.open("/data")] = .permissionDenied
        let agent = machine.agent()
        expectError("guest-fsfreeze-freeze", "failed to open /data: Permission denied", agent: agent)
        #expect(!agent.isFrozen)
        // The thaw passes over it.
        expectReturn("guest-fsfreeze-thaw", "0", agent: agent)
    }

    @Test func freezeListFreezesOnlyTheNamedMountPoints() throws {
        let (machine, kernel) = try Self.machine(mountPoints: ["/", "/data", "/srv"])
        let agent = machine.agent()
        let reply = replyLine("guest-fsfreeze-freeze-list", arguments: #"{"mountpoints":["/data","/nowhere"]}"#, agent: agent)
        #expect(reply == returnLine("1"))
        #expect(kernel.frozen == ["/data": 1])
        expectReturn("guest-fsfreeze-thaw", "1", agent: agent)
    }

    /// One result per mount point in reverse mount order; ENOTTY and
    /// EOPNOTSUPP say "trim not supported", other errors their text.
    @Test func trimResultsPerMountPoint() throws {
        let (machine, kernel) = try Self.machine(mountPoints: ["/", "/a", "/b", "/c", "/d"])
        kernel.faults[.trim("/a")] = .inappropriateControl
        kernel.faults[.trim("/b")] = .notSupported
        kernel.faults[.trim("/c")] = .ioError
        kernel.faults[.open("/d")] = .permissionDenied
        let agent = machine.agent()
        let reply = replyLine("guest-fstrim", arguments: #"{"minimum":512}"#, agent: agent)
        #expect(reply == returnLine(#"""
            {"paths": [{"path": "/d", "error": "failed to open: Permission denied"},
                       {"path": "/c", "error": "failed to trim: Input/output error"},
                       {"path": "/b", "error": "trim not supported"},
                       {"path": "/a", "error": "trim not supported"},
                       {"path": "/", "trimmed": 1048576, "minimum": 4096}]}
            """#))
    }

    static func cpu(_ machine: FixtureTree, online: String = "1\n") throws {
        try machine.file("/sys/devices/system/cpu/cpu1/online", online)
    }

    static let offlineCPU1 = #"{"vcpus":[{"logical-id":1,"online":false}]}"#

    @Test func aVCPUWriteTheKernelRefuses() throws {
        let (machine, kernel) = try Self.machine(mountPoints: [])
        try Self.cpu(machine)
        kernel.faults[.write("/sys/devices/system/cpu/cpu1//online")] = .operationNotPermitted
        let reply = replyLine("guest-set-vcpus", arguments: Self.offlineCPU1, agent: machine.agent())
        #expect(reply == errorLine(#"pwrite("/sys/devices/system/cpu/cpu1//online"): Operation not permitted"#))
    }

    @Test func aVCPUReadThatFailsOrIsShort() throws {
        let (machine, kernel) = try Self.machine(mountPoints: [])
        try Self.cpu(machine)
        let online = "/sys/devices/system/cpu/cpu1//online"
        kernel.reads[online] = []
        #expect(replyLine("guest-set-vcpus", arguments: Self.offlineCPU1, agent: machine.agent())
                    == errorLine(#"pread("\#(online)"): unexpected EOF"#))
        kernel.faults[.read(online)] = .ioError
        #expect(replyLine("guest-set-vcpus", arguments: Self.offlineCPU1, agent: machine.agent())
                    == errorLine(#"pread("\#(online)"): Input/output error"#))
        #expect(!kernel.calls.contains(.write(online)))
    }

    /// A memory block the kernel will not offline: operation-failed with
    /// the errno; a short `state` read gives error-code 0, as in qemu-ga.
    @Test func memoryBlockFaults() throws {
        let (machine, kernel) = try Self.machine(mountPoints: [])
        let block = "/sys/devices/system/memory/memory7/"
        try machine.file(block + "state", "online\n")
        kernel.faults[.write(block + "/state")] = .busy
        let request = #"{"mem-blks":[{"phys-index":7,"online":false}]}"#
        #expect(replyLine("guest-set-memory-blocks", arguments: request, agent: machine.agent())
                    == returnLine(#"[{"phys-index": 7, "response": "operation-failed", "error-code": 16}]"#))
        kernel.reads[block + "/state"] = []
        #expect(replyLine("guest-set-memory-blocks", arguments: request, agent: machine.agent())
                    == returnLine(#"[{"phys-index": 7, "response": "operation-failed", "error-code": 0}]"#))
    }
}

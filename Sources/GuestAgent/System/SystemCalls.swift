/// The kernel as commands see it: every system call a command makes on the
/// machine it manages goes through here, so that a test can stand in for the
/// kernel and make any call fail as the kernel would (FIFREEZE saying EBUSY,
/// a sysfs write saying EPERM, a short read) without root or a device.
///
/// Paths are the machine's real paths (`SystemEnvironment.path`). The
/// implementations below are the real calls; a conforming type overrides
/// only what it changes. Setting the clock has no default, so that no
/// stand-in can reach the real clock by omission.
nonisolated package protocol SystemCalls: Sendable {
    func open(
        _ path: String, _ mode: FileDescriptor.AccessMode, options: FileDescriptor.OpenOptions,
        permissions: UInt32, in directory: FileDescriptor?
    ) throws(SystemError) -> FileDescriptor
    func close(_ fd: FileDescriptor)
    func read(_ fd: FileDescriptor, upTo count: Int, at offset: Int64?) throws(SystemError) -> [UInt8]
    func write(_ fd: FileDescriptor, _ bytes: [UInt8], at offset: Int64?) throws(SystemError) -> Int
    func freezeFilesystem(_ fd: FileDescriptor) throws(SystemError)
    func thawFilesystem(_ fd: FileDescriptor) throws(SystemError)
    func trimFilesystem(_ fd: FileDescriptor, minimum: UInt64) throws(SystemError) -> TrimmedRange
    func status(_ path: String) throws(SystemError) -> FileStatus
    /// `access(path, X_OK)`.
    func isExecutable(_ path: String) -> Bool
    func makeDirectory(_ path: String, permissions: UInt32) throws(SystemError)
    func changeOwner(_ path: String, user: UInt32, group: UInt32) throws(SystemError)
    func changeMode(_ path: String, to permissions: UInt32) throws(SystemError)
    /// `settimeofday`.
    func setTime(seconds: Int, microseconds: Int) throws(SystemError)
}

nonisolated extension SystemCalls {
    package func open(
        _ path: String, _ mode: FileDescriptor.AccessMode, options: FileDescriptor.OpenOptions,
        permissions: UInt32, in directory: FileDescriptor?
    ) throws(SystemError) -> FileDescriptor {
        try FileDescriptor.open(path, mode, options: options, permissions: permissions, in: directory)
    }

    package func close(_ fd: FileDescriptor) { fd.close() }

    package func read(_ fd: FileDescriptor, upTo count: Int, at offset: Int64?) throws(SystemError) -> [UInt8] {
        try fd.read(upTo: count, at: offset)
    }

    package func write(_ fd: FileDescriptor, _ bytes: [UInt8], at offset: Int64?) throws(SystemError) -> Int {
        try fd.write(bytes, at: offset)
    }

    package func freezeFilesystem(_ fd: FileDescriptor) throws(SystemError) { try fd.freezeFilesystem() }
    package func thawFilesystem(_ fd: FileDescriptor) throws(SystemError) { try fd.thawFilesystem() }

    package func trimFilesystem(_ fd: FileDescriptor, minimum: UInt64) throws(SystemError) -> TrimmedRange {
        try fd.trimFilesystem(minimum: minimum)
    }

    package func status(_ path: String) throws(SystemError) -> FileStatus { try PathCalls.status(path) }
    package func isExecutable(_ path: String) -> Bool { PathCalls.isExecutable(path) }

    package func makeDirectory(_ path: String, permissions: UInt32) throws(SystemError) {
        try PathCalls.makeDirectory(path, permissions: permissions)
    }

    package func changeOwner(_ path: String, user: UInt32, group: UInt32) throws(SystemError) {
        try PathCalls.changeOwner(path, user: user, group: group)
    }

    package func changeMode(_ path: String, to permissions: UInt32) throws(SystemError) {
        try PathCalls.changeMode(path, to: permissions)
    }
}

/// The sequence open, call, close, which commands use on mount points and
/// device files; a stand-in sees each of the three calls.
nonisolated extension SystemCalls {
    /// Opens `path` read-only, runs `body` with it, closes it. The error
    /// says which step failed: callers word the two differently.
    func withOpened<R>(
        _ path: String, _ mode: FileDescriptor.AccessMode = .readOnly,
        _ body: (FileDescriptor) throws(SystemError) -> R
    ) throws(OpenedCallError) -> R {
        let fd: FileDescriptor
        do {
            fd = try open(path, mode, options: [], permissions: 0, in: nil)
        } catch {
            throw .open(error)
        }
        defer { close(fd) }
        do {
            return try body(fd)
        } catch {
            throw .call(error)
        }
    }
}

/// A failure of `withOpened`: opening the file, or the call made on it.
nonisolated enum OpenedCallError: Error {
    case open(SystemError)
    case call(SystemError)
}

/// The real kernel.
nonisolated package struct HostSystemCalls: SystemCalls {
    package init() {}

    package func setTime(seconds: Int, microseconds: Int) throws(SystemError) {
        try PathCalls.setTime(seconds: seconds, microseconds: microseconds)
    }
}

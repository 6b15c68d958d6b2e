import CGLib
import Glibc

/// An open file descriptor, in the manner of swift-system's: typed options
/// instead of C flags, every failure thrown as the `SystemError` of the call,
/// EINTR retried here once and for all. It is a plain value: whoever opened
/// it closes it.
///
/// Commands do not call these directly but through the machine's
/// `SystemCalls`, so that tests can stand in for the kernel.
nonisolated package struct FileDescriptor: Hashable, Sendable {
    package let rawValue: Int32

    package init(rawValue: Int32) { self.rawValue = rawValue }

    package enum AccessMode: Sendable {
        case readOnly, writeOnly, readWrite

        var flags: Int32 {
            switch self {
            case .readOnly: O_RDONLY
            case .writeOnly: O_WRONLY
            case .readWrite: O_RDWR
            }
        }
    }

    package struct OpenOptions: OptionSet, Sendable {
        package let rawValue: Int32
        package init(rawValue: Int32) { self.rawValue = rawValue }

        package static let directory = OpenOptions(rawValue: O_DIRECTORY)
        package static let create = OpenOptions(rawValue: O_CREAT)
        package static let truncate = OpenOptions(rawValue: O_TRUNC)
    }

    /// `open(2)`, or `openat(2)` relative to `directory`; always close-on-exec.
    package static func open(
        _ path: String, _ mode: AccessMode, options: OpenOptions = [], permissions: UInt32 = 0,
        in directory: FileDescriptor? = nil
    ) throws(SystemError) -> FileDescriptor {
        let flags = mode.flags | options.rawValue | O_CLOEXEC
        let fd = try retryingInterrupts {
            directory.map { openat($0.rawValue, path, flags, mode_t(permissions)) }
                ?? Glibc.open(path, flags, mode_t(permissions))
        }
        return FileDescriptor(rawValue: fd)
    }

    package func close() { _ = Glibc.close(rawValue) }

    /// One `read(2)` of up to `count` bytes, or `pread(2)` at `offset`.
    package func read(upTo count: Int, at offset: Int64? = nil) throws(SystemError) -> [UInt8] {
        let outcome = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(count, 1)) { buffer in
            Result { () throws(SystemError) -> [UInt8] in
                let read = try Self.retryingInterrupts {
                    offset.map { pread(rawValue, buffer.baseAddress, count, off_t($0)) }
                        ?? Glibc.read(rawValue, buffer.baseAddress, count)
                }
                return Array(buffer[0..<read])
            }
        }
        return try outcome.get()
    }

    /// One `write(2)`, or `pwrite(2)` at `offset`: the count written.
    @discardableResult
    package func write(_ bytes: [UInt8], at offset: Int64? = nil) throws(SystemError) -> Int {
        let outcome = bytes.withUnsafeBytes { buffer in
            Result { () throws(SystemError) -> Int in
                try Self.retryingInterrupts {
                    offset.map { pwrite(rawValue, buffer.baseAddress, buffer.count, off_t($0)) }
                        ?? Glibc.write(rawValue, buffer.baseAddress, buffer.count)
                }
            }
        }
        return try outcome.get()
    }

    /// FIFREEZE on a file of the filesystem (its mount point).
    package func freezeFilesystem() throws(SystemError) {
        try Self.retryingInterrupts { cglib_ioctl_none(rawValue, cglib_fifreeze) }
    }

    /// FITHAW: one thaw of a frozen filesystem (EINVAL when it is not frozen).
    package func thawFilesystem() throws(SystemError) {
        try Self.retryingInterrupts { cglib_ioctl_none(rawValue, cglib_fithaw) }
    }

    /// FITRIM of the whole filesystem, extents of at least `minimum` bytes.
    package func trimFilesystem(minimum: UInt64) throws(SystemError) -> TrimmedRange {
        var range = cglib_fstrim_range(start: 0, len: UInt64.max, minlen: minimum)
        try Self.retryingInterrupts { cglib_ioctl_pointer(rawValue, cglib_fitrim, &range) }
        return TrimmedRange(trimmed: range.len, minimum: range.minlen)
    }

    /// A C call that returns -1 and sets errno on failure, again while it
    /// is interrupted by a signal.
    @discardableResult
    static func retryingInterrupts<T: BinaryInteger>(_ call: () -> T) throws(SystemError) -> T {
        while true {
            let result = call()
            if result != -1 { return result }
            let error = SystemError.current
            if error != .interrupted { throw error }
        }
    }
}

/// What FITRIM reports: the bytes it trimmed and the minimum extent length
/// it used (the kernel may raise the one asked for).
nonisolated package struct TrimmedRange: Equatable, Sendable {
    package var trimmed: UInt64
    package var minimum: UInt64

    package init(trimmed: UInt64, minimum: UInt64) {
        self.trimmed = trimmed
        self.minimum = minimum
    }
}

/// What `stat(2)` says of a path, as far as the agent asks: what it is.
nonisolated package struct FileStatus: Equatable, Sendable {
    package enum Kind: Sendable { case regular, directory, other }

    package var kind: Kind

    package init(kind: Kind) { self.kind = kind }
}

/// Path operations of the system layer (`stat`, `mkdir`, `chown`, `chmod`,
/// `settimeofday`), each throwing its call's errno.
nonisolated enum PathCalls {
    static func status(_ path: String) throws(SystemError) -> FileStatus {
        var info = stat()
        try FileDescriptor.retryingInterrupts { stat(path, &info) }
        let kind: FileStatus.Kind = switch info.st_mode & S_IFMT {
        case S_IFREG: .regular
        case S_IFDIR: .directory
        default: .other
        }
        return FileStatus(kind: kind)
    }

    static func isExecutable(_ path: String) -> Bool {
        access(path, X_OK) == 0
    }

    static func makeDirectory(_ path: String, permissions: UInt32) throws(SystemError) {
        try FileDescriptor.retryingInterrupts { mkdir(path, mode_t(permissions)) }
    }

    static func changeOwner(_ path: String, user: UInt32, group: UInt32) throws(SystemError) {
        try FileDescriptor.retryingInterrupts { chown(path, user, group) }
    }

    static func changeMode(_ path: String, to permissions: UInt32) throws(SystemError) {
        try FileDescriptor.retryingInterrupts { chmod(path, mode_t(permissions)) }
    }

    static func setTime(seconds: Int, microseconds: Int) throws(SystemError) {
        var value = timeval(tv_sec: seconds, tv_usec: microseconds)
        try FileDescriptor.retryingInterrupts { settimeofday(&value, nil) }
    }
}

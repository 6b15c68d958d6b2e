/// A sysfs directory opened as qemu-ga opens it (`O_DIRECTORY`), whose
/// small attribute files it reads with one `pread` each and writes with one
/// `pwrite`; through the machine's system calls.
final class SysfsDirectory {
    private let calls: any SystemCalls
    private let fd: FileDescriptor

    enum ReadError: Error {
        case open(SystemError)
        case read(SystemError)
        case endOfFile
    }

    init(_ system: SystemEnvironment, _ path: String) throws(SystemError) {
        calls = system.calls
        fd = try calls.open(system.path(path), .readOnly, options: .directory, permissions: 0, in: nil)
    }

    nonisolated deinit { calls.close(fd) }

    /// The attribute file `name`, opened for `mode`.
    func attribute(_ name: String, _ mode: FileDescriptor.AccessMode) throws(SystemError) -> SysfsAttribute {
        SysfsAttribute(calls: calls, fd: try calls.open(name, mode, options: [], permissions: 0, in: fd))
    }

    /// Up to `count` bytes from the start of the attribute file `name`.
    func read(_ name: String, count: Int) throws(ReadError) -> [UInt8] {
        let file: SysfsAttribute
        do {
            file = try attribute(name, .readOnly)
        } catch {
            throw .open(error)
        }
        let bytes: [UInt8]
        do {
            bytes = try file.read(count: count)
        } catch {
            throw .read(error)
        }
        if bytes.isEmpty { throw .endOfFile }
        return bytes
    }
}

/// An open attribute file of a sysfs directory: read and written whole, at
/// offset 0, as the kernel wants.
final class SysfsAttribute {
    private let calls: any SystemCalls
    private let fd: FileDescriptor

    fileprivate init(calls: any SystemCalls, fd: FileDescriptor) {
        self.calls = calls
        self.fd = fd
    }

    nonisolated deinit { calls.close(fd) }

    /// One `pread` of up to `count` bytes at offset 0.
    func read(count: Int) throws(SystemError) -> [UInt8] {
        try calls.read(fd, upTo: count, at: 0)
    }

    /// One `pwrite` at offset 0.
    func write(_ text: String) throws(SystemError) {
        _ = try calls.write(fd, Array(text.utf8), at: 0)
    }
}

extension SysfsDirectory.ReadError {
    /// qemu-ga's text for a failed read of a memory-block attribute.
    func memoryAttributeError(_ name: String) -> QMPError {
        switch self {
        case .open(let failure): QMPError("open sysfs file \"\(name)\": \(failure)")
        case .read(let failure): QMPError("pread sysfs file \"\(name)\": \(failure)")
        case .endOfFile: QMPError("pread sysfs file \"\(name)\": unexpected EOF")
        }
    }

    var isMissingFile: Bool {
        if case .open(let failure) = self { return failure == .noSuchFile }
        return false
    }

    /// The errno qemu-ga reports for the failed read (0 for an empty file:
    /// nothing failed, and it cleared errno first).
    var errno: Int32 {
        switch self {
        case .open(let failure), .read(let failure): failure.errno
        case .endOfFile: 0
        }
    }
}

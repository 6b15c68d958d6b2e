import Glibc

/// A sysfs directory opened as qemu-ga opens it (`O_DIRECTORY`), whose
/// small attribute files it reads with one `pread` each.
final class SysfsDirectory {
    private let fd: Int32

    enum ReadError: Error {
        case open(SystemError)
        case read(SystemError)
        case endOfFile
    }

    init(_ system: SystemEnvironment, _ path: String) throws(SystemError) {
        fd = open(system.path(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError(errno: errno) }
    }

    deinit { close(fd) }

    /// The attribute file `name` opened with `flags`; the caller closes it.
    func openFile(_ name: String, _ flags: Int32) throws(SystemError) -> Int32 {
        let file = openat(fd, name, flags | O_CLOEXEC)
        guard file >= 0 else { throw SystemError(errno: errno) }
        return file
    }

    /// Up to `count` bytes from the start of the attribute file `name`.
    func read(_ name: String, count: Int) throws(ReadError) -> [UInt8] {
        let file: Int32
        do {
            file = try openFile(name, O_RDONLY)
        } catch {
            throw .open(error)
        }
        defer { close(file) }
        let bytes = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: count) { buffer -> [UInt8]? in
            let result = pread(file, buffer.baseAddress, count, 0)
            return result < 0 ? nil : Array(buffer[0..<result])
        }
        guard let bytes else { throw .read(SystemError(errno: errno)) }
        if bytes.isEmpty { throw .endOfFile }
        return bytes
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
        if case .open(let failure) = self { return failure.errno == ENOENT }
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

import Glibc

/// One entry of a directory, as readdir reports it.
struct DirectoryEntry: Equatable, Sendable {
    let name: String
    /// readdir's `d_type` (`DT_DIR`, `DT_LNK`, ...).
    let type: UInt8

    static let directoryType = UInt8(DT_DIR)
    static let symlinkType = UInt8(DT_LNK)
}

extension SystemEnvironment {
    /// The entries of a directory of the machine in readdir order (the
    /// order qemu-ga reports sysfs entries in), without `.` and `..`. Only
    /// opendir fails: a failing readdir ends the list, as in qemu-ga's loops.
    func directoryEntries(_ path: String) throws(SystemError) -> [DirectoryEntry] {
        guard let directory = opendir(self.path(path)) else { throw SystemError.current }
        defer { closedir(directory) }
        var entries: [DirectoryEntry] = []
        while true {
            guard let entry = readdir(directory) else { return entries }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." {
                entries.append(DirectoryEntry(name: name, type: entry.pointee.d_type))
            }
        }
    }

    /// `realpath` of a path of the machine, as a path of the machine:
    /// symbolic links in a fixture tree are relative, as sysfs's are, so
    /// they resolve inside it.
    package func resolvedPath(_ path: String) throws(SystemError) -> String {
        guard let resolved = realpath(self.path(path), nil) else { throw SystemError.current }
        defer { free(resolved) }
        let real = String(cString: resolved)
        if !pathPrefix.isEmpty && real == pathPrefix { return "/" }
        return real.hasPrefix(pathPrefix + "/") ? String(real.dropFirst(pathPrefix.count)) : real
    }

    /// The target of a symbolic link of the machine, or nil.
    func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
        let count = readlink(self.path(path), &buffer, buffer.count - 1)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The whole content of a file of the machine.
    package func fileContents(_ path: String) throws(SystemError) -> [UInt8] {
        try readFileBytes(self.path(path))
    }
}

/// The whole content of a file.
func readFileBytes(_ path: String) throws(SystemError) -> [UInt8] {
    let fd = try FileDescriptor.open(path, .readOnly)
    defer { fd.close() }
    // Most files read here are a few hundred bytes: one read holds them.
    var bytes = try fd.read(upTo: 16 * 1024)
    while true {
        let chunk = try fd.read(upTo: 16 * 1024)
        if chunk.isEmpty { return bytes }
        bytes += chunk
    }
}

/// `isspace` in the C locale.
func isASCIISpace(_ byte: UInt8) -> Bool {
    byte == 0x20 || (0x09...0x0D).contains(byte)
}

/// The last component of a path, as `g_path_get_basename` gives it.
func pathBasename(_ path: String) -> String {
    let bytes = Array(path.utf8)
    guard let last = bytes.lastIndex(where: { $0 != UInt8(ascii: "/") }) else { return bytes.isEmpty ? "." : "/" }
    let start = bytes[..<last].lastIndex(of: UInt8(ascii: "/")).map { $0 + 1 } ?? 0
    return String(decoding: bytes[start...last], as: UTF8.self)
}

/// The block counts `statvfs` reports for a filesystem.
struct FilesystemBlocks: Equatable {
    var blocks: UInt64
    var free: UInt64
    var available: UInt64
    var fragmentSize: UInt64
}

extension SystemEnvironment {
    /// `statvfs` of a directory of the machine, nil when it fails.
    func filesystemBlocks(_ path: String) -> FilesystemBlocks? {
        var statistics = statvfs()
        guard statvfs(self.path(path), &statistics) == 0 else { return nil }
        return FilesystemBlocks(
            blocks: UInt64(statistics.f_blocks), free: UInt64(statistics.f_bfree),
            available: UInt64(statistics.f_bavail), fragmentSize: UInt64(statistics.f_frsize))
    }
}

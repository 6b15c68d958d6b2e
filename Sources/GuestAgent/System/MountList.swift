import Glibc

/// One mounted filesystem backed by a device, as fsinfo, fsfreeze and fstrim
/// see it.
struct Mount: Equatable, Sendable {
    /// The mount source, e.g. `/dev/vda1`.
    var device: String
    /// Where it is mounted, as the machine names it (not prefixed by the
    /// system root).
    var mountPoint: String
    var type: String
    var major: UInt32
    var minor: UInt32
}

/// qemu-ga's mount list: `/proc/self/mountinfo` in file order, without
/// filesystems that have no device (major 0) except btrfs, and, as the newest
/// qemu-ga does, each device only once (bind mounts).
enum MountList {
    static func read(_ system: SystemEnvironment) throws(QMPError) -> [Mount] {
        let mountInfoPath = system.path("/proc/self/mountinfo")
        guard let text = readTextFile(mountInfoPath) else {
            return try readMounts(system)
        }
        return unique(parseMountInfo(text, system: system))
    }

    /// Parses mountinfo lines: `id parent major:minor root mountpoint options
    /// [optional fields] - type source superoptions`.
    static func parseMountInfo(_ text: String, system: SystemEnvironment) -> [Mount] {
        var mounts: [Mount] = []
        // Bytes, as the kernel writes them: splitting Characters would be
        // slow and would not split at a space followed by a combining mark.
        let bytes = Array(text.utf8)
        // The fields of one line (split at every space, empty ones kept),
        // reused from line to line.
        var fields: [Range<Int>] = []
        var lineStart = 0
        while lineStart < bytes.count {
            let lineEnd = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
            let line = lineStart..<lineEnd
            lineStart = lineEnd + 1
            if line.isEmpty { continue }
            fields.removeAll(keepingCapacity: true)
            var start = line.lowerBound
            for index in line where bytes[index] == UInt8(ascii: " ") {
                fields.append(start..<index)
                start = index + 1
            }
            fields.append(start..<line.upperBound)
            func field(_ index: Int) -> ArraySlice<UInt8> { bytes[fields[index]] }
            guard fields.count >= 5,
                  let separator = fields.firstIndex(where: { $0.count == 1 && bytes[$0.lowerBound] == UInt8(ascii: "-") }),
                  separator + 2 < fields.count else { continue }
            let numbers = field(2).split(separator: UInt8(ascii: ":"))
            guard numbers.count == 2, var major = UInt32(string(numbers[0])), var minor = UInt32(string(numbers[1])) else {
                continue
            }
            let type = string(field(separator + 1))
            if major == 0 && type != "btrfs" { continue }
            let device = unescapeMountField(Substring(string(field(separator + 2))))
            if major == 0 {
                // btrfs reports an anonymous device; its real one is the source's.
                guard let numbers = deviceNumbers(of: system.path(device)) else { continue }
                (major, minor) = numbers
            }
            mounts.append(Mount(device: device, mountPoint: unescapeMountField(Substring(string(field(4)))), type: type,
                                major: major, minor: minor))
        }
        return mounts
    }

    private static func string(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }

    /// The fallback when mountinfo cannot be read: `/proc/self/mounts`.
    private static func readMounts(_ system: SystemEnvironment) throws(QMPError) -> [Mount] {
        guard let text = readTextFile(system.path("/proc/self/mounts")) else {
            throw QMPError("failed to open mtab file: '/proc/self/mounts'")
        }
        var mounts: [Mount] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 3 else { continue }
            let device = unescapeMountField(fields[0])
            let type = String(fields[2])
            guard device.hasPrefix("/"), type != "smbfs", type != "cifs" else { continue }
            var info = stat()
            if stat(system.path(device), &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { continue }
            let (major, minor) = deviceNumbers(of: system.path(device)) ?? (0, 0)
            mounts.append(Mount(device: device, mountPoint: unescapeMountField(fields[1]), type: type, major: major, minor: minor))
        }
        return unique(mounts)
    }

    /// The first mount of each device: later ones are bind or repeated mounts.
    private static func unique(_ mounts: [Mount]) -> [Mount] {
        var seen = Set<UInt64>()
        return mounts.filter { seen.insert(UInt64($0.major) << 32 | UInt64($0.minor)).inserted }
    }

    /// The device numbers of a block device node.
    static func deviceNumbers(of path: String) -> (UInt32, UInt32)? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFBLK else { return nil }
        return deviceMajorMinor(info.st_rdev)
    }

    /// Decodes the kernel's `\NNN` octal escapes (space, tab, newline,
    /// backslash) in a mount point or source.
    static func unescapeMountField(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        let utf8 = Array(field.utf8)
        var index = 0
        while index < utf8.count {
            let byte = utf8[index]
            if byte == UInt8(ascii: "\\"), index + 3 < utf8.count,
               (UInt8(ascii: "0")...UInt8(ascii: "3")).contains(utf8[index + 1]),
               utf8[(index + 2)...(index + 3)].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "7")).contains($0) }) {
                bytes.append((utf8[index + 1] - 48) << 6 | (utf8[index + 2] - 48) << 3 | (utf8[index + 3] - 48))
                index += 4
            } else if byte == UInt8(ascii: "\\"), index + 1 < utf8.count, utf8[index + 1] == UInt8(ascii: "\\") {
                bytes.append(byte)
                index += 2
            } else {
                bytes.append(byte)
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The whole of a small text file (from /proc, /sys or /etc), or nil when it
/// cannot be read.
package func readTextFile(_ path: String) -> String? {
    (try? readFileBytes(path)).map { String(decoding: $0, as: UTF8.self) }
}

/// glibc's `major()`/`minor()`, which are macros Swift cannot see.
func deviceMajorMinor(_ device: dev_t) -> (UInt32, UInt32) {
    let device = UInt64(device)
    let major = ((device >> 8) & 0xFFF) | ((device >> 32) & ~UInt64(0xFFF))
    let minor = (device & 0xFF) | ((device >> 12) & ~UInt64(0xFF))
    return (UInt32(truncatingIfNeeded: major), UInt32(truncatingIfNeeded: minor))
}

import GuestAgent

/// A fixture machine for tests: a directory tree that stands for `/`, in
/// which the agent's commands read and change files and run (fake) programs.
/// What a tree cannot hold as the real thing comes from files in it:
///
/// - interfaces: `/getifaddrs` (one entry per line: `NAME`, or `NAME ADDRESS
///   [NETMASK]`) and each interface's `/sys/class/net/NAME/address` (an
///   interface without one fails the query with ENODEV, as an unknown one
///   does);
/// - udev: the files libudev itself reads on a real machine: `DEVNAME` in a
///   device's `uevent`, properties from `/run/udev/data/b<major>:<minor>`
///   (`E:KEY=VALUE` lines); a device node that is a regular file of at least
///   512 bytes holds its NVMe health log;
/// - users: `<root>/etc/passwd`;
/// - the clock: the file `<root>/settimeofday` receives `<seconds>
///   <microseconds>`.
///
/// Every other system call is the real one on the tree's files (pass
/// `calls` to stand in for the kernel too).
extension SystemEnvironment {
    package static func fixture(
        root: String, searchPath: String = "/usr/sbin:/usr/bin:/sbin:/bin", calls: (any SystemCalls)? = nil
    ) -> SystemEnvironment {
        SystemEnvironment(
            pathPrefix: root, searchPath: searchPath, calls: calls ?? FixtureClock(root: root), facts: FixtureFacts())
    }
}

/// The real calls, except the clock, which is a file of the tree.
package struct FixtureClock: SystemCalls {
    let root: String

    package init(root: String) { self.root = root }

    package func setTime(seconds: Int, microseconds: Int) throws(SystemError) {
        let fd = try open(root + "/settimeofday", .writeOnly, options: [.create, .truncate], permissions: 0o644, in: nil)
        defer { close(fd) }
        _ = try write(fd, Array("\(seconds) \(microseconds)\n".utf8), at: nil)
    }
}

/// The facts of a fixture tree (see `SystemEnvironment.fixture`).
package struct FixtureFacts: MachineFacts {
    package func interfaceSource(on system: SystemEnvironment) -> any InterfaceSource { FixtureInterfaces(system: system) }
    package func blockDeviceFacts(on system: SystemEnvironment) -> any BlockDeviceFacts { FixtureBlockDevices(system: system) }

    /// name:password:uid:gid:gecos:home:shell, first match wins; glibc's
    /// "Success" for a user that is not there.
    package func userAccount(named name: String, on system: SystemEnvironment) throws(KeyFileError) -> UserAccount {
        for line in (readTextFile(system.path("/etc/passwd")) ?? "").split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            if fields.count >= 7, fields[0] == name, let uid = UInt32(fields[2]), let gid = UInt32(fields[3]) {
                return UserAccount(uid: uid, gid: gid, home: String(fields[5]))
            }
        }
        throw KeyFileError(message: SystemError.none.description)
    }
}

package struct FixtureInterfaces: InterfaceSource {
    let system: SystemEnvironment

    package init(system: SystemEnvironment) { self.system = system }

    package func addresses() throws(SystemError) -> [InterfaceAddress] {
        let text = String(decoding: try system.fileContents("/getifaddrs"), as: UTF8.self)
        return text.split(separator: "\n").compactMap { line in
            let words = line.split(separator: " ")
            guard let name = words.first else { return nil }
            return InterfaceAddress(
                name: String(name), address: words.dropFirst().first.flatMap { IPAddress(String($0)) },
                netmask: words.dropFirst(2).first.flatMap { IPAddress(String($0)) })
        }
    }

    package func hardwareAddress(of name: String) throws(SystemError) -> HardwareAddressQuery {
        guard let text = readTextFile(system.path("/sys/class/net/\(name)/address")) else {
            return .failed(.noSuchDevice)
        }
        let bytes = text.split(separator: "\n").first?.split(separator: ":").compactMap { UInt8($0, radix: 16) } ?? []
        return .address(bytes)
    }
}

package struct FixtureBlockDevices: BlockDeviceFacts {
    let system: SystemEnvironment

    package init(system: SystemEnvironment) { self.system = system }

    package func udevDevice(atSysPath path: String) -> UdevDevice? {
        guard let resolved = try? system.resolvedPath(path), resolved.hasPrefix("/sys/") else { return nil }
        let uevent = Self.pairs(readTextFile(system.path(resolved + "/uevent")) ?? "", prefix: "")
        var device = UdevDevice(devnode: uevent["DEVNAME"].map { "/dev/" + $0 })
        if let major = uevent["MAJOR"], let minor = uevent["MINOR"],
           let database = readTextFile(system.path("/run/udev/data/b\(major):\(minor)")) {
            device.properties = Self.pairs(database, prefix: "E:").filter { reportedUdevProperties.contains($0.key) }
        }
        return device
    }

    package func nvmeSmartLog(devnode: String) -> [UInt8]? {
        guard let bytes = try? system.fileContents(devnode), bytes.count >= nvmeSmartLogSize else { return nil }
        return Array(bytes.prefix(nvmeSmartLogSize))
    }

    /// `KEY=VALUE` lines that start with `prefix`.
    private static func pairs(_ text: String, prefix: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            let pair = line.dropFirst(prefix.count)
            guard let equals = pair.firstIndex(of: "=") else { continue }
            result[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        return result
    }
}

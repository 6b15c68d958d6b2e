// Identity: guest-get-host-name, guest-get-users, guest-get-osinfo.

/// `guest-get-host-name`.
struct GuestGetHostName: @MainActor GuestAgentCommand {
    static let name = "guest-get-host-name"

    struct HostName: Encodable {
        let hostName: String

        enum CodingKeys: String, CodingKey { case hostName = "host-name" }
    }

    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> HostName {
        do {
            return HostName(hostName: try currentHostName())
        } catch {
            throw QMPError("cannot get hostname: \(error)")
        }
    }
}

/// `guest-get-users`: the users logged in according to utmp, each once with
/// their earliest login, in order of first appearance.
struct GuestGetUsers: @MainActor GuestAgentCommand {
    static let name = "guest-get-users"

    struct User: Encodable {
        let user: String
        var loginTime: Double

        // `domain` is never set on Linux.
        enum CodingKeys: String, CodingKey {
            case user
            case loginTime = "login-time"
        }
    }

    static func run(_ arguments: NoArguments, agent: GAState) -> [User] {
        var users: [User] = []
        var indexByName: [String: Int] = [:]
        for login in agent.system.userLogins() {
            let time = Double(login.seconds) + Double(login.microseconds) / 1_000_000
            if let index = indexByName[login.user] {
                users[index].loginTime = min(users[index].loginTime, time)
            } else {
                indexByName[login.user] = users.count
                users.append(User(user: login.user, loginTime: time))
            }
        }
        return users
    }
}

/// `guest-get-osinfo`: the kernel's uname fields and the identification of
/// os-release (`$QGA_OS_RELEASE`, else /etc/os-release, else
/// /usr/lib/os-release), read as a GLib key file.
struct GuestGetOsinfo: @MainActor GuestAgentCommand {
    static let name = "guest-get-osinfo"

    struct OSInfo: Encodable {
        var kernelRelease: String?
        var kernelVersion: String?
        var machine: String?
        var id: String?
        var name: String?
        var prettyName: String?
        var version: String?
        var versionId: String?
        var variant: String?
        var variantId: String?

        enum CodingKeys: String, CodingKey {
            case kernelRelease = "kernel-release"
            case kernelVersion = "kernel-version"
            case machine, id, name
            case prettyName = "pretty-name"
            case version
            case versionId = "version-id"
            case variant
            case variantId = "variant-id"
        }
    }

    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> OSInfo {
        let kernel: KernelIdentity
        do {
            kernel = try KernelIdentity.current()
        } catch {
            throw QMPError("uname failed: \(error)")
        }
        var info = OSInfo(kernelRelease: kernel.release, kernelVersion: kernel.version, machine: kernel.machine)
        let release: KeyFile?
        if let path = ProcessEnvironment.value("QGA_OS_RELEASE") {
            release = parseOSRelease(path, agent: agent, inSystem: false)
        } else {
            release = parseOSRelease("/etc/os-release", agent: agent)
                ?? parseOSRelease("/usr/lib/os-release", agent: agent)
        }
        guard let release else { return info }
        func field(_ key: String) -> String? {
            release.rawValue("os-release", key).map(unquoteOSReleaseValue)
        }
        info.id = field("ID")
        info.name = field("NAME")
        info.prettyName = field("PRETTY_NAME")
        info.version = field("VERSION")
        info.versionId = field("VERSION_ID")
        info.variant = field("VARIANT")
        info.variantId = field("VARIANT_ID")
        return info
    }

    /// os-release as a key file of one group, `[os-release]`; nil (with
    /// qemu-ga's warning) when it cannot be read, is not UTF-8 or does not
    /// parse. `$QGA_OS_RELEASE` names a file of this machine, not of the
    /// system root.
    private static func parseOSRelease(_ path: String, agent: GAState, inSystem: Bool = true) -> KeyFile? {
        var bytes: [UInt8]
        do {
            bytes = try inSystem ? agent.system.fileContents(path) : readFileBytes(path)
        } catch {
            agent.log.warning("failed to read '\(path)', error: Failed to open file “\(path)”: \(error)")
            return nil
        }
        // GLib treats the content as a C string.
        if let end = bytes.firstIndex(of: 0) { bytes.removeSubrange(end...) }
        guard GLibUTF8.isValid(bytes) else {
            agent.log.warning("file is not utf-8 encoded: \(path)")
            return nil
        }
        let keyFile = KeyFile()
        do {
            try keyFile.load(data: "[os-release]\n" + String(decoding: bytes, as: UTF8.self))
        } catch {
            agent.log.warning("failed to parse file '\(path)', error: \(error)")
            return nil
        }
        return keyFile
    }
}

/// qemu-ga's cleanup of an os-release value: an unquoted value ends at its
/// first space and at its first `;`; a value in double quotes ends at the
/// next unescaped `"`, and a backslash before `$ ' " \` or a backtick is
/// dropped. Without a closing quote the value is shifted left in place and
/// keeps the tail of the original, as qemu-ga's in-place copy leaves it.
func unquoteOSReleaseValue(_ value: String) -> String {
    var bytes = Array(value.utf8)
    guard bytes.first == UInt8(ascii: "\"") else {
        let end = bytes.firstIndex(of: UInt8(ascii: " ")) ?? bytes.count
        let cut = bytes[..<end]
        return String(decoding: cut.prefix { $0 != UInt8(ascii: ";") }, as: UTF8.self)
    }
    let escapable = Set("$'\"\\`".utf8)
    var write = 0
    var read = 1
    while read < bytes.count {
        if bytes[read] == UInt8(ascii: "\\"), read + 1 < bytes.count, escapable.contains(bytes[read + 1]) {
            read += 1
        } else if bytes[read] == UInt8(ascii: "\"") {
            return String(decoding: bytes[..<write], as: UTF8.self)
        }
        bytes[write] = bytes[read]
        write += 1
        read += 1
    }
    return String(decoding: bytes, as: UTF8.self)
}

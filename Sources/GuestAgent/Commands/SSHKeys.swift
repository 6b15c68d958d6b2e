/// A user's `~/.ssh/authorized_keys` as qemu-ga's guest-ssh-*-authorized-keys
/// edit it: the file is a list of lines split on `\n`, kept byte for byte
/// (comments, blank lines, the empty element after a final newline), and
/// written back joined with `\n`, atomically, owned by the user, mode 0600.
struct AuthorizedKeys {
    let account: UserAccount
    /// `<home>/.ssh` and `<home>/.ssh/authorized_keys`, where the agent
    /// finds them (under the system root).
    let directory: String
    let path: String
    private let calls: any SystemCalls

    /// Looks up the user (passwd database under the system root).
    init(username: String, system: SystemEnvironment) throws(QMPError) {
        do {
            account = try system.userAccount(named: username)
        } catch {
            throw QMPError("failed to lookup user '\(username)': \(error)")
        }
        let home = account.home.hasPrefix("/") ? system.path(account.home) : account.home
        calls = system.calls
        directory = Self.buildFilename(home, ".ssh")
        path = directory + "/authorized_keys"
    }

    /// `g_build_filename(home, ".ssh")`: one separator between the parts.
    private static func buildFilename(_ directory: String, _ name: String) -> String {
        guard !directory.isEmpty else { return name }
        var trimmed = Substring(directory)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        return trimmed == "/" ? "/" + name : trimmed + "/" + name
    }

    /// A key is refused when it starts with `#` or holds a newline; nothing
    /// else is checked.
    static func validate(_ keys: [String]) throws(QMPError) {
        for key in keys where key.utf8.first == UInt8(ascii: "#") || key.utf8.contains(0x0A) {
            throw QMPError("invalid OpenSSH public key: '\(key)'")
        }
    }

    /// The file's lines (`g_strsplit` on `\n` of its text up to a NUL byte:
    /// an empty file has none).
    func lines() throws(QMPError) -> [[UInt8]] {
        let contents: [UInt8]
        do {
            contents = try GLibFile.contents(of: path)
        } catch {
            throw QMPError("failed to read '\(path)': \(error)")
        }
        let text = contents.prefix { $0 != 0 }
        guard !text.isEmpty else { return [] }
        return text.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
    }

    /// Whether the file is there (qemu-ga's `access(F_OK)`).
    var exists: Bool { (try? calls.status(path)) != nil }

    /// Replaces the file with `lines`, then makes it the user's, mode 0600
    /// (every time, whatever it was before).
    func write(_ lines: [[UInt8]]) throws(QMPError) {
        do {
            try GLibFile.setContents(of: path, to: Array(lines.joined(separator: [0x0A])))
        } catch {
            throw QMPError("failed to write to '\(path)': \(error)")
        }
        // (sic) qemu-ga says "directory" for the file's owner.
        try giveToUser(path, permissions: 0o600, named: "")
    }

    /// Creates `.ssh` (0700, the user's) unless it is a directory already;
    /// the home directory itself is never created.
    func makeDirectory() throws(QMPError) {
        if (try? calls.status(directory))?.kind == .directory { return }
        do {
            try calls.makeDirectory(directory, permissions: 0o700)
        } catch {
            throw QMPError("failed to create directory '\(directory)': \(error)")
        }
        try giveToUser(directory, permissions: 0o700, named: "directory ")
    }

    /// Makes `path` the user's with `permissions`; `noun` is how qemu-ga's
    /// permissions error names it.
    private func giveToUser(_ path: String, permissions: UInt32, named noun: String) throws(QMPError) {
        do {
            try calls.changeOwner(path, user: account.uid, group: account.gid)
        } catch {
            throw QMPError("failed to set ownership of directory '\(path)': \(error)")
        }
        do {
            try calls.changeMode(path, to: permissions)
        } catch {
            throw QMPError("failed to set permissions of \(noun)'\(path)': \(error)")
        }
    }
}

/// `guest-ssh-get-authorized-keys`: the keys in reverse file order, each
/// line stripped, blank lines and comments left out.
struct GuestSSHGetAuthorizedKeys: @MainActor GuestAgentCommand {
    static let name = "guest-ssh-get-authorized-keys"

    struct Arguments: Decodable { let username: String }

    /// GuestAuthorizedKeys.
    struct Result: Encodable { let keys: [String] }

    static func run(_ arguments: Arguments, agent: GAState) throws(QMPError) -> Result {
        let file = try AuthorizedKeys(username: arguments.username, system: agent.system)
        let keys = try file.lines().lazy.map(stripped).filter { !$0.isEmpty && $0.first != UInt8(ascii: "#") }
        return Result(keys: keys.reversed().map { String(decoding: $0, as: UTF8.self) })
    }

    /// `g_strstrip`: without leading and trailing ASCII whitespace.
    private static func stripped(_ line: [UInt8]) -> ArraySlice<UInt8> {
        let start = line.firstIndex { !isASCIISpace($0) } ?? line.endIndex
        let end = line.lastIndex { !isASCIISpace($0) }.map { $0 + 1 } ?? start
        return line[start..<end]
    }
}

/// `guest-ssh-add-authorized-keys`: appends each key that no line equals
/// exactly; with `reset`, the file becomes exactly the keys given.
struct GuestSSHAddAuthorizedKeys: @MainActor GuestAgentCommand {
    static let name = "guest-ssh-add-authorized-keys"

    struct Arguments: Decodable {
        let username: String
        let keys: [String]
        let reset: Bool?
    }

    static func run(_ arguments: Arguments, agent: GAState) throws(QMPError) -> EmptyResult {
        try AuthorizedKeys.validate(arguments.keys)
        let file = try AuthorizedKeys(username: arguments.username, system: agent.system)
        // A file that cannot be read counts as empty.
        let existing = arguments.reset == true ? nil : try? file.lines()
        if existing == nil { try file.makeDirectory() }
        var lines = existing ?? []
        for key in arguments.keys.map({ Array($0.utf8) }) where !lines.contains(key) {
            lines.append(key)
        }
        try file.write(lines)
        return EmptyResult()
    }
}

/// `guest-ssh-remove-authorized-keys`: drops every line equal to one of the
/// keys; a missing file is left missing.
struct GuestSSHRemoveAuthorizedKeys: @MainActor GuestAgentCommand {
    static let name = "guest-ssh-remove-authorized-keys"

    struct Arguments: Decodable {
        let username: String
        let keys: [String]
    }

    static func run(_ arguments: Arguments, agent: GAState) throws(QMPError) -> EmptyResult {
        try AuthorizedKeys.validate(arguments.keys)
        let file = try AuthorizedKeys(username: arguments.username, system: agent.system)
        guard file.exists else { return EmptyResult() }
        let keys = Set(arguments.keys.map { Array($0.utf8) })
        try file.write(try file.lines().filter { !keys.contains($0) })
        return EmptyResult()
    }
}

import CGLib
import Glibc

// The operators' policies beyond qemu-ga (exclude-interfaces, exec-allow,
// open-allow): fnmatch patterns matched against names and canonical paths.

/// Whether one of `patterns` matches `text`, as fnmatch(3) without flags
/// does: `*` and `?` also match `/` and a leading `.`.
func anyPatternMatches(_ patterns: [String], _ text: String) -> Bool {
    patterns.contains { fnmatch($0, text, 0) == 0 }
}

/// A refusal by `exec-allow` or `open-allow`: syslog says why (`<command>
/// refused: '<path>' <reason>`), so that the operator sees what the host
/// tried; the host gets `<what> '<path>' is not allowed by <setting>`.
func policyRefusal(_ command: String, _ what: String, _ path: String, by setting: String, _ reason: String, log: GALog) -> QMPError {
    log.syslog("\(command) refused: '\(path)' \(reason)")
    return QMPError("\(what) '\(path)' is not allowed by \(setting)")
}

/// `exec-allow`: which file guest-exec would run.
enum ExecAllow {
    /// GLib's search path when neither the request's environment nor the
    /// agent's has `PATH`.
    static let glibDefaultSearchPath = "/bin:/usr/bin:."

    /// The canonical path (symlinks and `..` resolved) of the file that
    /// GLib's spawn runs for `program`: a name with a slash is that path
    /// (relative to the working directory); one without is searched in the
    /// `PATH` of `environment` when that has one, else in the agent's.
    /// guest-exec does not go through the system root.
    static func canonicalProgram(_ program: String, environment: [String]?) throws(SystemError) -> String {
        let searchPath = environment?.first { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) }
            ?? ProcessEnvironment.value("PATH") ?? glibDefaultSearchPath
        let machine = SystemEnvironment.host(searchPath: searchPath)
        return try machine.resolvedPath(machine.executable(program))
    }
}

/// Where guest-file-open opens a file: a name in a directory (openat), so
/// that the directory that was checked is the one the file is opened in.
final class FileLocation {
    /// An O_PATH descriptor of the directory, or AT_FDCWD.
    let directory: Int32
    let name: String

    /// `path` as the host gave it, relative to the working directory.
    init(unchecked path: String) {
        directory = AT_FDCWD
        name = path
    }

    fileprivate init(directory: Int32, name: String) {
        self.directory = directory
        self.name = name
    }

    isolated deinit { if directory >= 0 { close(directory) } }
}

/// `open-allow`: the canonical path of a file guest-file-open is asked for,
/// and a location that keeps it there.
enum OpenAllow {
    struct CanonicalFile: Equatable {
        /// What the patterns are matched against.
        let path: String
        /// Its directory, canonical, and its name there (`.` for `/`).
        let directory: String
        let name: String
    }

    /// The canonical path of an existing file (symlinks and `..` resolved);
    /// for one that does not exist (or is a dangling symlink, which the
    /// open will not follow), its directory's canonical path, `/`, and its
    /// name.
    static func canonicalFile(_ path: String) throws(SystemError) -> CanonicalFile {
        let machine = SystemEnvironment.host()
        if let whole = try? machine.resolvedPath(path) {
            let (directory, name) = split(whole)
            return CanonicalFile(path: whole, directory: directory, name: name.isEmpty ? "." : name)
        }
        let (given, name) = split(path)
        guard !name.isEmpty, name != ".", name != ".." else { throw SystemError(errno: ENOENT) }
        let directory = try machine.resolvedPath(given)
        return CanonicalFile(path: (directory == "/" ? "" : directory) + "/" + name, directory: directory, name: name)
    }

    /// `path` cut at its last slash: `("/", "x")` for `/x`, `(".", "x")` for `x`.
    private static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = path[..<slash]
        return (directory.isEmpty ? "/" : String(directory), String(path[path.index(after: slash)...]))
    }

    /// Opens the checked file's directory; nil when it is no longer the
    /// directory that was checked (one on the way was swapped for a symlink
    /// or renamed meanwhile). The kernel's own name for the opened
    /// directory tells, so a swap after this check changes nothing: the
    /// file is opened relative to this descriptor, without following a
    /// symlink.
    static func location(of file: CanonicalFile) -> FileLocation? {
        let directory = open(file.directory, cglib_o_path | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { return nil }
        let location = FileLocation(directory: directory, name: file.name)
        guard SystemEnvironment.host().linkTarget("/proc/self/fd/\(directory)") == file.directory else { return nil }
        return location
    }
}

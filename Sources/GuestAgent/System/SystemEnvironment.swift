import Glibc

/// Where the agent finds the machine it manages: `/proc`, `/sys`, `/etc`,
/// the mount table, home directories, the clock and the programs it runs
/// (shutdown, hwclock, chpasswd, ...).
///
/// In production the root is `/`. Tests point it at a fixture tree (with the
/// environment variable `QGA_SYSTEM_ROOT`) so that commands which read or
/// change the machine run against trees and fake programs instead: a
/// fixture-rooted agent never runs a program, or sets a clock, outside its
/// tree.
package struct SystemEnvironment: Equatable, Sendable {
    /// The directory that stands for `/`.
    package var root: String
    /// The `PATH` that programs named without a slash are searched in; each
    /// directory is a directory of the managed machine.
    package var searchPath: String

    /// glibc's search path when `PATH` is unset.
    package static let defaultSearchPath = "/bin:/usr/bin"

    package init(root: String = "/", searchPath: String = SystemEnvironment.defaultSearchPath) {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        self.searchPath = searchPath
    }

    /// The environment of this process: `/`, unless `QGA_SYSTEM_ROOT` names
    /// a fixture tree, and the `PATH` it was started with.
    package static func current() -> SystemEnvironment {
        SystemEnvironment(
            root: getenv("QGA_SYSTEM_ROOT").map { String(cString: $0) } ?? "/",
            searchPath: getenv("PATH").map { String(cString: $0) } ?? defaultSearchPath)
    }

    package var isRealRoot: Bool { root == "/" }

    /// The real location of an absolute path of the managed machine, e.g.
    /// `/proc/self/mountinfo`, a mount point read from it, or `/sbin/poweroff`.
    package func path(_ absolutePath: String) -> String {
        isRealRoot ? absolutePath : root + absolutePath
    }

    /// The file to execute for a program as qemu-ga names it (execvp's
    /// rules): a name with a slash is that path, one without is searched in
    /// `searchPath`; absolute paths are the machine's (see `path`). Throws
    /// what exec would fail with: ENOENT, or EACCES when only unexecutable
    /// candidates exist.
    func executable(_ program: String) throws(SystemError) -> String {
        if program.contains("/") {
            return program.hasPrefix("/") ? path(program) : program
        }
        var denied = false
        for directory in searchPath.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate: String
            if directory.hasPrefix("/") {
                candidate = path(String(directory)) + "/" + program
            } else if isRealRoot {
                // An empty or relative entry is relative to the working directory.
                candidate = (directory.isEmpty ? "." : String(directory)) + "/" + program
            } else {
                continue  // a fixture never runs a program from outside its tree
            }
            var info = stat()
            guard stat(candidate, &info) == 0 else { continue }
            if (info.st_mode & S_IFMT) == S_IFREG && access(candidate, X_OK) == 0 { return candidate }
            denied = true
        }
        throw SystemError(errno: denied ? EACCES : ENOENT)
    }

    /// Sets the system clock (`settimeofday`). A fixture machine's clock is
    /// the file `<root>/settimeofday`, which receives `<seconds> <microseconds>`.
    func setTime(seconds: Int, microseconds: Int) throws(SystemError) {
        if isRealRoot {
            var value = timeval(tv_sec: seconds, tv_usec: microseconds)
            guard settimeofday(&value, nil) == 0 else { throw SystemError(errno: errno) }
            return
        }
        let fd = open(root + "/settimeofday", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemError(errno: errno) }
        writeAll(fd, Array("\(seconds) \(microseconds)\n".utf8))
        close(fd)
    }
}

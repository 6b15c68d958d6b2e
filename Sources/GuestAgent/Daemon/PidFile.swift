import Glibc

/// A pid file created and locked as qemu-ga does, kept open and locked for
/// the life of the process. Only a pid file this process created is removed.
final class PidFile {
    private let path: String
    private let descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Creates (without truncating first), locks, checks that the path still
    /// names the locked file, then writes `<pid>\n`. A second instance fails
    /// to lock: `Cannot lock pid file: Resource temporarily unavailable`.
    static func create(path: String) throws(PidFileError) -> PidFile {
        // Removal must find the file after chdir("/").
        let absolutePath = path.hasPrefix("/") ? path : currentDirectory() + "/" + path
        while true {
            let fd = open(absolutePath, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw PidFileError("Cannot open pid file", errno: errno) }
            var lock = flock()
            lock.l_type = Int16(F_WRLCK)
            lock.l_whence = Int16(SEEK_SET)
            guard fcntl(fd, F_SETLK, &lock) == 0 else { throw PidFileError("Cannot lock pid file", errno: errno, closing: fd) }
            var opened = stat(), named = stat()
            guard fstat(fd, &opened) == 0 else { throw PidFileError("Cannot stat file", errno: errno, closing: fd) }
            // Someone replaced or removed the file between open and lock: retry.
            guard stat(absolutePath, &named) == 0, named.st_ino == opened.st_ino, named.st_dev == opened.st_dev else {
                close(fd)
                continue
            }
            guard ftruncate(fd, 0) == 0 else { throw PidFileError("Failed to truncate pid file", errno: errno, closing: fd) }
            let text = Array("\(getpid())\n".utf8)
            guard write(fd, text, text.count) == text.count else {
                throw PidFileError("Failed to write pid file", errno: errno, closing: fd)
            }
            return PidFile(path: absolutePath, descriptor: fd)
        }
    }

    func remove() {
        unlink(path)
        close(descriptor)
    }
}

struct PidFileError: Error, CustomStringConvertible {
    let description: String

    init(_ message: String, errno: Int32, closing fd: Int32? = nil) {
        description = "\(message): \(SystemError(errno: errno))"
        if let fd { close(fd) }
    }
}

func currentDirectory() -> String {
    guard let directory = getcwd(nil, 0) else { return "." }
    defer { free(directory) }
    return String(cString: directory)
}

import Glibc

/// Puts the process in the background, the newest qemu-ga's way but with an
/// honest exit status: the parent waits until the child has finished
/// starting (pid file locked, stdio detached) and exits with the child's
/// verdict, so `qemu-ga -d` fails when the agent could not start.
enum Daemon {
    /// Returns in the child, with the pid file it created (nil without
    /// `pidFilePath`, as while frozen); the parent never returns.
    static func daemonize(pidFilePath: String?, log: GALog) -> PidFile? {
        var verdict: [Int32] = [0, 0]
        guard pipe(&verdict) == 0 else {
            log.critical("failed to daemonize")
            exit(1)
        }
        fflush(nil)  // nothing buffered may be written twice
        let child = fork()
        if child < 0 {
            log.critical("failed to daemonize")
            exit(1)
        }
        if child > 0 {
            close(verdict[1])
            var status: UInt8 = 1
            // No byte means the child died before it could say anything.
            let count = read(verdict[0], &status, 1)
            exit(count == 1 ? Int32(status) : 1)
        }
        close(verdict[0])
        let report = { (status: UInt8) in
            var status = status
            _ = write(verdict[1], &status, 1)
            close(verdict[1])
        }

        var pidFile: PidFile?
        if let pidFilePath {
            do {
                pidFile = try PidFile.create(path: pidFilePath)
            } catch {
                log.critical(error.description)
                report(1)
                exit(1)
            }
        }
        umask(0o077)
        guard setsid() >= 0, chdir("/") == 0 else {
            pidFile?.remove()
            log.critical("failed to daemonize")
            report(1)
            exit(1)
        }
        let null = open("/dev/null", O_RDWR)
        if null >= 0 {
            for fd in [STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO] { dup2(null, fd) }
            if null > STDERR_FILENO { close(null) }
        }
        report(0)
        return pidFile
    }
}

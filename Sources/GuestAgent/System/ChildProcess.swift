import CGLib
import Glibc

/// The one way the agent runs a program to completion (hwclock, shutdown,
/// chpasswd, the fsfreeze hook, systemctl and pm-utils): the newest qemu-ga's
/// child helper. The child starts a new session with the agent's environment;
/// its stdin is a pipe fed with `input` or /dev/null, its stdout and stderr one
/// pipe whose text goes into the error messages. The agent waits for it, as
/// qemu-ga does; with a timeout, a child still running then is killed with its
/// process group.
///
/// The program is found through the system root (`SystemEnvironment.executable`),
/// so a fixture-rooted agent only ever runs fake programs of its tree.
///
/// One of the agent's two ways to start a child. This one is on posix_spawn,
/// for the helpers qemu-ga runs synchronously: nothing else happens until the
/// child is done, so no main-loop machinery is needed. guest-exec's children,
/// which run while the agent goes on answering, are `ExecChild`'s.
enum ChildProcess {
    enum Ending: Equatable {
        case exited(Int32)
        case signaled(Int32)
        /// Killed after running `seconds` without finishing.
        case timedOut(seconds: Int)
    }

    struct Outcome {
        let ending: Ending
        /// Everything the child wrote on stdout and stderr.
        let output: [UInt8]
        /// Why the program could not be executed (it then "exited" 1 with
        /// exec's complaint as its output, as qemu-ga's child does).
        let execError: SystemError?

        /// qemu-ga's verdict on a child that ran for `action`: nothing when it
        /// exited 0, else qemu-ga's texts: "child process has failed to
        /// <action>: " with the output or the exit status, or "child process
        /// has terminated abnormally" (and the output) after a signal.
        func check(action: String) throws(QMPError) {
            // Like qemu-ga, whether there is output counts bytes, while the
            // text stops at a NUL byte.
            let text = String(decoding: output.prefix { $0 != 0 }, as: UTF8.self)
            switch ending {
            case .exited(0):
                return
            case .exited(let status):
                throw QMPError("child process has failed to \(action): " + (output.isEmpty ? "exit status \(status)" : text))
            case .signaled:
                throw QMPError("child process has terminated abnormally" + (output.isEmpty ? "" : ": " + text))
            case .timedOut(let seconds):
                throw QMPError("child process has failed to \(action): timed out after \(seconds) s and was killed")
            }
        }
    }

    /// Runs `arguments` (argv, argv[0] the program as qemu-ga names it) and
    /// requires success: the error texts of `Outcome.check` otherwise.
    static func run(
        _ arguments: [String], input: [UInt8]? = nil, action: String, system: SystemEnvironment, timeout: Int? = nil
    ) throws(QMPError) {
        try outcome(of: arguments, input: input, action: action, system: system, timeout: timeout).check(action: action)
    }

    /// Runs `arguments` and reports how the child ended. Throws only when the
    /// child could not be run or waited for (pipes, fork, wait).
    static func outcome(
        of arguments: [String], input: [UInt8]? = nil, action: String, system: SystemEnvironment, timeout: Int? = nil
    ) throws(QMPError) -> Outcome {
        let program = arguments[0]
        let executable: String
        do {
            executable = try system.executable(program)
        } catch {
            return execFailure(program, error.errno)
        }
        var inputPipe: [Int32] = [-1, -1], outputPipe: [Int32] = [-1, -1]
        defer { (inputPipe + outputPipe).filter { $0 >= 0 }.forEach { close($0) } }
        guard input == nil || g_unix_open_pipe(&inputPipe, FD_CLOEXEC, nil) != 0,
              g_unix_open_pipe(&outputPipe, FD_CLOEXEC, nil) != 0
        else { throw QMPError("cannot create pipe FDs") }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if input != nil {
            posix_spawn_file_actions_adddup2(&actions, inputPipe[0], STDIN_FILENO)
        } else {
            posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDWR, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, outputPipe[1], STDOUT_FILENO)
        posix_spawn_file_actions_adddup2(&actions, outputPipe[1], STDERR_FILENO)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // No signal blocked, whatever the calling thread blocks (the main
        // thread of qemu-ga, which forks, blocks none).
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        posix_spawnattr_setsigmask(&attributes, &unblocked)
        posix_spawnattr_setflags(&attributes, cglib_posix_spawn_setsid | Int16(POSIX_SPAWN_SETSIGMASK))

        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, &argv, environ)
        closeDescriptor(&inputPipe[0])
        closeDescriptor(&outputPipe[1])
        switch spawned {
        case 0: break
        // fork's failures; anything else is exec's
        case EAGAIN, ENOMEM: throw QMPError("failed to create child process: \(SystemError(errno: spawned))")
        default: return execFailure(program, spawned)
        }

        let deadline = timeout.map { monotonicMilliseconds() + Int64($0) * 1000 }
        var failure: QMPError?
        if let input {
            ignoreBrokenPipes()
            if let error = feed(input, to: inputPipe[1]) {
                failure = QMPError("\(action): cannot write to stdin pipe: \(error)")
            }
            closeDescriptor(&inputPipe[1])
        }
        var output: [UInt8] = []
        var timedOut = false
        let killSession = {
            // The whole session: a hook's own children go too.
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
            timedOut = true
        }
        if failure == nil {
            switch readAll(outputPipe[0], until: deadline, into: &output) {
            case .finished: break
            case .failed(let error): failure = QMPError("\(action): cannot read from stdout/stderr pipe: \(error)")
            case .deadlinePassed: killSession()
            }
        }
        closeDescriptor(&outputPipe[0])

        // A child that closed its output may still run: the deadline holds
        // for the wait too.
        var status: Int32 = 0
        while true {
            let polling = deadline != nil && !timedOut
            let result = waitpid(pid, &status, polling ? WNOHANG : 0)
            if result == pid { break }
            if result < 0 {
                if errno == EINTR { continue }
                throw failure ?? QMPError("failed to wait for child (pid: \(pid)): \(SystemError.current)")
            }
            if let deadline, monotonicMilliseconds() >= deadline {
                killSession()
            } else {
                usleep(10_000)
            }
        }
        if let failure { throw failure }
        let ending: Ending
        if timedOut, let timeout {
            ending = .timedOut(seconds: timeout)
        } else if status & 0x7F == 0 {
            ending = .exited((status >> 8) & 0xFF)
        } else {
            ending = .signaled(status & 0x7F)
        }
        return Outcome(ending: ending, output: output, execError: nil)
    }

    /// What qemu-ga's child reports when exec fails: `perror` into the pipe, exit 1.
    private static func execFailure(_ program: String, _ code: Int32) -> Outcome {
        Outcome(ending: .exited(1), output: Array("failed to exec '\(program)': \(SystemError(errno: code))\n".utf8),
                execError: SystemError(errno: code))
    }

    private static func closeDescriptor(_ fd: inout Int32) {
        if fd >= 0 { close(fd) }
        fd = -1
    }

    /// Writes everything, or returns the error.
    private static func feed(_ bytes: [UInt8], to fd: Int32) -> SystemError? {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return SystemError.current
            }
            offset += written
        }
        return nil
    }

    private enum ReadEnd { case finished, failed(SystemError), deadlinePassed }

    /// Reads until end of file, an error, or the deadline (a monotonic time
    /// in milliseconds; nil waits forever).
    private static func readAll(_ fd: Int32, until deadline: Int64?, into output: inout [UInt8]) -> ReadEnd {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if let deadline {
                let left = deadline - monotonicMilliseconds()
                guard left > 0 else { return .deadlinePassed }
                var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&descriptor, 1, Int32(min(left, Int64(Int32.max))))
                if ready < 0 && errno != EINTR { return .failed(SystemError.current) }
                if ready <= 0 { continue }
            }
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failed(SystemError.current)
            }
            if count == 0 { return .finished }
            output += chunk[0..<count]
        }
    }

    private static func monotonicMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}

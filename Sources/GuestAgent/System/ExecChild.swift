import CGLib
import Glibc

/// Starting a program as qemu-ga's guest-exec does, through GLib's spawn:
/// PATH search (in the given environment's PATH when there is one), the
/// child not reaped by GLib (a child watch does that), every descriptor but
/// 0, 1 and 2 closed in the child, SIGPIPE back to its default.
///
/// One of the agent's two ways to start a child. This one is for guest-exec:
/// the agent does not wait, so, as in qemu-ga, the child's end and its pipes
/// are watched on the main loop (GLib's spawn, child watch and I/O watches)
/// while the agent keeps answering. The helpers qemu-ga runs and waits for
/// (hwclock, shutdown, the fsfreeze hook, ...) go through `ChildProcess`.
enum ExecChild {
    /// Where one of the child's output streams goes.
    enum Output {
        case devNull
        /// A pipe the agent reads.
        case pipe
        /// Stderr only: the same pipe as stdout.
        case stdout
    }

    struct Started {
        let pid: pid_t
        /// The agent's ends of the pipes that were asked for, non-blocking.
        let stdin: PipeEnd?
        let stdout: PipeEnd?
        let stderr: PipeEnd?
    }

    /// The child's error, worded by GLib (e.g. `Failed to execute child
    /// process “x” (No such file or directory)`).
    struct SpawnError: Error {
        let message: String
    }

    /// - Parameters:
    ///   - program: the file to run, already found (no PATH search); argv[0]
    ///     stays as given. Without it, argv[0] is searched as described above.
    ///   - environment: replaces the agent's environment when given.
    ///   - stdinPipe: a pipe to the child's stdin, else /dev/null.
    static func spawn(
        argv: [String], program: String? = nil, environment: [String]?, stdinPipe: Bool, stdout: Output, stderr: Output
    ) throws(SpawnError) -> Started {
        // GLib makes the pipes it is given a place for (close-on-exec on our
        // side); a nil place means /dev/null, or with `merged` stderr the
        // stdout pipe, which the child setup puts there.
        var flags = G_SPAWN_DO_NOT_REAP_CHILD.rawValue
        if program == nil {
            flags |= G_SPAWN_SEARCH_PATH.rawValue | G_SPAWN_SEARCH_PATH_FROM_ENVP.rawValue
        } else {
            flags |= G_SPAWN_FILE_AND_ARGV_ZERO.rawValue
        }
        if stdout == .devNull { flags |= G_SPAWN_STDOUT_TO_DEV_NULL.rawValue }
        if stderr == .devNull { flags |= G_SPAWN_STDERR_TO_DEV_NULL.rawValue }
        var stdinFD: Int32 = -1, stdoutFD: Int32 = -1, stderrFD: Int32 = -1
        var pid: GPid = 0
        var error: UnsafeMutablePointer<GError>?
        let mergeStderr = stderr == .stdout ? UnsafeMutableRawPointer(bitPattern: 1) : nil
        let started = withCStrings(program.map { [$0] + argv } ?? argv) { cArgv in
            withOptionalCStrings(environment) { cEnvironment in
                withOptionalPlace(stdinPipe, &stdinFD) { stdinPlace in
                    withOptionalPlace(stdout == .pipe, &stdoutFD) { stdoutPlace in
                        withOptionalPlace(stderr == .pipe, &stderrFD) { stderrPlace in
                            g_spawn_async_with_pipes(
                                nil, cArgv, cEnvironment,
                                GSpawnFlags(rawValue: flags), cglib_exec_child_setup, mergeStderr,
                                &pid, stdinPlace, stdoutPlace, stderrPlace, &error)
                        }
                    }
                }
            }
        }
        guard started != 0 else { throw SpawnError(message: takeErrorMessage(&error)) }
        func end(_ descriptor: Int32) -> PipeEnd? { descriptor >= 0 ? PipeEnd(descriptor) : nil }
        return Started(pid: pid, stdin: end(stdinFD), stdout: end(stdoutFD), stderr: end(stderrFD))
    }
}

/// `&place` when `wanted`, else nil: GLib makes a pipe only where it is
/// given a place for its descriptor.
private func withOptionalPlace<R>(_ wanted: Bool, _ place: inout Int32, _ body: (UnsafeMutablePointer<Int32>?) -> R) -> R {
    guard wanted else { return body(nil) }
    return withUnsafeMutablePointer(to: &place) { body($0) }
}

/// A NULL-terminated C array of copies of the strings, valid during `body`
/// (mutable, as GLib's spawn functions declare their vectors).
private func withCStrings<R>(_ strings: [String], _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var array: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
    defer { array.forEach { free($0) } }
    return array.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
}

private func withOptionalCStrings<R>(_ strings: [String]?, _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> R) -> R {
    guard let strings else { return body(nil) }
    return withCStrings(strings) { body($0) }
}

/// The agent's end of a pipe to a child: non-blocking, watched from the
/// main loop, closed when done with (or when dropped).
final class PipeEnd {
    private(set) var descriptor: Int32
    private var watchSource: GLibSource?

    init(_ descriptor: Int32) {
        self.descriptor = descriptor
        let flags = fcntl(descriptor, F_GETFL)
        if flags >= 0 { _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK) }
    }

    isolated deinit { close() }

    /// Calls `handler` while `condition` holds, until it returns false or
    /// the pipe is closed.
    func watch(_ condition: GIOCondition, _ handler: @escaping (GIOCondition) -> Bool) {
        watchSource?.cancel()
        watchSource = GLibSource.watch(descriptor: descriptor, condition, handler)
    }

    func close() {
        watchSource?.cancel()
        watchSource = nil
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        descriptor = -1
    }

    enum Transfer: Equatable {
        case done(Int)
        /// Nothing now (EAGAIN); the watch fires again when there is.
        case wouldBlock
        /// End of file (a read of 0 bytes).
        case end
        case failed(SystemError)
    }

    /// One read(2) into `buffer`.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Transfer {
        transfer { Glibc.read(descriptor, buffer.baseAddress!, buffer.count) }
    }

    /// One write(2) of as much of `bytes[offset...]` as the pipe takes.
    func write(_ bytes: [UInt8], from offset: Int) -> Transfer {
        bytes.withUnsafeBytes { buffer in
            transfer { Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset) }
        }
    }

    private func transfer(_ call: () -> Int) -> Transfer {
        while true {
            let count = call()
            if count > 0 { return .done(count) }
            if count == 0 { return .end }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: return .failed(SystemError.current)
            }
        }
    }
}

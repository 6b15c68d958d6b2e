#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Milliseconds left until `deadline` (never negative), for `poll`.
func millisecondsLeft(until deadline: ContinuousClock.Instant) -> Int32 {
    let left = ContinuousClock.now.duration(to: deadline)
    if left <= .zero { return 0 }
    let (seconds, attoseconds) = left.components
    let ms = seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1
    return Int32(min(ms, 60_000))
}

func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) + " (errno \(code))" }

/// One client connection to an agent's unix-listen socket.
///
/// The socket is non-blocking. Every wait is a `poll` with a deadline; while
/// sending, replies are read into `pending` at the same time, so that a long
/// pipelined write can never deadlock against an agent that blocks writing
/// its replies.
final class Connection {
    private(set) var fd: Int32
    /// Received bytes not yet handed out by a `receive…` call.
    private(set) var pending = Bytes()
    /// The agent closed its end (EOF) or reset the connection.
    private(set) var peerClosed = false
    private(set) var readError: String?
    private var scratch = Bytes(repeating: 0, count: 1 << 20)

    /// Connects; throws `HarnessError` with the errno text on failure.
    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: \(errnoText())") }
        // A connect that has to wait for a full backlog gives up after 5 s.
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Bytes(path.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close()
            throw HarnessError("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: pathBytes) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let text = errnoText()
            close()  // and fd = -1: deinit runs after a throw and must not close a reused number
            throw HarnessError("connect \(path): \(text)")
        }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    deinit { close() }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// shutdown(SHUT_WR): the agent sees EOF, we can still read.
    func halfClose() throws {
        guard shutdown(fd, Int32(SHUT_WR)) == 0 else { throw HarnessError("shutdown: \(errnoText())") }
    }

    // MARK: Sending

    /// Writes all of `bytes` (one byte per `send` call if `perByte`), reading
    /// replies into `pending` meanwhile. Throws if the agent stops reading
    /// for `timeout` or the connection breaks.
    func send(_ bytes: Bytes, perByte: Bool = false, timeout: Duration = .seconds(10)) throws {
        var offset = 0
        var deadline = ContinuousClock.now + timeout
        try bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                var pollFD = pollfd(fd: fd, events: Int16(POLLOUT) | (peerClosed ? 0 : Int16(POLLIN)), revents: 0)
                let ready = poll(&pollFD, 1, millisecondsLeft(until: deadline))
                if ready < 0 {
                    if errno == EINTR { continue }
                    throw HarnessError("poll: \(errnoText())")
                }
                if ready == 0 {
                    throw HarnessError(
                        "send stalled: the agent read nothing for \(timeout) "
                            + "(\(offset) of \(raw.count) bytes sent, \(pending.count) reply bytes received)")
                }
                if pollFD.revents & Int16(POLLIN) != 0 { _ = readAvailable() }
                if pollFD.revents & Int16(POLLOUT | POLLERR | POLLHUP) != 0 {
                    let length = perByte ? 1 : min(raw.count - offset, 1 << 20)
                    let written = Glibc.send(fd, raw.baseAddress! + offset, length, Int32(MSG_NOSIGNAL))
                    if written < 0 {
                        if errno == EAGAIN || errno == EINTR { continue }
                        throw HarnessError(
                            "send failed after \(offset) of \(raw.count) bytes: \(errnoText())")
                    }
                    offset += written
                    deadline = ContinuousClock.now + timeout
                }
            }
        }
    }

    func send(_ text: String, perByte: Bool = false, timeout: Duration = .seconds(10)) throws {
        try send(wire(text), perByte: perByte, timeout: timeout)
    }

    /// Writes as much of `bytes` as the agent accepts without ever reading a
    /// reply; stops when the socket stays unwritable for `stall`. Returns the
    /// number of bytes written. For "client never reads" scenarios.
    func sendWithoutReading(_ bytes: Bytes, stall: Duration = .milliseconds(200)) throws -> Int {
        var offset = 0
        try bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                let written = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if written >= 0 { offset += written; continue }
                guard errno == EAGAIN || errno == EINTR else {
                    throw HarnessError("send failed after \(offset) bytes: \(errnoText())")
                }
                var pollFD = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&pollFD, 1, millisecondsLeft(until: ContinuousClock.now + stall)) == 0 { return }
            }
        }
        return offset
    }

    // MARK: Receiving

    /// Reads whatever is available now into `pending`. Returns false once the
    /// agent has closed the connection.
    @discardableResult
    private func readAvailable() -> Bool {
        while !peerClosed {
            let count = scratch.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if count > 0 {
                pending.append(contentsOf: scratch[0..<count])
                continue
            }
            if count == 0 {
                peerClosed = true
            } else if errno == EAGAIN || errno == EINTR {
                return true
            } else {
                readError = errnoText()
                peerClosed = true
            }
        }
        return false
    }

    /// Waits until readable (or the deadline) and reads. Returns false on
    /// timeout or if the peer has closed.
    private func waitAndRead(deadline: ContinuousClock.Instant) throws -> Bool {
        if peerClosed { return false }
        var pollFD = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&pollFD, 1, millisecondsLeft(until: deadline))
        if ready < 0 {
            if errno == EINTR { return true }
            throw HarnessError("poll: \(errnoText())")
        }
        if ready == 0 { return false }
        return readAvailable() || !pending.isEmpty
    }

    private func take(_ count: Int) -> Bytes {
        let result = Bytes(pending[0..<count])
        pending.removeFirst(count)
        return result
    }

    private func timeoutError(_ what: String, _ timeout: Duration) -> HarnessError {
        let state = peerClosed ? "the agent closed the connection\(readError.map { " (\($0))" } ?? "")" : "timed out after \(timeout)"
        return HarnessError("\(what): \(state); received so far (\(pending.count) bytes): \(render(pending))")
    }

    /// The next `lines` complete reply lines (through their LF).
    func receive(lines: Int, timeout: Duration = .seconds(10)) throws -> Bytes {
        let deadline = ContinuousClock.now + timeout
        var seen = 0
        var scanned = 0
        while true {
            // memchr: replies of tens of MiB are scanned at memory speed.
            while scanned < pending.count, let newline = pending.withUnsafeBytes({ bytes in
                memchr(bytes.baseAddress! + scanned, 0x0A, bytes.count - scanned).map { bytes.baseAddress!.distance(to: $0) }
            }) {
                scanned = newline + 1
                seen += 1
                if seen == lines { return take(scanned) }
            }
            scanned = pending.count
            if lines == 0 { return [] }
            guard try waitAndRead(deadline: deadline) || ContinuousClock.now < deadline && !peerClosed else {
                throw timeoutError("waiting for \(lines) lines (got \(seen))", timeout)
            }
        }
    }

    /// Everything up to and including the first occurrence of `marker`.
    func receive(through marker: Bytes, timeout: Duration = .seconds(10)) throws -> Bytes {
        let deadline = ContinuousClock.now + timeout
        var searchFrom = 0
        while true {
            if let end = find(marker, from: searchFrom) { return take(end) }
            searchFrom = max(0, pending.count - marker.count + 1)
            guard try waitAndRead(deadline: deadline) || ContinuousClock.now < deadline && !peerClosed else {
                throw timeoutError("waiting for \(render(marker))", timeout)
            }
        }
    }

    /// End offset of the first `marker` at or after `from` in `pending`.
    private func find(_ marker: Bytes, from: Int) -> Int? {
        guard let first = marker.first, pending.count - from >= marker.count else { return nil }
        return pending.withUnsafeBytes { hay in
            marker.withUnsafeBytes { needle in
                var start = from
                while hay.count - start >= needle.count {
                    guard let hit = memchr(hay.baseAddress! + start, Int32(first), hay.count - start - needle.count + 1)
                    else { return nil }
                    let offset = hay.baseAddress!.distance(to: UnsafeRawPointer(hit))
                    if memcmp(hay.baseAddress! + offset, needle.baseAddress!, needle.count) == 0 {
                        return offset + needle.count
                    }
                    start = offset + 1
                }
                return nil
            }
        }
    }

    /// Everything received until nothing more arrives for `quiet` (or the
    /// agent closes). Fails only if data keeps flowing for `limit`.
    func receiveUntilQuiet(quiet: Duration = .milliseconds(300), limit: Duration = .seconds(30)) throws -> Bytes {
        let end = ContinuousClock.now + limit
        while !peerClosed {
            let before = pending.count
            let deadline = min(ContinuousClock.now + quiet, end)
            _ = try waitAndRead(deadline: deadline)
            if pending.count == before {
                if ContinuousClock.now >= deadline { break }
                continue
            }
            if ContinuousClock.now >= end { throw timeoutError("still receiving after \(limit)", limit) }
        }
        return take(pending.count)
    }

    /// Everything until the agent closes the connection.
    func receiveUntilClosed(timeout: Duration = .seconds(10)) throws -> Bytes {
        let deadline = ContinuousClock.now + timeout
        while !peerClosed {
            guard try waitAndRead(deadline: deadline) || ContinuousClock.now < deadline else {
                throw timeoutError("waiting for the agent to close the connection", timeout)
            }
        }
        return take(pending.count)
    }

    /// True once a reply byte sits unread in the socket (the bytes stay
    /// queued in the kernel: MSG_PEEK).
    func waitUntilReplyQueued(timeout: Duration = .seconds(10)) throws {
        var pollFD = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pollFD, 1, millisecondsLeft(until: ContinuousClock.now + timeout)) == 1 else {
            throw HarnessError("no reply became readable within \(timeout)")
        }
        var byte: UInt8 = 0
        guard recv(fd, &byte, 1, Int32(MSG_PEEK)) == 1 else {
            throw HarnessError("MSG_PEEK found no reply byte: \(errnoText())")
        }
    }
}

import CGLib
import Glibc

/// A listening stream socket that hands over one client at a time, as
/// qemu-ga does: the listen watch is dropped while a client is connected and
/// restored when it goes, so further clients wait in the kernel's backlog.
final class ListeningSocket {
    private let channel: UnsafeMutablePointer<GIOChannel>
    private var watch: GLibSource?
    private var pause: GLibSource?
    let descriptor: Int32
    private let log: GALog
    /// Called with each accepted client descriptor (non-blocking, close-on-exec).
    var onAccept: (Int32) -> Void = { _ in }
    /// Called once when the socket cannot accept any more (an error other
    /// than a client that gave up or a passing shortage); nothing is watched
    /// afterwards.
    var onFailure: (Int32) -> Void = { _ in }

    /// How long to wait before accepting again when the process is out of
    /// descriptors or memory: the pending client stays in the backlog, so
    /// trying again at once would spin.
    static let shortageDelay: UInt32 = 1000

    /// Takes ownership of a bound, listening socket.
    init(descriptor: Int32, log: GALog) {
        self.descriptor = descriptor
        self.log = log
        // accept must not block if a client leaves between poll and accept.
        let flags = fcntl(descriptor, F_GETFL)
        if flags >= 0 { _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK) }
        channel = g_io_channel_unix_new(descriptor)
        g_io_channel_set_close_on_unref(channel, 1)
    }

    isolated deinit {
        watch?.cancel()
        pause?.cancel()
        g_io_channel_unref(channel)
    }

    func startAccepting() {
        guard watch?.isActive != true, pause?.isActive != true else { return }
        watch = GLibSource.watch(channel, ioCondition(G_IO_IN, G_IO_ERR, G_IO_HUP, G_IO_NVAL)) { [weak self] _ in
            self?.acceptClient() ?? false
        }
    }

    func stopAccepting() {
        watch?.cancel()
        pause?.cancel()
    }

    private func acceptClient() -> Bool {
        let client = accept4(descriptor, nil, nil, Int32(SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue))
        if client >= 0 {
            onAccept(client)
            return false
        }
        let error = errno
        switch error {
        case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, EPROTO, EPERM:
            return true  // the client left before we got to it
        case EMFILE, ENFILE, ENOBUFS, ENOMEM:
            log.warning("error accepting client: \(SystemError(errno: error))")
            pause = GLibSource.timeout(milliseconds: Self.shortageDelay) { [weak self] in
                self?.pause?.cancel()
                self?.startAccepting()
                return false
            }
            return false
        default:
            log.warning("error accepting client: \(SystemError(errno: error))")
            onFailure(error)
            return false
        }
    }

    /// A unix stream socket bound at `path`, listening with qemu-ga's backlog
    /// of 1, as QEMU's `unix_listen`: an empty path means a fresh
    /// `$TMPDIR/qemu-socket-XXXXXX`; an old socket at the path is replaced.
    /// Unlike qemu-ga, a file at the path that is not a socket is left alone
    /// and refused.
    static func unix(path requested: String, log: GALog) throws(ChannelError) -> ListeningSocket {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ChannelError("Failed to create Unix socket", errno: errno) }
        do throws(ChannelError) {
            var path = requested
            if path.isEmpty {
                let directory = ProcessEnvironment.value("TMPDIR") ?? "/tmp"
                var template = Array("\(directory)/qemu-socket-XXXXXX".utf8CString)
                let temporary = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
                path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                guard temporary >= 0 else { throw ChannelError("Failed to make a temporary socket \(path)", errno: errno) }
                Glibc.close(temporary)
            }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let pathBytes = Array(path.utf8)
            // As QEMU: a path that fills sun_path exactly is used unterminated.
            guard pathBytes.count <= MemoryLayout.size(ofValue: address.sun_path) else {
                throw ChannelError("UNIX socket path '\(path)' is too long", permanent: true)
            }
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: pathBytes) }

            var status = stat()
            // (The temporary file of an empty path is ours to replace.)
            if !requested.isEmpty, lstat(path, &status) == 0 {
                let type = status.st_mode & S_IFMT
                // A directory makes unlink fail with qemu-ga's own text below.
                if type != S_IFSOCK && type != S_IFDIR {
                    throw ChannelError("Failed to bind socket to \(path): the path exists and is not a socket; not replacing it")
                }
            }
            if unlink(path) < 0 && errno != ENOENT {
                throw ChannelError("Failed to unlink socket \(path)", errno: errno)
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            guard bound == 0 else { throw ChannelError("Failed to bind socket to \(path)", errno: errno) }
            guard listen(fd, 1) == 0 else { throw ChannelError("Failed to listen on socket", errno: errno) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return ListeningSocket(descriptor: fd, log: log)
    }

    /// A vsock stream socket bound to `address`, listening with a backlog of
    /// 1, with QEMU's `vsock_listen_saddr` error texts.
    static func vsock(_ address: VsockAddress, log: GALog) throws(ChannelError) -> ListeningSocket {
        let fd = socket(AF_VSOCK, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ChannelError("Failed to create socket", errno: errno) }
        var socketAddress = sockaddr_vm()
        socketAddress.svm_family = sa_family_t(AF_VSOCK)
        socketAddress.svm_cid = address.cid
        socketAddress.svm_port = address.port
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_vm>.size))
            }
        }
        guard bound == 0 else {
            let error = errno
            Glibc.close(fd)
            throw ChannelError("Failed to bind socket", errno: error)
        }
        guard listen(fd, 1) == 0 else {
            let error = errno
            Glibc.close(fd)
            throw ChannelError("Failed to listen on socket", errno: error)
        }
        return ListeningSocket(descriptor: fd, log: log)
    }
}

/// A vsock `<cid>:<port>` as `-p` gives it, parsed as QEMU's `vsock_parse`
/// (`sscanf("%32[^:]:%32[^,]%n")`) and `parse_uint_full` do: each part a
/// decimal up to 4294967295, leading white space and `+` allowed, `-` never.
struct VsockAddress: Equatable {
    let cid: UInt32
    let port: UInt32

    init(cid: UInt32, port: UInt32) {
        self.cid = cid
        self.port = port
    }

    init(parsing text: String) throws(ChannelError) {
        let bytes = Array(text.utf8)
        // %32[^:] then ':' then %32[^,]: each field one to 32 bytes.
        var index = 0
        while index < bytes.count, index < 32, bytes[index] != UInt8(ascii: ":") { index += 1 }
        let cidEnd = index
        guard cidEnd > 0, index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
            throw ChannelError("error parsing address '\(text)'", permanent: true)
        }
        index += 1
        let portStart = index
        while index < bytes.count, index - portStart < 32, bytes[index] != UInt8(ascii: ",") { index += 1 }
        guard index > portStart else { throw ChannelError("error parsing address '\(text)'", permanent: true) }
        guard index == bytes.count else {
            throw ChannelError("trailing characters in address '\(text)'", permanent: true)
        }
        let cidText = String(decoding: bytes[0..<cidEnd], as: UTF8.self)
        let portText = String(decoding: bytes[portStart..<index], as: UTF8.self)
        guard let cid = Self.parseUInt32(bytes[0..<cidEnd]) else {
            throw ChannelError("Failed to parse cid '\(cidText)'", permanent: true)
        }
        guard let port = Self.parseUInt32(bytes[portStart..<index]) else {
            throw ChannelError("Failed to parse port '\(portText)'", permanent: true)
        }
        self.cid = cid
        self.port = port
    }

    /// QEMU's `parse_uint_full(s, &value, 10)` followed by `value > UINT32_MAX`
    /// being refused: `strtoull` syntax (leading C-locale white space, an
    /// optional sign, digits), the whole string consumed, no minus sign.
    static func parseUInt32(_ bytes: ArraySlice<UInt8>) -> UInt32? {
        var index = bytes.startIndex
        // isspace in the C locale: space, \t, \n, \v, \f, \r.
        while index < bytes.endIndex, bytes[index] == 0x20 || (0x09...0x0D).contains(bytes[index]) { index += 1 }
        if index < bytes.endIndex, bytes[index] == UInt8(ascii: "-") { return nil }
        if index < bytes.endIndex, bytes[index] == UInt8(ascii: "+") { index += 1 }
        guard index < bytes.endIndex else { return nil }
        var value: UInt64 = 0
        var overflow = false
        while index < bytes.endIndex {
            let byte = bytes[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            if !overflow {
                value = value * 10 + UInt64(byte - UInt8(ascii: "0"))
                overflow = value > UInt64(UInt32.max)
            }
            index += 1
        }
        return overflow ? nil : UInt32(value)
    }
}

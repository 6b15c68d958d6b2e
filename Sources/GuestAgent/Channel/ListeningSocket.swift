import CGLib
import Glibc

/// A listening stream socket that hands over one client at a time, as
/// qemu-ga does: the listen watch is dropped while a client is connected and
/// restored when it goes, so further clients wait in the kernel's backlog.
final class ListeningSocket {
    private let channel: UnsafeMutablePointer<GIOChannel>
    private var watch: GLibSource?
    private let descriptor: Int32
    /// Called with each accepted client descriptor (non-blocking, close-on-exec).
    var onAccept: (Int32) -> Void = { _ in }

    /// Takes ownership of a bound, listening socket.
    init(descriptor: Int32) {
        self.descriptor = descriptor
        channel = g_io_channel_unix_new(descriptor)
        g_io_channel_set_close_on_unref(channel, 1)
    }

    isolated deinit {
        watch?.cancel()
        g_io_channel_unref(channel)
    }

    func startAccepting() {
        guard watch?.isActive != true else { return }
        watch = GLibSource.watch(channel, G_IO_IN) { [weak self] _ in
            self?.acceptClient() ?? false
        }
    }

    private func acceptClient() -> Bool {
        let client = accept4(descriptor, nil, nil, Int32(SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue))
        guard client >= 0 else { return true }  // the client left before we got to it
        onAccept(client)
        return false
    }

    /// A unix stream socket bound at `path`, listening with qemu-ga's backlog.
    static func unix(path: String) throws(ChannelError) -> ListeningSocket {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !pathBytes.isEmpty, pathBytes.count < capacity else {
            throw ChannelError("UNIX socket path '\(path)' is too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: pathBytes) }

        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ChannelError("Failed to create socket", errno: errno) }
        unlink(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else {
            let error = errno
            close(fd)
            throw ChannelError("Failed to bind socket to \(path)", errno: error)
        }
        guard listen(fd, 1) == 0 else {
            let error = errno
            close(fd)
            throw ChannelError("Failed to listen on socket", errno: error)
        }
        return ListeningSocket(descriptor: fd)
    }
}

/// Why a channel could not be opened, in qemu-ga's words.
public struct ChannelError: Error, CustomStringConvertible {
    public let description: String

    init(_ message: String) { description = message }

    init(_ message: String, errno: Int32) {
        description = "\(message): \(SystemError(errno: errno))"
    }
}

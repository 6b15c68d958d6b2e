import CGLib
import Glibc

/// systemd-style socket activation, as QEMU's `check_socket_activation` and
/// qemu-ga's startup use it.
package enum SocketActivation {
    /// `SD_LISTEN_FDS_START`.
    package static let firstDescriptor: Int32 = 3

    /// The listening socket systemd passed, if the environment says this
    /// process was socket-activated; the method follows from the socket's
    /// family and replaces `-m`/`-p`.
    ///
    /// Activation applies when `LISTEN_PID` is this process's pid and
    /// `LISTEN_FDS` is a positive number (both parsed as `qemu_strtoul`:
    /// decimal, whole string). Then both variables are unset and every passed
    /// descriptor gets `FD_CLOEXEC`; more than one descriptor, or a socket
    /// that is neither AF_UNIX nor AF_VSOCK, is an error. Otherwise the
    /// environment is left alone and the result is nil.
    ///
    /// `firstDescriptor` is for tests; qemu-ga always uses 3.
    package static func inheritedListener(
        firstDescriptor: Int32 = SocketActivation.firstDescriptor
    ) throws(SocketActivationError) -> (method: ChannelMethod, descriptor: Int32)? {
        guard let pid = environmentNumber("LISTEN_PID"), pid == UInt64(getpid()),
              let count = environmentNumber("LISTEN_FDS"), count > 0
        else { return nil }
        unsetenv("LISTEN_FDS")
        unsetenv("LISTEN_PID")

        // So the descriptors do not leak into children; one that cannot be
        // marked was never passed, and activation has gone wrong.
        var fd = firstDescriptor
        for _ in 0..<count {
            let flags = fcntl(fd, F_GETFD)
            if flags == -1 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == -1 {
                throw .invalidDescriptor(fd, errno: errno)
            }
            fd += 1
        }
        guard count == 1 else { throw .multipleSockets }

        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(firstDescriptor, $0, &length) }
        }
        guard named == 0 else { throw .unsupportedType }
        switch Int32(address.ss_family) {
        case AF_UNIX: return (.unixListen, firstDescriptor)
        case AF_VSOCK: return (.vsockListen, firstDescriptor)
        default: throw .unsupportedType
        }
    }

    /// `qemu_strtoul(value, NULL, 10, &n) == 0`: leading white space and a
    /// sign allowed (a negative number wraps), the whole string a number, no
    /// overflow.
    private static func environmentNumber(_ name: String) -> UInt64? {
        guard let text = getenv(name) else { return nil }
        var end: UnsafeMutablePointer<CChar>?
        errno = 0
        let value = strtoul(text, &end, 10)
        guard errno == 0, let end, end != text, end.pointee == 0 else { return nil }
        return UInt64(value)
    }
}

/// Why socket activation failed; qemu-ga exits 1 in each case.
package enum SocketActivationError: Error, Equatable, CustomStringConvertible {
    /// A passed descriptor is not open. qemu-ga reports it with QEMU's
    /// `error_report`: the bare text on a line of stderr.
    case invalidDescriptor(Int32, errno: Int32)
    /// `LISTEN_FDS` > 1. A GLib critical in qemu-ga (before its log handler,
    /// so in GLib's default format).
    case multipleSockets
    /// fd 3 is not an AF_UNIX or AF_VSOCK socket. A GLib critical too.
    case unsupportedType

    package var description: String {
        switch self {
        case .invalidDescriptor(let fd, let error):
            "Socket activation failed: invalid file descriptor fd = \(fd): \(SystemError(errno: error))"
        case .multipleSockets:
            "qemu-ga only supports listening on one socket"
        case .unsupportedType:
            "unsupported listen fd type"
        }
    }
}

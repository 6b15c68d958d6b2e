/// Why a channel could not be opened, in qemu-ga's words.
package struct ChannelError: Error, CustomStringConvertible {
    package let description: String
    /// No retry can fix it (a malformed vsock address, a socket path that is
    /// too long): `-r` does not apply.
    package let isPermanent: Bool

    init(_ message: String, permanent: Bool = false) {
        description = message
        isPermanent = permanent
    }

    init(_ message: String, errno: Int32) {
        description = "\(message): \(SystemError(errno: errno))"
        isPermanent = false
    }
}

import Glibc

/// A failed system call: its errno, mapped once where the call is made,
/// described as `strerror` does. Code above the system layer compares it
/// with the named values below rather than with C's constants.
package struct SystemError: Error, Equatable, CustomStringConvertible {
    package let errno: Int32
    package init(errno: Int32) { self.errno = errno }
    package var description: String { String(cString: strerror(errno)) }

    /// The errno a call just left.
    static var current: SystemError { SystemError(errno: Glibc.errno) }

    /// No error: what qemu-ga appends when a call failed without setting
    /// errno ("Success").
    package static let none = SystemError(errno: 0)
    package static let noSuchFile = SystemError(errno: ENOENT)
    package static let interrupted = SystemError(errno: EINTR)
    package static let permissionDenied = SystemError(errno: EACCES)
    package static let operationNotPermitted = SystemError(errno: EPERM)
    package static let fileExists = SystemError(errno: EEXIST)
    package static let busy = SystemError(errno: EBUSY)
    package static let noSuchDevice = SystemError(errno: ENODEV)
    package static let illegalSeek = SystemError(errno: ESPIPE)
    package static let notSupported = SystemError(errno: EOPNOTSUPP)
    package static let inappropriateControl = SystemError(errno: ENOTTY)
    package static let addressNotAvailable = SystemError(errno: EADDRNOTAVAIL)
    package static let invalidArgument = SystemError(errno: EINVAL)
    package static let ioError = SystemError(errno: EIO)
}

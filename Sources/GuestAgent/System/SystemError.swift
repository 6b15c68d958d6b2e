import Glibc

/// A failed system call, described as `strerror` does.
package struct SystemError: Error, Equatable, CustomStringConvertible {
    package let errno: Int32
    package init(errno: Int32) { self.errno = errno }
    package var description: String { String(cString: strerror(errno)) }
}

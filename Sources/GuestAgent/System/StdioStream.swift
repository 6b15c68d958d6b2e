import Glibc

/// A C stdio stream over a file descriptor, as qemu-ga keeps each file a
/// host opened: stdio's buffering, its end-of-file and error indicators and
/// its rules for switching between reading and writing are part of what
/// the host sees (`eof`, when data reaches the file).
///
/// Failures come back as the errno value stdio left, for the caller's text.
final class StdioStream {
    private let stream: UnsafeMutablePointer<FILE>

    /// `fdopen`; the descriptor belongs to the stream from now on.
    init(descriptor: Int32, mode: String) throws(SystemError) {
        guard let stream = fdopen(descriptor, mode) else { throw SystemError(errno: errno) }
        self.stream = stream
    }

    /// `openat(2)` of a file's location: the descriptor, or the errno.
    static func openDescriptor(_ location: FileLocation, flags: Int32, mode: mode_t = 0) -> Result<Int32, SystemError> {
        let descriptor = openat(location.directory, location.name, flags, mode)
        return descriptor >= 0 ? .success(descriptor) : .failure(SystemError(errno: errno))
    }

    static func setMode(of descriptor: Int32, to mode: mode_t) throws(SystemError) {
        guard fchmod(descriptor, mode) == 0 else { throw SystemError(errno: errno) }
    }

    static func close(descriptor: Int32) { _ = Glibc.close(descriptor) }
    static func unlink(_ location: FileLocation) { _ = unlinkat(location.directory, location.name, 0) }

    /// `fread` of up to `buffer.count` bytes; the count read, or the errno
    /// when the error indicator got set.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Result<Int, SystemError> {
        errno = 0
        let count = buffer.count == 0 ? 0 : fread(buffer.baseAddress, 1, buffer.count, stream)
        return ferror(stream) != 0 ? .failure(SystemError(errno: errno)) : .success(count)
    }

    /// `fwrite` of all of `bytes`; the count written, or the errno when the
    /// error indicator got set.
    func write(_ bytes: UnsafeRawBufferPointer) -> Result<Int, SystemError> {
        errno = 0
        let count = bytes.count == 0 ? 0 : fwrite(bytes.baseAddress, 1, bytes.count, stream)
        return ferror(stream) != 0 ? .failure(SystemError(errno: errno)) : .success(count)
    }

    var isAtEnd: Bool { feof(stream) != 0 }

    /// Forgets the end-of-file and error indicators.
    func clearIndicators() { clearerr(stream) }

    func seek(offset: Int64, whence: Int32) throws(SystemError) {
        guard fseeko(stream, off_t(offset), whence) == 0 else { throw SystemError(errno: errno) }
    }

    var position: Int64 { Int64(ftello(stream)) }

    func flush() throws(SystemError) {
        guard fflush(stream) == 0 else { throw SystemError(errno: errno) }
    }

    /// `fclose`: the stream is gone afterwards even when it fails (a failed
    /// final flush).
    func close() throws(SystemError) {
        guard fclose(stream) == 0 else { throw SystemError(errno: errno) }
    }
}

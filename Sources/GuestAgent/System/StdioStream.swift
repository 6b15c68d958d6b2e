import Glibc
import QMPJSON

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
        guard let stream = fdopen(descriptor, mode) else { throw SystemError.current }
        self.stream = stream
    }

    /// `fread` of up to `buffer.count` bytes; the count read, or the errno
    /// when the error indicator got set.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Result<Int, SystemError> {
        errno = 0
        let count = buffer.count == 0 ? 0 : fread(buffer.baseAddress, 1, buffer.count, stream)
        return ferror(stream) != 0 ? .failure(SystemError.current) : .success(count)
    }

    /// `fwrite` of all of `bytes`; the count written, or the errno when the
    /// error indicator got set.
    func write(_ bytes: UnsafeRawBufferPointer) -> Result<Int, SystemError> {
        errno = 0
        let count = bytes.count == 0 ? 0 : fwrite(bytes.baseAddress, 1, bytes.count, stream)
        return ferror(stream) != 0 ? .failure(SystemError.current) : .success(count)
    }

    var isAtEnd: Bool { feof(stream) != 0 }

    /// Forgets the end-of-file and error indicators.
    func clearIndicators() { clearerr(stream) }

    /// Where a seek's offset counts from.
    enum Whence {
        case start, current, end

        var systemValue: Int32 {
            switch self {
            case .start: SEEK_SET
            case .current: SEEK_CUR
            case .end: SEEK_END
            }
        }
    }

    func seek(offset: Int64, from whence: Whence) throws(SystemError) {
        guard fseeko(stream, off_t(offset), whence.systemValue) == 0 else { throw SystemError.current }
    }

    var position: Int64 { Int64(ftello(stream)) }

    func flush() throws(SystemError) {
        guard fflush(stream) == 0 else { throw SystemError.current }
    }

    /// `fclose`: the stream is gone afterwards even when it fails (a failed
    /// final flush).
    func close() throws(SystemError) {
        guard fclose(stream) == 0 else { throw SystemError.current }
    }
}

/// Opening a file as guest-file-open does: fopen's mode through openat(2)
/// flags, so that a file in a checked directory is opened there.
extension StdioStream {
    /// fopen's modes as qemu-ga accepts them (`b` changes nothing).
    private static let modeFlags: [String: Int32] = [
        "r": O_RDONLY, "rb": O_RDONLY,
        "w": O_WRONLY | O_CREAT | O_TRUNC, "wb": O_WRONLY | O_CREAT | O_TRUNC,
        "a": O_WRONLY | O_CREAT | O_APPEND, "ab": O_WRONLY | O_CREAT | O_APPEND,
        "r+": O_RDWR, "rb+": O_RDWR, "r+b": O_RDWR,
        "w+": O_RDWR | O_CREAT | O_TRUNC, "wb+": O_RDWR | O_CREAT | O_TRUNC, "w+b": O_RDWR | O_CREAT | O_TRUNC,
        "a+": O_RDWR | O_CREAT | O_APPEND, "ab+": O_RDWR | O_CREAT | O_APPEND, "a+b": O_RDWR | O_CREAT | O_APPEND,
    ]

    /// The step of `open` that failed.
    enum OpenError: Error {
        case invalidMode
        case open(SystemError)
        /// A file this call created could not be given mode 0666 (it is removed again).
        case setMode(SystemError)
        /// fdopen refused the descriptor (a created file is removed again).
        case associate(SystemError, descriptor: Int32)
    }

    /// Opens non-blocking (a FIFO must not hang the agent); a file this call
    /// creates gets mode 0666 whatever the umask. A checked location is
    /// opened without following a symlink in its last component.
    static func open(_ location: FileLocation, mode: String) throws(OpenError) -> StdioStream {
        guard let baseFlags = modeFlags[mode] else { throw .invalidMode }
        var flags = baseFlags | O_NOCTTY | O_NONBLOCK | O_CLOEXEC
        if location.directory != AT_FDCWD { flags |= O_NOFOLLOW }
        // Creating exclusively tells whether this call created the file.
        var result = openDescriptor(location, flags: flags & O_CREAT != 0 ? flags | O_EXCL : flags)
        if case .failure(let error) = result, error == .fileExists {
            flags &= ~O_CREAT
            result = openDescriptor(location, flags: flags)
        }
        let descriptor: Int32
        switch result {
        case .success(let opened): descriptor = opened
        case .failure(let error): throw .open(error)
        }
        let created = flags & O_CREAT != 0
        func abandon() {
            _ = Glibc.close(descriptor)
            if created { _ = unlinkat(location.directory, location.name, 0) }
        }
        if created && fchmod(descriptor, 0o666) != 0 {
            let error = SystemError.current
            abandon()
            throw .setMode(error)
        }
        do {
            return try StdioStream(descriptor: descriptor, mode: mode)
        } catch {
            abandon()
            throw .associate(error, descriptor: descriptor)
        }
    }

    /// `openat(2)` of a file's location: the descriptor, or the errno.
    private static func openDescriptor(_ location: FileLocation, flags: Int32) -> Result<Int32, SystemError> {
        let descriptor = openat(location.directory, location.name, flags, 0)
        return descriptor >= 0 ? .success(descriptor) : .failure(SystemError.current)
    }
}

/// guest-file-read and guest-file-write move base64 text straight between
/// the stream and the reply or request string, without a byte array between.
extension StdioStream {
    /// Reads up to `count` bytes, encoded in place as base64; the count read,
    /// or the errno when the error indicator got set.
    func readBase64(count: Int) -> (Result<Int, SystemError>, encoded: String) {
        var outcome = Result<Int, SystemError>.success(0)
        let encoded = Base64.encode(reading: count) { storage in
            outcome = read(into: storage)
            return (try? outcome.get()) ?? 0
        }
        return (outcome, encoded)
    }

    enum Base64WriteError: Error {
        case invalidBase64(Base64.InvalidCharacters)
        /// `count` is negative or beyond the decoded length.
        case invalidCount
        case write(SystemError)
    }

    /// Writes the first `count` bytes (all without it) of the decoded
    /// base64 `text`, decoded piece by piece through `buffer`: the count
    /// written.
    func writeBase64(_ text: String, count: Int64?, through buffer: inout [UInt8]) throws(Base64WriteError) -> Int {
        var text = text
        let outcome = text.withUTF8 { utf8 in
            buffer.withUnsafeMutableBytes { buffer in
                Result { () throws(Base64WriteError) -> Int in
                    let input = UnsafeRawBufferPointer(utf8)
                    let length: Int
                    do throws(Base64.InvalidCharacters) {
                        length = try Base64.decodedCount(input)
                    } catch {
                        throw .invalidBase64(error)
                    }
                    let count = count ?? Int64(length)
                    guard count >= 0 && count <= Int64(length) else { throw .invalidCount }
                    var result = Result<Int, Base64WriteError>.success(0)
                    _ = Base64.decodeChecked(input, limit: Int(count), into: buffer) { piece in
                        switch write(piece) {
                        case .success(let written):
                            result = result.map { $0 + written }
                            return true
                        case .failure(let error):
                            result = .failure(.write(error))
                            return false
                        }
                    }
                    return try result.get()
                }
            }
        }
        return try outcome.get()
    }
}

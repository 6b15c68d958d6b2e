import Glibc
import QMPJSON

// guest-file-open, -close, -read, -write, -seek, -flush. Paths are used as the
// host gives them (relative ones against the agent's working directory), not
// through the system root: these commands move arbitrary files, they do not
// manage the machine.

/// The reads qemu-ga allows in one request: 48 MiB, whose base64 (64 MiB)
/// is the most its JSON parser takes.
let guestFileReadMaximum: Int64 = 48 << 20

private func invalidCount(_ count: Int64) -> QMPError {
    QMPError("value '\(count)' is invalid for argument count")
}

/// `guest-file-open`: returns a new handle from the persistent counter.
struct GuestFileOpen: @MainActor GuestAgentCommand {
    static let name = "guest-file-open"

    struct Arguments: Decodable {
        let path: String
        let mode: String?
    }

    /// fopen's modes as qemu-ga accepts them (`b` changes nothing).
    private static let modeFlags: [String: Int32] = [
        "r": O_RDONLY, "rb": O_RDONLY,
        "w": O_WRONLY | O_CREAT | O_TRUNC, "wb": O_WRONLY | O_CREAT | O_TRUNC,
        "a": O_WRONLY | O_CREAT | O_APPEND, "ab": O_WRONLY | O_CREAT | O_APPEND,
        "r+": O_RDWR, "rb+": O_RDWR, "r+b": O_RDWR,
        "w+": O_RDWR | O_CREAT | O_TRUNC, "wb+": O_RDWR | O_CREAT | O_TRUNC, "w+b": O_RDWR | O_CREAT | O_TRUNC,
        "a+": O_RDWR | O_CREAT | O_APPEND, "ab+": O_RDWR | O_CREAT | O_APPEND, "a+b": O_RDWR | O_CREAT | O_APPEND,
    ]

    static func run(_ arguments: Arguments, agent: GAState) throws(QMPError) -> Int64 {
        let path = arguments.path
        let mode = arguments.mode ?? "r"
        agent.log.syslog("guest-file-open called, filepath: \(path), mode: \(mode)")
        let location = if let patterns = agent.config.openAllow {
            try allowedLocation(path, patterns, log: agent.log)
        } else {
            FileLocation(unchecked: path)
        }
        let stream = try open(location, path: path, mode: mode)
        let handle: Int64
        do throws(PersistentStateError) {
            guard let state = agent.persistentState else { throw PersistentStateError([]) }
            handle = try state.takeFileHandle()
        } catch {
            error.messages.forEach { agent.log.critical($0) }
            try? stream.close()
            throw QMPError("failed to commit persistent state to disk")
        }
        agent.guestFiles.add(GuestFiles.OpenFile(stream: stream), handle: handle)
        agent.log.syslog("guest-file-open, handle: \(handle)")
        return handle
    }

    /// Beyond qemu-ga (`open-allow`): the location of `path` when its
    /// canonical path matches one of `patterns`, in the directory that was
    /// checked; else the refusal.
    private static func allowedLocation(_ path: String, _ patterns: [String], log: GALog) throws(QMPError) -> FileLocation {
        let reason: String
        do {
            let file = try OpenAllow.canonicalFile(path)
            if !anyPatternMatches(patterns, file.path) {
                reason = "is '\(file.path)', which open-allow does not allow"
            } else if let location = OpenAllow.location(of: file) {
                return location
            } else {
                reason = "is '\(file.path)', but its directory changed while it was opened"
            }
        } catch {
            reason = "cannot be resolved (\(error))"
        }
        throw policyRefusal(name, "Path", path, by: "open-allow", reason, log: log)
    }

    /// Opens non-blocking (a FIFO must not hang the agent); a file this call
    /// creates gets mode 0666 whatever the umask. A checked location is
    /// opened without following a symlink in its last component. `path`
    /// (as the host gave it) is for the error texts.
    static func open(_ location: FileLocation, path: String, mode: String) throws(QMPError) -> StdioStream {
        guard let baseFlags = modeFlags[mode] else { throw QMPError("invalid file open mode '\(mode)'") }
        var flags = baseFlags | O_NOCTTY | O_NONBLOCK | O_CLOEXEC
        if location.directory != AT_FDCWD { flags |= O_NOFOLLOW }
        // Creating exclusively tells whether this call created the file.
        var result = StdioStream.openDescriptor(location, flags: flags & O_CREAT != 0 ? flags | O_EXCL : flags)
        if case .failure(let error) = result, error.errno == EEXIST {
            flags &= ~O_CREAT
            result = StdioStream.openDescriptor(location, flags: flags)
        }
        let descriptor: Int32
        switch result {
        case .success(let opened): descriptor = opened
        case .failure(let error): throw QMPError("failed to open file '\(path)' (mode: '\(mode)'): \(error)")
        }
        let created = flags & O_CREAT != 0
        func abandon() {
            StdioStream.close(descriptor: descriptor)
            if created { StdioStream.unlink(location) }
        }
        if created {
            do {
                try StdioStream.setMode(of: descriptor, to: 0o666)
            } catch {
                abandon()
                throw QMPError("failed to set permission 0666 on new file '\(path)' (mode: '\(mode)'): \(error)")
            }
        }
        do {
            return try StdioStream(descriptor: descriptor, mode: mode)
        } catch {
            abandon()
            throw QMPError("failed to associate stdio stream with file descriptor \(descriptor), file '\(path)' (mode: '\(mode)'): \(error)")
        }
    }
}

/// `guest-file-close`.
struct GuestFileClose: @MainActor GuestAgentCommand {
    static let name = "guest-file-close"

    struct Arguments: Decodable { let handle: Int64 }

    static func run(_ arguments: Arguments, agent: GAState) throws(QMPError) -> EmptyResult {
        agent.log.syslog("guest-file-close called, handle: \(arguments.handle)")
        let file = try agent.guestFiles.find(arguments.handle)
        // The stream is gone even when fclose fails, so the handle goes too
        // (qemu-ga keeps it, pointing at the freed stream).
        agent.guestFiles.remove(arguments.handle)
        do {
            try file.stream.close()
        } catch {
            throw QMPError("failed to close handle: \(error)")
        }
        return EmptyResult()
    }
}

/// `guest-file-read`: up to `count` bytes (default 4096), base64-encoded.
struct GuestFileRead: @MainActor GuestAgentCommand {
    static let name = "guest-file-read"

    struct Arguments: Decodable {
        let handle: Int64
        let count: Int64?
    }

    struct Result: Encodable {
        let count: Int64
        let bufB64: String
        let eof: Bool

        enum CodingKeys: String, CodingKey {
            case count
            case bufB64 = "buf-b64"
            case eof
        }
    }

    static func run(_ arguments: Arguments, agent: GAState) throws(QMPError) -> Result {
        let file = try agent.guestFiles.find(arguments.handle)
        let count = arguments.count ?? 4096
        guard count >= 0 && count <= guestFileReadMaximum else { throw invalidCount(count) }
        let stream = file.stream
        if file.lastOperation == .writing {
            do {
                try stream.flush()
            } catch {
                throw QMPError("failed to flush file: \(error)")
            }
            file.lastOperation = .none
        }
        defer { stream.clearIndicators() }
        var outcome = Swift.Result<Int, SystemError>.success(0)
        // The bytes are read into the reply string's own storage and encoded there.
        let encoded = Base64.encode(reading: Int(count)) { storage in
            outcome = stream.read(into: storage)
            return (try? outcome.get()) ?? 0
        }
        switch outcome {
        case .failure(let error):
            // 7.2's wording (sic).
            agent.log.syslog("guest-file-write failed, handle: \(arguments.handle)")
            throw QMPError("failed to read file: \(error)")
        case .success(let read):
            file.lastOperation = .reading
            return Result(count: Int64(read), bufB64: encoded, eof: stream.isAtEnd)
        }
    }
}

/// `guest-file-write`: the first `count` bytes (default all) of the decoded
/// `buf-b64`. The data is decoded piece by piece straight into the stream.
struct GuestFileWrite: @MainActor GuestAgentCommand {
    static let name = "guest-file-write"

    struct Arguments: Decodable {
        let handle: Int64
        let bufB64: String
        let count: Int64?

        enum CodingKeys: String, CodingKey {
            case handle
            case bufB64 = "buf-b64"
            case count
        }
    }

    struct Result: Encodable {
        let count: Int64
        let eof: Bool
    }

    static func run(_ arguments: Arguments, agent: GAState) throws(QMPError) -> Result {
        let files = agent.guestFiles
        let file = try files.find(arguments.handle)
        let stream = file.stream
        if file.lastOperation == .reading {
            do {
                try stream.seek(offset: 0, whence: SEEK_CUR)
            } catch {
                throw QMPError("failed to seek file: \(error)")
            }
            file.lastOperation = .none
        }
        defer { stream.clearIndicators() }
        var text = arguments.bufB64
        let outcome = text.withUTF8 { utf8 in
            write(UnsafeRawBufferPointer(utf8), count: arguments.count, to: stream, through: files)
        }
        switch outcome {
        case .refused(let error):
            throw error
        case .failed(let error):
            agent.log.syslog("guest-file-write failed, handle: \(arguments.handle)")
            throw QMPError("failed to write to file: \(error)")
        case .written(let count):
            file.lastOperation = .writing
            return Result(count: Int64(count), eof: stream.isAtEnd)
        }
    }

    private enum Outcome {
        case refused(QMPError)
        case failed(SystemError)
        case written(Int)
    }

    private static func write(
        _ input: UnsafeRawBufferPointer, count: Int64?, to stream: StdioStream, through files: GuestFiles
    ) -> Outcome {
        let length: Int
        do {
            length = try Base64.decodedCount(input)
        } catch {
            return .refused(QMPError("\(error)"))
        }
        let count = count ?? Int64(length)
        guard count >= 0 && count <= Int64(length) else { return .refused(invalidCount(count)) }
        var outcome = Outcome.written(0)
        files.decodeBuffer.withUnsafeMutableBytes { buffer in
            _ = Base64.decodeChecked(input, limit: Int(count), into: buffer) { piece in
                switch stream.write(piece) {
                case .success(let written):
                    if case .written(let total) = outcome { outcome = .written(total + written) }
                    return true
                case .failure(let error):
                    outcome = .failed(error)
                    return false
                }
            }
        }
        return outcome
    }
}

/// QEMU's QGASeek: the names of the three whence values.
enum QGASeek: String, QAPIEnum {
    case set, cur, end
}

/// GuestFileWhence: a QGASeek name, or (the original interface) the
/// number 0, 1 or 2.
nonisolated enum GuestFileWhence: QAPIAlternate {
    case value(Int64)
    case name(QGASeek)

    static let qapiTypeName = "GuestFileWhence"

    static func accepts(_ value: JSONValue) -> Bool {
        switch value {
        case .int, .uint, .double, .string: true
        default: false
        }
    }

    init(alternateFrom decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if case .string = decoder.qapiValue {
            self = .name(try container.decode(QGASeek.self))
        } else {
            self = .value(try container.decode(Int64.self))
        }
    }

    /// SEEK_SET, SEEK_CUR or SEEK_END.
    func systemValue() throws(QMPError) -> Int32 {
        switch self {
        case .name(.set), .value(0): SEEK_SET
        case .name(.cur), .value(1): SEEK_CUR
        case .name(.end), .value(2): SEEK_END
        case .value(let other): throw QMPError("invalid whence code \(other)")
        }
    }
}

/// `guest-file-seek`: the new position.
struct GuestFileSeek: @MainActor GuestAgentCommand {
    static let name = "guest-file-seek"

    struct Arguments: Decodable {
        let handle: Int64
        let offset: Int64
        let whence: GuestFileWhence
    }

    struct Result: Encodable {
        let position: Int64
        let eof: Bool
    }

    static func run(_ arguments: Arguments, agent: GAState) throws(QMPError) -> Result {
        let file = try agent.guestFiles.find(arguments.handle)
        let whence = try arguments.whence.systemValue()
        let stream = file.stream
        defer { stream.clearIndicators() }
        do {
            try stream.seek(offset: arguments.offset, whence: whence)
        } catch {
            // A pipe does not seek, and stdio does not buffer one anyway.
            if error.errno == ESPIPE { file.lastOperation = .none }
            throw QMPError("failed to seek file: \(error)")
        }
        file.lastOperation = .none
        return Result(position: stream.position, eof: stream.isAtEnd)
    }
}

/// `guest-file-flush`: stdio's buffer to the kernel (no fsync).
struct GuestFileFlush: @MainActor GuestAgentCommand {
    static let name = "guest-file-flush"

    struct Arguments: Decodable { let handle: Int64 }

    static func run(_ arguments: Arguments, agent: GAState) throws(QMPError) -> EmptyResult {
        let file = try agent.guestFiles.find(arguments.handle)
        do {
            try file.stream.flush()
        } catch {
            throw QMPError("failed to flush file: \(error)")
        }
        file.lastOperation = .none
        return EmptyResult()
    }
}

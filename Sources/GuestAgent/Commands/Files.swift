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

    /// `path` (as the host gave it) is for the error texts.
    static func open(_ location: FileLocation, path: String, mode: String) throws(QMPError) -> StdioStream {
        do {
            return try StdioStream.open(location, mode: mode)
        } catch {
            switch error {
            case .invalidMode:
                throw QMPError("invalid file open mode '\(mode)'")
            case .open(let error):
                throw QMPError("failed to open file '\(path)' (mode: '\(mode)'): \(error)")
            case .setMode(let error):
                throw QMPError("failed to set permission 0666 on new file '\(path)' (mode: '\(mode)'): \(error)")
            case .associate(let error, let descriptor):
                throw QMPError("failed to associate stdio stream with file descriptor \(descriptor), file '\(path)' (mode: '\(mode)'): \(error)")
            }
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
        let (outcome, encoded) = stream.readBase64(count: Int(count))
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
                try stream.seek(offset: 0, from: .current)
            } catch {
                throw QMPError("failed to seek file: \(error)")
            }
            file.lastOperation = .none
        }
        defer { stream.clearIndicators() }
        do {
            let count = try stream.writeBase64(arguments.bufB64, count: arguments.count, through: &files.decodeBuffer)
            file.lastOperation = .writing
            return Result(count: Int64(count), eof: stream.isAtEnd)
        } catch {
            switch error {
            case .invalidBase64(let error):
                throw QMPError("\(error)")
            case .invalidCount:
                throw invalidCount(arguments.count ?? 0)
            case .write(let error):
                agent.log.syslog("guest-file-write failed, handle: \(arguments.handle)")
                throw QMPError("failed to write to file: \(error)")
            }
        }
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

    /// Where the offset counts from.
    func origin() throws(QMPError) -> StdioStream.Whence {
        switch self {
        case .name(.set), .value(0): .start
        case .name(.cur), .value(1): .current
        case .name(.end), .value(2): .end
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
        let whence = try arguments.whence.origin()
        let stream = file.stream
        defer { stream.clearIndicators() }
        do {
            try stream.seek(offset: arguments.offset, from: whence)
        } catch {
            // A pipe does not seek, and stdio does not buffer one anyway.
            if error == .illegalSeek { file.lastOperation = .none }
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

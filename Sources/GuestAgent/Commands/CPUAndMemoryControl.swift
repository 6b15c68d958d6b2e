import Glibc

/// `guest-set-vcpus` (commands.md §9.2): brings logical CPUs on- or offline
/// through `/sys/devices/system/cpu/cpu<N>/online`, in the order given; the
/// number of leading entries that succeeded. A failure on the first entry is
/// the command's error; a later one only ends the count.
struct GuestSetVcpus: @MainActor GuestAgentCommand {
    static let name = "guest-set-vcpus"

    /// GuestLogicalProcessor; `can-offline` is ignored on input.
    struct Processor: Decodable {
        let logicalId: Int64
        let online: Bool
        let canOffline: Bool?

        enum CodingKeys: String, CodingKey {
            case logicalId = "logical-id"
            case online
            case canOffline = "can-offline"
        }
    }

    struct Arguments: Decodable { let vcpus: [Processor] }

    static func run(_ arguments: Arguments, agent: GAState) throws(QMPError) -> Int64 {
        var processed: Int64 = 0
        for processor in arguments.vcpus {
            do {
                try apply(processor, system: agent.system)
            } catch {
                if processed == 0 { throw error }
                break
            }
            processed += 1
        }
        return processed
    }

    private static func apply(_ processor: Processor, system: SystemEnvironment) throws(QMPError) {
        let directory = "/sys/devices/system/cpu/cpu\(processor.logicalId)/"
        let directoryFD = open(system.path(directory), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else { throw QMPError("Could not open '\(directory)': \(SystemError(errno: errno))") }
        defer { close(directoryFD) }
        // The path as qemu-ga prints it, slash doubled.
        let online = directory + "/online"
        let fd = openat(directoryFD, "online", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            if errno != ENOENT { throw QMPError("could not open \(online): \(SystemError(errno: errno))") }
            // No `online` file: the CPU cannot be offlined (typically cpu0).
            if !processor.online { throw QMPError("logical processor #\(processor.logicalId) can't be offlined") }
            return
        }
        defer { close(fd) }
        var status: UInt8 = 0
        switch pread(fd, &status, 1, 0) {
        case -1: throw QMPError("pread(\"\(online)\"): \(SystemError(errno: errno))")
        case 0: throw QMPError("pread(\"\(online)\"): unexpected EOF")
        default: break
        }
        guard processor.online != (status != UInt8(ascii: "0")) else { return }
        var wanted = processor.online ? UInt8(ascii: "1") : UInt8(ascii: "0")
        if pwrite(fd, &wanted, 1, 0) == -1 { throw QMPError("pwrite(\"\(online)\"): \(SystemError(errno: errno))") }
    }
}

/// `guest-set-memory-blocks` (commands.md §9.4): brings memory blocks on-
/// or offline through `/sys/devices/system/memory/memory<N>/state`; one
/// response per block, in the order given, never an error for the whole.
struct GuestSetMemoryBlocks: @MainActor GuestAgentCommand {
    static let name = "guest-set-memory-blocks"

    /// GuestMemoryBlock; `can-offline` is ignored on input.
    struct Block: Decodable {
        let physIndex: UInt64
        let online: Bool
        let canOffline: Bool?

        enum CodingKeys: String, CodingKey {
            case physIndex = "phys-index"
            case online
            case canOffline = "can-offline"
        }
    }

    struct Arguments: Decodable {
        let memBlks: [Block]

        enum CodingKeys: String, CodingKey { case memBlks = "mem-blks" }
    }

    enum ResponseType: String, Encodable {
        case success
        case notFound = "not-found"
        case operationNotSupported = "operation-not-supported"
        case operationFailed = "operation-failed"
    }

    /// GuestMemoryBlockResponse.
    struct Response: Encodable {
        let physIndex: UInt64
        var response: ResponseType
        var errorCode: Int64?

        enum CodingKeys: String, CodingKey {
            case physIndex = "phys-index"
            case response
            case errorCode = "error-code"
        }
    }

    static func run(_ arguments: Arguments, agent: GAState) -> [Response] {
        arguments.memBlks.map { apply($0, system: agent.system) }
    }

    private static let memoryDirectory = "/sys/devices/system/memory/"

    /// qemu-ga's outcome for one block. Its `error-code` is the errno of
    /// the step that stopped it, quirks included: a block without a `state`
    /// file that is to be onlined stays `success` but carries error-code 2,
    /// and an unlistable memory directory other than by ENOENT leaves
    /// `success` with that errno.
    private static func apply(_ block: Block, system: SystemEnvironment) -> Response {
        var response = Response(physIndex: block.physIndex, response: .success, errorCode: nil)
        guard let listing = opendir(system.path(memoryDirectory)) else {
            if errno == ENOENT { response.response = .operationNotSupported }
            response.errorCode = Int64(errno)
            return response
        }
        closedir(listing)
        let directoryFD = open(system.path(memoryDirectory + "memory\(block.physIndex)/"), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else {
            response.response = errno == ENOENT ? .notFound : .operationFailed
            response.errorCode = Int64(errno)
            return response
        }
        defer { close(directoryFD) }
        switch readState(directoryFD) {
        case .failure(let error):
            let code = error.errno
            if code == ENOENT {
                // Kernels without `state` cannot offline a block.
                if !block.online { response.response = .operationNotSupported }
            } else {
                response.response = .operationFailed
            }
            response.errorCode = Int64(code)
        case .success(let isOnline):
            guard block.online != isOnline else { break }
            if let code = writeState(directoryFD, block.online ? "online" : "offline") {
                response.response = .operationFailed
                response.errorCode = Int64(code)
            }
        }
        return response
    }

    /// Whether `state` (up to 10 bytes) starts with `online`; the errno of
    /// a failure (0 for an empty file).
    private static func readState(_ directoryFD: Int32) -> Result<Bool, SystemError> {
        let fd = openat(directoryFD, "state", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(SystemError(errno: errno)) }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 10)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        if count < 0 { return .failure(SystemError(errno: errno)) }
        if count == 0 { return .failure(SystemError(errno: 0)) }
        return .success(buffer.starts(with: Array("online".utf8)))
    }

    /// Writes `online`/`offline` to `state`; the errno of a failure.
    private static func writeState(_ directoryFD: Int32, _ state: String) -> Int32? {
        let fd = openat(directoryFD, "state", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        return pwrite(fd, state, state.utf8.count, 0) == -1 ? errno : nil
    }
}

import Glibc

/// `guest-set-vcpus`: brings logical CPUs on- or offline through
/// `/sys/devices/system/cpu/cpu<N>/online`, in the order given; the number of
/// leading entries that succeeded. A failure on the first entry is the
/// command's error; a later one only ends the count.
struct GuestSetVcpus: @MainActor GuestAgentCommand {
    static let name = "guest-set-vcpus"

    struct Arguments: Decodable { let vcpus: [GuestLogicalProcessor] }

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

    private static func apply(_ processor: GuestLogicalProcessor, system: SystemEnvironment) throws(QMPError) {
        let path = "/sys/devices/system/cpu/cpu\(processor.logicalId)/"
        let directory: SysfsDirectory
        do {
            directory = try SysfsDirectory(system, path)
        } catch {
            throw QMPError("Could not open '\(path)': \(error)")
        }
        // The path as qemu-ga prints it, slash doubled.
        let online = path + "/online"
        let fd: Int32
        do {
            fd = try directory.openFile("online", O_RDWR)
        } catch {
            if error.errno != ENOENT { throw QMPError("could not open \(online): \(error)") }
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

/// `guest-set-memory-blocks`: brings memory blocks on- or offline through
/// `/sys/devices/system/memory/memory<N>/state`; one response per block, in the
/// order given, never an error for the whole.
struct GuestSetMemoryBlocks: @MainActor GuestAgentCommand {
    static let name = "guest-set-memory-blocks"

    struct Arguments: Decodable {
        let memBlks: [GuestMemoryBlock]

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

    /// qemu-ga's outcome for one block. Its `error-code` is the errno of
    /// the step that stopped it, quirks included: a block without a `state`
    /// file that is to be onlined stays `success` but carries error-code 2,
    /// an empty `state` gives error-code 0, and a memory directory that
    /// cannot be listed other than by ENOENT leaves `success` with that errno.
    private static func apply(_ block: GuestMemoryBlock, system: SystemEnvironment) -> Response {
        var response = Response(physIndex: block.physIndex, response: .success, errorCode: nil)
        guard let listing = opendir(system.path(memoryDirectory)) else {
            if errno == ENOENT { response.response = .operationNotSupported }
            response.errorCode = Int64(errno)
            return response
        }
        closedir(listing)
        // Printed signed, as qemu-ga does.
        let directory: SysfsDirectory
        do {
            directory = try SysfsDirectory(system, memoryDirectory + "memory\(Int64(bitPattern: block.physIndex))/")
        } catch {
            response.response = error.errno == ENOENT ? .notFound : .operationFailed
            response.errorCode = Int64(error.errno)
            return response
        }
        let state: [UInt8]
        do {
            state = try directory.read("state", count: 10)
        } catch {
            if error.isMissingFile {
                // Kernels without `state` cannot offline a block.
                if !block.online { response.response = .operationNotSupported }
            } else {
                response.response = .operationFailed
            }
            response.errorCode = Int64(error.errno)
            return response
        }
        guard block.online != state.starts(with: "online".utf8) else { return response }
        let wanted = block.online ? "online" : "offline"
        do throws(SystemError) {
            let fd = try directory.openFile("state", O_WRONLY)
            defer { close(fd) }
            if pwrite(fd, wanted, wanted.utf8.count, 0) == -1 { throw SystemError(errno: errno) }
        } catch {
            response.response = .operationFailed
            response.errorCode = Int64(error.errno)
        }
        return response
    }
}

extension SysfsDirectory.ReadError {
    /// The errno qemu-ga reports for the failed read (0 for an empty file:
    /// nothing failed, and it cleared errno first).
    var errno: Int32 {
        switch self {
        case .open(let failure), .read(let failure): failure.errno
        case .endOfFile: 0
        }
    }
}

// Memory blocks: guest-get-memory-blocks, guest-get-memory-block-info,
// guest-set-memory-blocks.

/// The memory-block directory of sysfs.
let memoryDirectory = "/sys/devices/system/memory/"

/// GuestMemoryBlock: guest-get-memory-blocks' result, guest-set-memory-blocks'
/// argument (where `can-offline` may be left out and is ignored).
struct GuestMemoryBlock: Codable {
    let physIndex: UInt64
    let online: Bool
    let canOffline: Bool?

    enum CodingKeys: String, CodingKey {
        case physIndex = "phys-index"
        case online
        case canOffline = "can-offline"
    }
}

/// `guest-get-memory-blocks`: every `memoryN` block of sysfs in directory
/// order. Without memory hotplug in the kernel the list is empty.
struct GuestGetMemoryBlocks: @MainActor GuestAgentCommand {
    static let name = "guest-get-memory-blocks"

    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> [GuestMemoryBlock] {
        let entries: [DirectoryEntry]
        do {
            entries = try agent.system.directoryEntries(memoryDirectory)
        } catch {
            if error == .noSuchFile { return [] }
            throw QMPError("Can't open directory\"\(memoryDirectory)\": \(error)")
        }
        var blocks: [GuestMemoryBlock] = []
        for entry in entries where entry.name.hasPrefix("memory") && entry.type & DirectoryEntry.directoryType != 0 {
            let physIndex = UInt64(CNumber.unsignedLong(String(entry.name.dropFirst(6))))
            let path = "\(memoryDirectory)memory\(Int64(bitPattern: physIndex))/"
            let directory: SysfsDirectory
            do {
                directory = try SysfsDirectory(agent.system, path)
            } catch {
                throw QMPError("Could not open '\(path)': \(error)")
            }
            let state: [UInt8]
            do {
                state = try directory.read("state", count: 10)
            } catch {
                // Kernels without the file cannot offline memory.
                guard error.isMissingFile else { throw error.memoryAttributeError("state") }
                blocks.append(GuestMemoryBlock(physIndex: physIndex, online: true, canOffline: false))
                continue
            }
            let canOffline: Bool
            do {
                canOffline = try directory.read("removable", count: 1)[0] != UInt8(ascii: "0")
            } catch {
                guard error.isMissingFile else { throw error.memoryAttributeError("removable") }
                canOffline = false
            }
            blocks.append(GuestMemoryBlock(physIndex: physIndex, online: state.starts(with: "online".utf8), canOffline: canOffline))
        }
        if blocks.isEmpty { throw QMPError("guest reported zero memory blocks!") }
        return blocks
    }
}

/// `guest-get-memory-block-info`: the size of a memory block.
struct GuestGetMemoryBlockInfo: @MainActor GuestAgentCommand {
    static let name = "guest-get-memory-block-info"

    struct MemoryBlockInfo: Encodable {
        let size: UInt64
    }

    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> MemoryBlockInfo {
        let directory: SysfsDirectory
        do {
            directory = try SysfsDirectory(agent.system, memoryDirectory)
        } catch {
            throw QMPError("open(\"\(memoryDirectory)\"): \(error)")
        }
        let text: [UInt8]
        do {
            text = try directory.read("block_size_bytes", count: 20)
        } catch {
            throw error.memoryAttributeError("block_size_bytes")
        }
        // Hexadecimal text, read as a C long.
        let size = CNumber.long(String(decoding: text, as: UTF8.self), base: 16)
        return MemoryBlockInfo(size: UInt64(bitPattern: Int64(size)))
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
        do {
            _ = try SysfsDirectory(system, memoryDirectory)
        } catch {
            if error == .noSuchFile { response.response = .operationNotSupported }
            response.errorCode = Int64(error.errno)
            return response
        }
        // Printed signed, as qemu-ga does.
        let directory: SysfsDirectory
        do {
            directory = try SysfsDirectory(system, memoryDirectory + "memory\(Int64(bitPattern: block.physIndex))/")
        } catch {
            response.response = error == .noSuchFile ? .notFound : .operationFailed
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
        do {
            try directory.attribute("state", .writeOnly).write(wanted)
        } catch {
            response.response = .operationFailed
            response.errorCode = Int64(error.errno)
        }
        return response
    }
}

// Logical processors: guest-get-vcpus, guest-set-vcpus.

/// GuestLogicalProcessor: guest-get-vcpus' result, guest-set-vcpus' argument
/// (where `can-offline` may be left out and is ignored).
struct GuestLogicalProcessor: Codable {
    let logicalId: Int64
    let online: Bool
    let canOffline: Bool?

    enum CodingKeys: String, CodingKey {
        case logicalId = "logical-id"
        case online
        case canOffline = "can-offline"
    }
}

/// `guest-get-vcpus`: every `cpuN` of /sys/devices/system/cpu in directory
/// order, online unless its `online` file starts with `0`; a processor
/// without that file (usually cpu0) cannot be taken offline.
struct GuestGetVcpus: @MainActor GuestAgentCommand {
    static let name = "guest-get-vcpus"

    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> [GuestLogicalProcessor] {
        let cpuDirectory = "/sys/devices/system/cpu"
        let entries: [DirectoryEntry]
        do {
            entries = try agent.system.directoryEntries(cpuDirectory)
        } catch {
            throw QMPError("failed to list entries: \(cpuDirectory): \(error)")
        }
        var processors: [GuestLogicalProcessor] = []
        for entry in entries {
            let number = CScan.scan(entry.name, "cpu%ld", [.long])
            guard number.count != 0 else { continue }
            let id = number.signed(0)
            let path = "\(cpuDirectory)/cpu\(id)/"
            let directory: SysfsDirectory
            do {
                directory = try SysfsDirectory(agent.system, path)
            } catch {
                throw QMPError("open(\"\(path)\"): \(error)")
            }
            do {
                let state = try directory.read("online", count: 1)
                processors.append(GuestLogicalProcessor(logicalId: id, online: state[0] != UInt8(ascii: "0"), canOffline: true))
            } catch {
                switch error {
                case .open(let failure) where failure == .noSuchFile:
                    processors.append(GuestLogicalProcessor(logicalId: id, online: true, canOffline: false))
                case .open(let failure): throw QMPError("open(\"\(path)/online\"): \(failure)")
                case .read(let failure): throw QMPError("pread(\"\(path)/online\"): \(failure)")
                case .endOfFile: throw QMPError("pread(\"\(path)/online\"): unexpected EOF")
                }
            }
        }
        return processors
    }
}

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
        let file: SysfsAttribute
        do {
            file = try directory.attribute("online", .readWrite)
        } catch {
            if error != .noSuchFile { throw QMPError("could not open \(online): \(error)") }
            // No `online` file: the CPU cannot be offlined (typically cpu0).
            if !processor.online { throw QMPError("logical processor #\(processor.logicalId) can't be offlined") }
            return
        }
        let read: [UInt8]
        do {
            read = try file.read(count: 1)
        } catch {
            throw QMPError("pread(\"\(online)\"): \(error)")
        }
        guard let status = read.first else { throw QMPError("pread(\"\(online)\"): unexpected EOF") }
        guard processor.online != (status != UInt8(ascii: "0")) else { return }
        do {
            try file.write(processor.online ? "1" : "0")
        } catch {
            throw QMPError("pwrite(\"\(online)\"): \(error)")
        }
    }
}

// Filesystems, disks and their statistics: guest-get-fsinfo, guest-get-disks,
// guest-get-diskstats.

enum GuestDiskBusType: String, Encodable {
    case ide, fdc, scsi, virtio, xen, usb, uml, sata, sd, unknown, ieee1394, ssa, fibre, raid, iscsi, sas, mmc
    case virtual
    case fileBackedVirtual = "file-backed-virtual"
    case nvme
}

/// -1 everywhere means unknown.
struct GuestPCIAddress: Encodable, Equatable {
    var domain: Int64 = -1
    var bus: Int64 = -1
    var slot: Int64 = -1
    var function: Int64 = -1
}

struct GuestCCWAddress: Encodable, Equatable {
    var cssid: Int64
    var ssid: Int64
    var subchno: Int64
    var devno: Int64
}

struct GuestDiskAddress: Encodable {
    var pciController = GuestPCIAddress()
    var busType = GuestDiskBusType.unknown
    var bus: Int64 = 0
    var target: Int64 = 0
    var unit: Int64 = 0
    var serial: String?
    var dev: String?
    var ccwAddress: GuestCCWAddress?

    enum CodingKeys: String, CodingKey {
        case pciController = "pci-controller"
        case busType = "bus-type"
        case bus, target, unit, serial, dev
        case ccwAddress = "ccw-address"
    }
}

/// `guest-get-fsinfo`: every mounted filesystem (`MountList`) with the disks it
/// lies on and its size, the last mounted first.
struct GuestGetFsinfo: @MainActor GuestAgentCommand {
    static let name = "guest-get-fsinfo"

    struct FilesystemInfo: Encodable {
        let name: String
        let mountpoint: String
        let type: String
        var usedBytes: UInt64?
        var totalBytes: UInt64?
        var totalBytesPrivileged: UInt64?
        let disk: [GuestDiskAddress]

        enum CodingKeys: String, CodingKey {
            case name, mountpoint, type
            case usedBytes = "used-bytes"
            case totalBytes = "total-bytes"
            case totalBytesPrivileged = "total-bytes-privileged"
            case disk
        }
    }

    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> [FilesystemInfo] {
        let walk = BlockDeviceWalk(system: agent.system, facts: agent.system.blockDeviceFacts(), log: agent.log)
        var result: [FilesystemInfo] = []
        for mount in try MountList.read(agent.system) {
            agent.log.debug("Building guest fsinfo for '\(mount.mountPoint)'")
            var found = BlockDeviceWalk.Found()
            walk.walk("/sys/dev/block/\(mount.major):\(mount.minor)", into: &found)
            var info = FilesystemInfo(
                name: found.name ?? "", mountpoint: mount.mountPoint, type: mount.type, disk: found.disks)
            if let size = agent.system.filesystemBlocks(mount.mountPoint) {
                // Unsigned long arithmetic, as qemu-ga's.
                let used = size.blocks &- size.free
                info.usedBytes = used &* size.fragmentSize
                info.totalBytes = (used &+ size.available) &* size.fragmentSize
                info.totalBytesPrivileged = size.blocks &* size.fragmentSize
            }
            if let error = found.error { throw error }
            result.insert(info, at: 0)
        }
        return result
    }
}

struct GuestNVMeSmart: Encodable {
    let type = "nvme"
    var criticalWarning: Int64
    var temperature: Int64
    var availableSpare: Int64
    var availableSpareThreshold: Int64
    var percentageUsed: Int64
    var dataUnitsReadLo: UInt64, dataUnitsReadHi: UInt64
    var dataUnitsWrittenLo: UInt64, dataUnitsWrittenHi: UInt64
    var hostReadCommandsLo: UInt64, hostReadCommandsHi: UInt64
    var hostWriteCommandsLo: UInt64, hostWriteCommandsHi: UInt64
    var controllerBusyTimeLo: UInt64, controllerBusyTimeHi: UInt64
    var powerCyclesLo: UInt64, powerCyclesHi: UInt64
    var powerOnHoursLo: UInt64, powerOnHoursHi: UInt64
    var unsafeShutdownsLo: UInt64, unsafeShutdownsHi: UInt64
    var mediaErrorsLo: UInt64, mediaErrorsHi: UInt64
    var numberOfErrorLogEntriesLo: UInt64, numberOfErrorLogEntriesHi: UInt64

    enum CodingKeys: String, CodingKey {
        case type
        case criticalWarning = "critical-warning"
        case temperature
        case availableSpare = "available-spare"
        case availableSpareThreshold = "available-spare-threshold"
        case percentageUsed = "percentage-used"
        case dataUnitsReadLo = "data-units-read-lo", dataUnitsReadHi = "data-units-read-hi"
        case dataUnitsWrittenLo = "data-units-written-lo", dataUnitsWrittenHi = "data-units-written-hi"
        case hostReadCommandsLo = "host-read-commands-lo", hostReadCommandsHi = "host-read-commands-hi"
        case hostWriteCommandsLo = "host-write-commands-lo", hostWriteCommandsHi = "host-write-commands-hi"
        case controllerBusyTimeLo = "controller-busy-time-lo", controllerBusyTimeHi = "controller-busy-time-hi"
        case powerCyclesLo = "power-cycles-lo", powerCyclesHi = "power-cycles-hi"
        case powerOnHoursLo = "power-on-hours-lo", powerOnHoursHi = "power-on-hours-hi"
        case unsafeShutdownsLo = "unsafe-shutdowns-lo", unsafeShutdownsHi = "unsafe-shutdowns-hi"
        case mediaErrorsLo = "media-errors-lo", mediaErrorsHi = "media-errors-hi"
        case numberOfErrorLogEntriesLo = "number-of-error-log-entries-lo"
        case numberOfErrorLogEntriesHi = "number-of-error-log-entries-hi"
    }

    /// The fields of an NVMe SMART / health information log page (all
    /// little-endian; the 128-bit counters split into 64-bit halves).
    init(logPage log: [UInt8]) {
        func byte(_ offset: Int) -> Int64 { Int64(log[offset]) }
        func word(_ offset: Int) -> UInt64 {
            (0..<8).reduce(UInt64(0)) { $0 | UInt64(log[offset + $1]) << (8 * $1) }
        }
        criticalWarning = byte(0)
        temperature = byte(1) | byte(2) << 8
        availableSpare = byte(3)
        availableSpareThreshold = byte(4)
        percentageUsed = byte(5)
        (dataUnitsReadLo, dataUnitsReadHi) = (word(32), word(40))
        (dataUnitsWrittenLo, dataUnitsWrittenHi) = (word(48), word(56))
        (hostReadCommandsLo, hostReadCommandsHi) = (word(64), word(72))
        (hostWriteCommandsLo, hostWriteCommandsHi) = (word(80), word(88))
        (controllerBusyTimeLo, controllerBusyTimeHi) = (word(96), word(104))
        (powerCyclesLo, powerCyclesHi) = (word(112), word(120))
        (powerOnHoursLo, powerOnHoursHi) = (word(128), word(136))
        (unsafeShutdownsLo, unsafeShutdownsHi) = (word(144), word(152))
        (mediaErrorsLo, mediaErrorsHi) = (word(160), word(168))
        (numberOfErrorLogEntriesLo, numberOfErrorLogEntriesHi) = (word(176), word(184))
    }
}

/// `guest-get-disks`: the disks of /sys/block that have a size, each
/// preceded by its partitions, the last listed disk first.
struct GuestGetDisks: @MainActor GuestAgentCommand {
    static let name = "guest-get-disks"

    struct DiskInfo: Encodable {
        let name: String
        let partition: Bool
        var dependencies: [String]?
        var address: GuestDiskAddress?
        var alias: String?
        var smart: GuestNVMeSmart?
    }

    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> [DiskInfo] {
        let system = agent.system
        let facts = system.blockDeviceFacts()
        let walk = BlockDeviceWalk(system: system, facts: facts, log: agent.log)
        agent.log.debug("listing /sys/block directory")
        let entries: [DirectoryEntry]
        do {
            entries = try system.directoryEntries("/sys/block")
        } catch {
            throw QMPError("Can't open directory \"/sys/block\": \(error)")
        }
        var result: [DiskInfo] = []
        for entry in entries {
            guard entry.type == DirectoryEntry.symlinkType else {
                agent.log.debug("  skipping entry: \(entry.name)")
                continue
            }
            // Zero-sized devices (unused loop and zram devices) are no disks.
            guard let size = try? system.fileContents("/sys/block/\(entry.name)/size") else {
                agent.log.debug("  failed to read disk size")
                continue
            }
            if size == Array("0\n".utf8) {
                agent.log.debug("  skipping zero-sized disk")
                continue
            }
            agent.log.debug("  adding \(entry.name)")
            let diskDirectory = "/sys/block/\(entry.name)"
            guard let device = facts.udevDevice(atSysPath: diskDirectory), let devnode = device.devnode else {
                agent.log.debug("Failed to get device name for syspath: \(diskDirectory)")
                continue
            }
            var disk = DiskInfo(name: devnode, partition: false, alias: device.property("DM_NAME"))
            if let address = realDeviceAddress(diskDirectory, walk: walk, log: agent.log) {
                disk.address = address
                if address.busType == .nvme, let log = facts.nvmeSmartLog(devnode: devnode) {
                    disk.smart = GuestNVMeSmart(logPage: log)
                }
            }
            if let slaves = try? system.directoryEntries(diskDirectory + "/slaves") {
                disk.dependencies = slaves.reversed().compactMap {
                    facts.udevDevice(atSysPath: diskDirectory + "/slaves/" + $0.name)?.devnode
                }
            }
            result.insert(disk, at: 0)
            for partition in partitions(of: entry.name, system: system) {
                guard let node = facts.udevDevice(atSysPath: diskDirectory + "/" + partition)?.devnode else {
                    agent.log.debug("Failed to get device name for syspath: \(diskDirectory)")
                    continue
                }
                result.insert(DiskInfo(name: node, partition: true, dependencies: [devnode]), at: 0)
            }
        }
        return result
    }

    /// The address of a disk that is not virtual; failures only leave it out.
    private static func realDeviceAddress(_ diskDirectory: String, walk: BlockDeviceWalk, log: GALog) -> GuestDiskAddress? {
        let sysPath: String
        do {
            sysPath = try walk.system.resolvedPath(diskDirectory)
        } catch {
            log.debug("  failed to check disk path, ignoring error: realpath(\"\(diskDirectory)\"): \(error)")
            return nil
        }
        guard !BlockDeviceWalk.isVirtual(sysPath) else { return nil }
        var found = BlockDeviceWalk.Found()
        walk.addRealDevice(sysPath, into: &found)
        if let error = found.error { log.debug("  failed to get device info, ignoring error: \(error.desc)") }
        return found.disks.first
    }

    /// The partition directories of a disk: `<disk><digit>...` or
    /// `<disk>p<digit>...`, in directory order.
    private static func partitions(of disk: String, system: SystemEnvironment) -> [String] {
        let entries = (try? system.directoryEntries("/sys/block/" + disk)) ?? []
        return entries.compactMap { entry in
            guard entry.type & DirectoryEntry.directoryType != 0, entry.name.hasPrefix(disk) else { return nil }
            var rest = entry.name.utf8.dropFirst(disk.utf8.count)
            if rest.first == UInt8(ascii: "p") { rest = rest.dropFirst() }
            guard let first = rest.first, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return nil }
            return entry.name
        }
    }
}

/// `guest-get-diskstats`: /proc/diskstats, one entry per line.
struct GuestGetDiskstats: @MainActor GuestAgentCommand {
    static let name = "guest-get-diskstats"

    struct DiskStats: Encodable {
        var readSectors: UInt64?
        var readIOs: UInt64?
        var readMerges: UInt64?
        var writeSectors: UInt64?
        var writeIOs: UInt64?
        var writeMerges: UInt64?
        var discardSectors: UInt64?
        var discardIOs: UInt64?
        var discardMerges: UInt64?
        var flushIOs: UInt64?
        var readTicks: UInt64?
        var writeTicks: UInt64?
        var discardTicks: UInt64?
        var flushTicks: UInt64?
        var iosInProgress: UInt64?
        var totalTicks: UInt64?
        var weightTicks: UInt64?

        enum CodingKeys: String, CodingKey {
            case readSectors = "read-sectors", readIOs = "read-ios", readMerges = "read-merges"
            case writeSectors = "write-sectors", writeIOs = "write-ios", writeMerges = "write-merges"
            case discardSectors = "discard-sectors", discardIOs = "discard-ios", discardMerges = "discard-merges"
            case flushIOs = "flush-ios"
            case readTicks = "read-ticks", writeTicks = "write-ticks", discardTicks = "discard-ticks"
            case flushTicks = "flush-ticks"
            case iosInProgress = "ios-pgr", totalTicks = "total-ticks", weightTicks = "weight-ticks"
        }
    }

    struct DiskStatsInfo: Encodable {
        let name: String
        let major: UInt64
        let minor: UInt64
        let stats: DiskStats
    }

    /// `major minor name` and up to 17 counters; the tick and in-flight
    /// counters are read as 32-bit, the others as 64-bit, as qemu-ga does.
    private static let lineFormat = "%u %u %s %lu %lu %lu %lu %lu %lu %lu %u %u %u %u %lu %lu %lu %u %lu %u"
    private static let lineFields: [CScan.Field] = [
        .unsignedInt, .unsignedInt, .string,
        .unsignedLong, .unsignedLong, .unsignedLong, .unsignedLong, .unsignedLong, .unsignedLong, .unsignedLong,
        .unsignedInt, .unsignedInt, .unsignedInt, .unsignedInt,
        .unsignedLong, .unsignedLong, .unsignedLong, .unsignedInt, .unsignedLong, .unsignedInt,
    ]

    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> [DiskStatsInfo] {
        let text: [UInt8]
        do {
            text = try agent.system.fileContents("/proc/diskstats")
        } catch {
            throw QMPError("open(\"/proc/diskstats\"): \(error)")
        }
        return text.split(separator: UInt8(ascii: "\n")).compactMap { line in
            let fields = CScan.scan(line, lineFormat, lineFields)
            guard fields.count >= 7 else { return nil }
            let value = fields.unsigned
            var stats = DiskStats()
            if fields.count == 7 {
                // The four counters of a partition on kernels before 2.6.25.
                stats.readIOs = value(3)
                stats.readSectors = value(4)
                stats.writeIOs = value(5)
                stats.writeSectors = value(6)
            }
            if fields.count >= 14 {
                stats.readIOs = value(3)
                stats.readMerges = value(4)
                stats.readSectors = value(5)
                stats.readTicks = value(6)
                stats.writeIOs = value(7)
                stats.writeMerges = value(8)
                stats.writeSectors = value(9)
                stats.writeTicks = value(10)
                stats.iosInProgress = value(11)
                stats.totalTicks = value(12)
                stats.weightTicks = value(13)
            }
            if fields.count >= 18 {
                stats.discardIOs = value(14)
                stats.discardMerges = value(15)
                stats.discardSectors = value(16)
                stats.discardTicks = value(17)
            }
            if fields.count >= 20 {
                stats.flushIOs = value(18)
                stats.flushTicks = value(19)
            }
            return DiskStatsInfo(name: fields.string(2), major: value(0), minor: value(1), stats: stats)
        }
    }
}

import Glibc

/// qemu-ga's walk from a block device in sysfs down to the disks it lies on
/// (guest-get-fsinfo, guest-get-disks): virtual devices (device-mapper, md)
/// through their `slaves`, real ones to a disk address read off their sysfs
/// path.
struct BlockDeviceWalk {
    let system: SystemEnvironment
    let facts: any BlockDeviceFacts
    let log: GALog

    /// What a walk found: the name of the device it started from and the
    /// disks under it, the most recently found first. An error stops the
    /// walk where qemu-ga's stops; what was found until then is kept.
    struct Found {
        var name: String?
        var disks: [GuestDiskAddress] = []
        var error: QMPError?
    }

    /// Walks the device at a sysfs path of the machine (a symbolic link
    /// such as `/sys/dev/block/254:1`).
    func walk(_ devicePath: String, into found: inout Found) {
        let sysPath: String
        do {
            sysPath = try system.resolvedPath(devicePath)
        } catch {
            // A missing device (e.g. in a container) still names the filesystem.
            if error.errno != ENOENT {
                found.error = QMPError("realpath(\"\(devicePath)\"): \(error)")
            } else if found.name == nil {
                found.name = pathBasename(devicePath)
            }
            return
        }
        if found.name == nil { found.name = pathBasename(sysPath) }
        log.debug("  parse sysfs path '\(sysPath)'")
        if Self.isVirtual(sysPath) {
            walkSlaves(of: sysPath, into: &found)
        } else {
            addRealDevice(sysPath, into: &found)
        }
    }

    static func isVirtual(_ sysPath: String) -> Bool {
        sysPath.firstByteRange(of: "/devices/virtual/block/") != nil
    }

    private func walkSlaves(of sysPath: String, into found: inout Found) {
        let directory = sysPath + "/slaves"
        let entries: [DirectoryEntry]
        do {
            entries = try system.directoryEntries(directory)
        } catch {
            if error.errno != ENOENT { found.error = QMPError("opendir(\"\(directory)\"): \(error)") }
            return
        }
        for entry in entries where entry.type == DirectoryEntry.symlinkType {
            log.debug(" slave device '\(entry.name)'")
            walk(directory + "/" + entry.name, into: &found)
            if found.error != nil { return }
        }
    }

    /// Adds the address of a real (non-virtual) device when anything is
    /// known about it: hardware details, its node or its serial.
    func addRealDevice(_ sysPath: String, into found: inout Found) {
        var disk = GuestDiskAddress()
        if let device = facts.udevDevice(atSysPath: sysPath) {
            disk.dev = device.devnode
            disk.serial = device.property("ID_SERIAL")
        } else {
            log.debug("failed to query udev")
        }
        let hasHardwareInfo: Bool
        if let pci = sysPath.firstByteRange(of: "/devices/pci") {
            hasHardwareInfo = addPCIDetails(sysPath, after: pci.upperBound, to: &disk, error: &found.error)
        } else if let css = sysPath.firstByteRange(of: "/devices/css") {
            hasHardwareInfo = addCCWDetails(sysPath, at: css, to: &disk)
        } else if sysPath.firstByteRange(of: "/virtio") != nil {
            hasHardwareInfo = addNonPCIVirtioDetails(sysPath, to: &disk)
        } else {
            log.debug("Unsupported device type for '\(sysPath)'")
            hasHardwareInfo = false
        }
        if hasHardwareInfo || disk.dev != nil || disk.serial != nil {
            found.disks.insert(disk, at: 0)
        }
    }

    /// The controllers qemu-ga recognises, by the name of their PCI driver.
    private static let controllerDrivers: Set = ["ata_piix", "sym53c8xx", "virtio-pci", "ahci", "nvme", "xhci_hcd", "ehci-pci"]

    /// The PCI function of the disk's controller and the disk's place on it:
    /// the first function below the root bus, or a nested one, whose driver
    /// is a known controller's.
    private func addPCIDetails(
        _ sysPath: String, after rootBus: String.Index, to disk: inout GuestDiskAddress, error: inout QMPError?
    ) -> Bool {
        let functionFields: [CScan.Field] = [.unsignedInt, .unsignedInt, .unsignedInt, .unsignedInt, .position]
        var function = CScan.scan(sysPath[rootBus...], "%*x:%*x/%x:%x:%x.%x%n", functionFields)
        guard function.count >= 4 else {
            log.debug("only pci device is supported: sysfs path '\(sysPath)'")
            return false
        }
        var functionEnd = sysPath.utf8.index(rootBus, offsetBy: Int(function.signed(4)))
        var driver: String
        while true {
            if let link = system.linkTarget(String(sysPath[..<functionEnd]) + "/driver") {
                driver = pathBasename(link)
                if Self.controllerDrivers.contains(driver) { break }
            }
            let nested = CScan.scan(sysPath[functionEnd...], "/%x:%x:%x.%x%n", functionFields)
            guard nested.count == 4 else {
                log.debug("unsupported driver or sysfs path '\(sysPath)'")
                return false
            }
            function = nested
            functionEnd = sysPath.utf8.index(functionEnd, offsetBy: Int(nested.signed(4)))
        }

        let target = Self.scsiAddress(sysPath)
        var host: UInt32?
        var hosts: [UInt32] = []
        let ata = sysPath.firstByteRange(of: "/ata")
        if let hostName = ata ?? sysPath.firstByteRange(of: "/host") {
            let number = CScan.scan(sysPath[hostName.upperBound...], "%u", [.unsignedInt])
            if number.count == 1 {
                host = UInt32(number.unsigned(0))
                let parent = String(sysPath[..<hostName.lowerBound])
                do {
                    hosts = try siblingHosts(in: parent, prefix: ata == nil ? "host" : "ata")
                } catch let failure {
                    error = QMPError("opendir(\"\(parent)\"): \(failure)")
                    return false
                }
            }
        }

        disk.pciController = GuestPCIAddress(
            domain: Int64(function.unsigned(0)), bus: Int64(function.unsigned(1)),
            slot: Int64(function.unsigned(2)), function: Int64(function.unsigned(3)))

        switch driver {
        case "ata_piix":
            // One host per IDE bus; the unit is the SCSI target.
            guard let host, let target else { return invalidPath(sysPath, driver) }
            guard let index = hosts.firstIndex(of: host) else { return noHost(sysPath, driver) }
            disk.busType = .ide
            disk.bus = Int64(index)
            disk.unit = Int64(target.target)
        case "sym53c8xx":
            guard let target else { return invalidPath(sysPath, driver) }
            disk.busType = .scsi
            disk.unit = Int64(target.target)
        case "virtio-pci":
            if let target {
                disk.busType = .scsi
                disk.unit = Int64(target.lun)
            } else {
                disk.busType = .virtio
            }
        case "ahci":
            // One host per port; the unit is the port.
            guard let host, target != nil else { return invalidPath(sysPath, driver) }
            guard let index = hosts.firstIndex(of: host) else { return noHost(sysPath, driver) }
            disk.unit = Int64(index)
            disk.busType = .sata
        case "nvme":
            disk.busType = .nvme
        default:
            disk.busType = .usb
        }
        return true
    }

    private func invalidPath(_ sysPath: String, _ driver: String) -> Bool {
        log.debug("invalid sysfs path '\(sysPath)' (driver '\(driver)')")
        return false
    }

    private func noHost(_ sysPath: String, _ driver: String) -> Bool {
        log.debug("no host for '\(sysPath)' (driver '\(driver)')")
        return false
    }

    /// The numbers of the first eight `ataN` or `hostN` entries of a
    /// directory, in numeric order: a host's index among them is its port.
    private func siblingHosts(in directory: String, prefix: String) throws(SystemError) -> [UInt32] {
        let entries = try system.directoryEntries(directory)
        let numbers = entries.lazy.compactMap { entry -> UInt32? in
            let number = CScan.scan(entry.name, prefix + "%d", [.int])
            return number.count == 1 ? UInt32(truncatingIfNeeded: number.signed(0)) : nil
        }
        return numbers.prefix(8).sorted()
    }

    /// The channel, target and LUN of a SCSI device path
    /// (`.../targetH:C:T/H:C:T:L/...`).
    private static func scsiAddress(_ sysPath: String) -> (channel: UInt64, target: UInt64, lun: UInt64)? {
        guard let target = sysPath.firstByteRange(of: "/target") else { return nil }
        let numbers = CScan.scan(
            sysPath[target.upperBound...], "%*u:%*u:%*u/%*u:%u:%u:%u", [.unsignedInt, .unsignedInt, .unsignedInt])
        guard numbers.count == 3 else { return nil }
        return (numbers.unsigned(0), numbers.unsigned(1), numbers.unsigned(2))
    }

    /// s390x channel I/O: `/devices/css0/<cssid>.<ssid>.<subchno>/<x>.<y>.<devno>/`.
    private func addCCWDetails(_ sysPath: String, at css: Range<String.Index>, to disk: inout GuestDiskAddress) -> Bool {
        let numbers = CScan.scan(
            sysPath[css.upperBound...], "%*x/%x.%x.%x/%*x.%*x.%x/",
            [.unsignedInt, .unsignedInt, .unsignedInt, .unsignedInt])
        guard numbers.count >= 4 else {
            log.debug("could not parse ccw device sysfs path: \(sysPath)")
            return false
        }
        disk.ccwAddress = GuestCCWAddress(
            cssid: Int64(numbers.unsigned(0)), ssid: Int64(numbers.unsigned(1)),
            subchno: Int64(numbers.unsigned(2)), devno: Int64(numbers.unsigned(3)))
        if sysPath[css.lowerBound...].firstByteRange(of: "/virtio") != nil {
            _ = addNonPCIVirtioDetails(sysPath, to: &disk)
        }
        return true
    }

    /// virtio outside PCI: virtio-scsi with its full SCSI address, or virtio-blk.
    private func addNonPCIVirtioDetails(_ sysPath: String, to disk: inout GuestDiskAddress) -> Bool {
        guard sysPath.firstByteRange(of: "/virtio") != nil, sysPath.firstByteRange(of: "/block") != nil else {
            log.debug("Unsupported virtio device '\(sysPath)'")
            return false
        }
        if let scsi = Self.scsiAddress(sysPath) {
            disk.busType = .scsi
            disk.bus = Int64(scsi.channel)
            disk.target = Int64(scsi.target)
            disk.unit = Int64(scsi.lun)
        } else {
            disk.busType = .virtio
        }
        return true
    }
}

extension StringProtocol {
    /// The first occurrence of `needle`, compared byte for byte as `strstr`
    /// compares (and much faster than Character-wise searching).
    func firstByteRange(of needle: String) -> Range<Index>? {
        let pattern = Array(needle.utf8)
        var start = utf8.startIndex
        while start != utf8.endIndex {
            var probe = start
            var matched = 0
            while matched < pattern.count, probe != utf8.endIndex, utf8[probe] == pattern[matched] {
                utf8.formIndex(after: &probe)
                matched += 1
            }
            if matched == pattern.count { return start..<probe }
            utf8.formIndex(after: &start)
        }
        return nil
    }
}

import Foundation
import Glibc
import Testing
@testable import GuestAgent
import MachineFixtures

extension FixtureTree {
    /// A block device in sysfs at `path` (under /sys/devices): its `uevent`
    /// and `size`, its /sys/dev/block link and, for a disk, its /sys/block
    /// link and (unless `slaves` is nil) its `slaves` directory of links to
    /// other devices. `udev` properties go to udev's database.
    func blockDevice(
        _ path: String, major: Int, minor: Int, devname: Bool = true, partition: Bool = false,
        size: String = "2097152\n", slaves: [String]? = [], udev: [String: String] = [:]
    ) throws {
        let name = String(path.split(separator: "/").last!)
        let uevent = "MAJOR=\(major)\nMINOR=\(minor)\n" + (devname ? "DEVNAME=\(name)\n" : "")
            + "DEVTYPE=\(partition ? "partition" : "disk")\n"
        try file(path + "/uevent", uevent)
        try file(path + "/size", size)
        try link("/sys/dev/block/\(major):\(minor)", to: path)
        if !partition {
            try link("/sys/block/" + name, to: path)
            if let slaves {
                try directory(path + "/slaves")
                for slave in slaves { try link(path + "/slaves/" + slave.split(separator: "/").last!, to: slave) }
            }
        }
        if !udev.isEmpty {
            try file("/run/udev/data/b\(major):\(minor)", udev.map { "E:\($0.key)=\($0.value)\n" }.sorted().joined())
        }
    }

    /// The driver link of a PCI function, e.g. `/sys/devices/pci0000:00/0000:00:04.0`.
    func pciDriver(_ function: String, _ driver: String) throws {
        try link(function + "/driver", to: "/sys/bus/pci/drivers/" + driver)
    }

    /// The `mountinfo` of the agent's process.
    func mounts(_ lines: String) throws {
        try file("/proc/self/mountinfo", lines)
    }
}

/// A GuestDiskAddress in schema order.
func diskAddress(
    pci: (Int, Int, Int, Int)? = nil, busType: String, bus: Int = 0, target: Int = 0, unit: Int = 0,
    serial: String? = nil, dev: String? = nil, ccw: (Int, Int, Int, Int)? = nil
) -> String {
    let (domain, pciBus, slot, function) = pci ?? (-1, -1, -1, -1)
    var text = #"{"pci-controller": {"domain": \#(domain), "bus": \#(pciBus), "slot": \#(slot), "function": \#(function)}, "#
        + #""bus-type": "\#(busType)", "bus": \#(bus), "target": \#(target), "unit": \#(unit)"#
    if let serial { text += #", "serial": "\#(serial)""# }
    if let dev { text += #", "dev": "\#(dev)""# }
    if let (cssid, ssid, subchno, devno) = ccw {
        text += #", "ccw-address": {"cssid": \#(cssid), "ssid": \#(ssid), "subchno": \#(subchno), "devno": \#(devno)}"#
    }
    return text + "}"
}

/// A machine with the disk layouts qemu-ga must describe: a virtio-blk disk
/// with partitions, LVM (device-mapper) over two virtio disks, an NVMe disk
/// with a partition and a health log, a virtio-scsi disk, a btrfs mount,
/// an unused loop device and a mount whose device sysfs does not show.
struct DiskMachine {
    let tree: FixtureTree
    static let pci = "/sys/devices/pci0000:00"
    static let vdb = pci + "/0000:00:04.0/virtio2/block/vdb"
    static let vdc = pci + "/0000:00:05.0/virtio3/block/vdc"
    static let vdd = pci + "/0000:00:06.0/virtio4/block/vdd"
    static let dm0 = "/sys/devices/virtual/block/dm-0"
    static let nvme = pci + "/0000:00:07.0/nvme/nvme0/nvme0n1"
    static let sda = pci + "/0000:00:08.0/virtio5/host2/target2:0:1/2:0:1:3/block/sda"
    static let vde = pci + "/0000:00:09.0/virtio6/block/vde"
    static let nvmeSerial = "QEMU NVMe Ctrl_deadbeef"
    static let scsiSerial = "0QEMU_QEMU_HARDDISK_drive-scsi0-0-1-3"

    init() throws {
        tree = try FixtureTree()
        for function in ["04.0", "05.0", "06.0", "08.0", "09.0"] {
            try tree.pciDriver(Self.pci + "/0000:00:" + function, "virtio-pci")
        }
        try tree.pciDriver(Self.pci + "/0000:00:07.0", "nvme")

        try tree.blockDevice(Self.vdb, major: 254, minor: 16, udev: ["ID_SERIAL": "vdb-serial", "DM_NAME": ""])
        try tree.blockDevice(Self.vdb + "/vdb1", major: 254, minor: 17, partition: true, udev: ["ID_SERIAL": "vdb-serial"])
        try tree.blockDevice(Self.vdb + "/vdb2", major: 254, minor: 18, partition: true)
        for other in ["holders", "queue", "power", "vdbx"] { try tree.directory(Self.vdb + "/" + other) }

        try tree.blockDevice(Self.vdc, major: 254, minor: 32)
        try tree.blockDevice(Self.vdd, major: 254, minor: 48, slaves: nil)
        try tree.blockDevice(Self.dm0, major: 253, minor: 0, slaves: [Self.vdc, Self.vdd], udev: ["DM_NAME": "vg0-data"])

        try tree.blockDevice(Self.nvme, major: 259, minor: 0, udev: ["ID_SERIAL": Self.nvmeSerial])
        try tree.blockDevice(Self.nvme + "/nvme0n1p1", major: 259, minor: 1, partition: true, udev: ["ID_SERIAL": Self.nvmeSerial])
        try tree.file("/dev/nvme0n1", Self.smartLog)

        try tree.blockDevice(Self.sda, major: 8, minor: 0, udev: ["ID_SERIAL": Self.scsiSerial])
        try tree.blockDevice(Self.vde, major: 254, minor: 64)
        try tree.blockDeviceNode("/dev/vde", major: 254, minor: 64)

        try tree.blockDevice("/sys/devices/virtual/block/loop0", major: 7, minor: 0, size: "0\n")
        try tree.directory("/sys/block/not-a-link")

        try tree.mounts("""
            20 1 254:17 / /boot rw,relatime shared:1 - ext4 /dev/vdb1 rw
            21 20 0:22 / /run rw - tmpfs tmpfs rw
            22 20 253:0 / /data rw - xfs /dev/mapper/vg0-data rw
            23 20 259:1 / /fast rw - ext4 /dev/nvme0n1p1 rw
            24 20 8:0 / /scsi rw - ext4 /dev/sda rw
            25 20 0:45 / /btr rw - btrfs /dev/vde rw
            26 20 254:17 /srv /srv rw - ext4 /dev/vdb1 rw
            27 20 8:99 / /gone rw - ext4 /dev/sdz rw

            """)
    }

    /// An NVMe health log page with every field distinct.
    static var smartLog: [UInt8] {
        var log = [UInt8](repeating: 0, count: 512)
        log[0] = 0x04
        log[1] = 0x31
        log[2] = 0x01
        log[3] = 100
        log[4] = 10
        log[5] = 3
        for counter in 0..<20 {
            // Counter n (the halves in order) holds n + 1 in its lowest byte and 0xA0 in its highest.
            log[32 + counter * 8] = UInt8(counter + 1)
            log[32 + counter * 8 + 7] = 0xA0
        }
        return log
    }

    static var smartJSON: String {
        let names = ["data-units-read", "data-units-written", "host-read-commands", "host-write-commands",
                     "controller-busy-time", "power-cycles", "power-on-hours", "unsafe-shutdowns", "media-errors",
                     "number-of-error-log-entries"]
        let counters = names.enumerated().flatMap { index, name in
            ["lo", "hi"].enumerated().map { half, suffix in
                #""\#(name)-\#(suffix)": \#(0xA000_0000_0000_0000 as UInt64 + UInt64(index * 2 + half + 1))"#
            }
        }
        return #"{"type": "nvme", "critical-warning": 4, "temperature": 305, "available-spare": 100, "#
            + #""available-spare-threshold": 10, "percentage-used": 3, "# + counters.joined(separator: ", ") + "}"
    }
}

@Suite struct FsinfoTests {
    /// The sizes of statvfs: used, total for unprivileged users, and total.
    @Test func sizesOfAMountedDirectory() throws {
        let tree = try FixtureTree()
        try tree.directory("/here")
        try tree.mounts("1 0 7:200 / /here rw - ext4 /dev/none rw\n")
        let reply = replyLine("guest-get-fsinfo", agent: tree.agent())
        var info = statvfs()
        #expect(statvfs(tree.root + "/here", &info) == 0)
        let fragment = UInt64(info.f_frsize)
        let total = (UInt64(info.f_blocks) - UInt64(info.f_bfree) + UInt64(info.f_bavail)) * fragment
        // Used space moves with whatever else writes to the filesystem meanwhile.
        let used = (try #require(reply.firstMatch(of: /"used-bytes": ([0-9]+)/)).1)
        let expected = #"[{"name": "7:200", "mountpoint": "/here", "type": "ext4", "used-bytes": \#(used), "#
            + #""total-bytes": \#(total), "total-bytes-privileged": \#(UInt64(info.f_blocks) * fragment), "disk": []}]"#
        #expect(reply == returnLine(expected))
        let usedNow = (UInt64(info.f_blocks) - UInt64(info.f_bfree)) * fragment
        #expect(UInt64(used)!.distance(to: usedNow).magnitude < 256 << 20)
    }

    @Test func errorsOfTheWalk() throws {
        let tree = try FixtureTree()
        try tree.mounts("1 0 9:9 / /loop rw - ext4 /dev/loopy rw\n")
        try tree.link("/sys/dev/block/9:9", to: "/sys/dev/block/9:9")
        let agent = tree.agent()
        expectError("guest-get-fsinfo", #"realpath("/sys/dev/block/9:9"): Too many levels of symbolic links"#, agent: agent)

        try tree.mounts("1 0 253:1 / /crypt rw - ext4 /dev/mapper/crypt rw\n")
        try tree.blockDevice("/sys/devices/virtual/block/dm-1", major: 253, minor: 1, slaves: nil)
        try tree.file("/sys/devices/virtual/block/dm-1/slaves", "")
        expectError("guest-get-fsinfo", #"opendir("/sys/devices/virtual/block/dm-1/slaves"): Not a directory"#, agent: agent)
    }

    @Test func noMountTable() throws {
        let tree = try FixtureTree()
        expectError("guest-get-fsinfo", "failed to open mtab file: '/proc/self/mounts'", agent: tree.agent())
    }
}

@Suite struct DisksTests {
    /// One disk behind each kind of controller and path qemu-ga knows, and
    /// some it does not.
    @Test func addressesOfEveryControllerKind() throws {
        let tree = try FixtureTree()
        let pci = DiskMachine.pci
        var expected: [String: String] = [:]
        func disk(_ path: String, _ minor: Int, udev: [String: String] = [:], _ address: String?) throws {
            try tree.blockDevice(path, major: 8, minor: minor, slaves: nil, udev: udev)
            let name = String(path.split(separator: "/").last!)
            expected[name] = #"{"name": "/dev/\#(name)", "partition": false"#
                + (address.map { #", "address": \#($0)"# } ?? "") + "}"
        }
        // IDE: the bus is the host's place among the controller's ata ports.
        try tree.pciDriver(pci + "/0000:00:01.1", "ata_piix")
        try tree.directory(pci + "/0000:00:01.1/ata1")
        try disk(pci + "/0000:00:01.1/ata2/host1/target1:0:1/1:0:1:0/block/sdb", 16,
                 diskAddress(pci: (0, 0, 1, 1), busType: "ide", bus: 1, unit: 1, dev: "/dev/sdb"))
        // SATA: the unit is the port among (the first eight of) the ata ports.
        try tree.pciDriver(pci + "/0000:00:1f.2", "ahci")
        for port in [1, 2, 4, 5, 6, 10] { try tree.directory(pci + "/0000:00:1f.2/ata\(port)") }
        try disk(pci + "/0000:00:1f.2/ata3/host2/target2:0:0/2:0:0:0/block/sdc", 32,
                 diskAddress(pci: (0, 0, 31, 2), busType: "sata", unit: 2, dev: "/dev/sdc"))
        // A controller behind a PCI bridge.
        try tree.pciDriver(pci + "/0000:00:1c.0", "pcieport")
        try tree.pciDriver(pci + "/0000:00:1c.0/0000:01:00.0", "nvme")
        try disk(pci + "/0000:00:1c.0/0000:01:00.0/nvme/nvme1/nvme1n1", 48,
                 diskAddress(pci: (0, 1, 0, 0), busType: "nvme", dev: "/dev/nvme1n1"))
        // USB storage.
        try tree.pciDriver(pci + "/0000:00:14.0", "xhci_hcd")
        try disk(pci + "/0000:00:14.0/usb1/1-1/1-1:1.0/host3/target3:0:0/3:0:0:0/block/sdd", 64,
                 diskAddress(pci: (0, 0, 20, 0), busType: "usb", dev: "/dev/sdd"))
        // LSI SCSI: the unit is the target.
        try tree.pciDriver(pci + "/0000:00:0b.0", "sym53c8xx")
        try disk(pci + "/0000:00:0b.0/host5/target5:0:4/5:0:4:0/block/sde", 80,
                 diskAddress(pci: (0, 0, 11, 0), busType: "scsi", unit: 4, dev: "/dev/sde"))
        // An unknown PCI driver: no hardware details, but the node is known.
        try tree.pciDriver(pci + "/0000:00:0a.0", "megaraid_sas")
        try disk(pci + "/0000:00:0a.0/host4/target4:0:0/4:0:0:0/block/sdg", 96,
                 diskAddress(busType: "unknown", dev: "/dev/sdg"))
        // IDE without a SCSI target: the controller is filled in, the bus type is not.
        try tree.pciDriver(pci + "/0000:00:01.2", "ata_piix")
        try disk(pci + "/0000:00:01.2/ata5/host6/block/sdh", 112,
                 diskAddress(pci: (0, 0, 1, 2), busType: "unknown", dev: "/dev/sdh"))
        // virtio over MMIO: virtio-blk, and virtio-scsi with its whole SCSI address.
        try disk("/sys/devices/platform/virtio-mmio.0/virtio0/block/vdy", 128,
                 diskAddress(busType: "virtio", dev: "/dev/vdy"))
        try disk("/sys/devices/platform/virtio-mmio.1/virtio1/host0/target0:0:2/0:0:2:5/block/sdf", 144,
                 diskAddress(busType: "scsi", bus: 0, target: 2, unit: 5, dev: "/dev/sdf"))
        // s390x channel I/O.
        try disk("/sys/devices/css0/0.0.0002/0.0.0003/virtio1/block/vdz", 160,
                 diskAddress(busType: "virtio", dev: "/dev/vdz", ccw: (0, 0, 2, 3)))
        // Somewhere else entirely: only what udev knows.
        try disk("/sys/devices/platform/mmc0/mmc_host/mmc0/mmc0:0001/block/mmcblk0", 176, udev: ["ID_SERIAL": "mmc-1"],
                 diskAddress(busType: "unknown", serial: "mmc-1", dev: "/dev/mmcblk0"))
        // A device without a node is no disk.
        try tree.blockDevice("/sys/devices/platform/ghost/block/ghost0", major: 8, minor: 192, devname: false, slaves: nil)

        let listed = tree.directoryOrder("/sys/block").compactMap { expected[$0] }
        #expect(listed.count == expected.count)
        expectReturn("guest-get-disks", "[" + listed.reversed().joined(separator: ", ") + "]", agent: tree.agent())
    }

    @Test func noSysBlock() throws {
        let tree = try FixtureTree()
        expectError("guest-get-disks", #"Can't open directory "/sys/block": No such file or directory"#, agent: tree.agent())
    }
}

@Suite struct BlockDeviceFactsTests {
    /// libudev on this machine gives every block device its node, and the
    /// fixture reader, pointed at the real root, reads the same facts from
    /// the files libudev reads.
    @Test func libudevAndTheFixtureReaderAgreeOnThisMachine() throws {
        let system = SystemEnvironment.host()
        let libudev = LibudevFacts()
        let fixture = FixtureBlockDevices(system: system)
        let names = try system.directoryEntries("/sys/block").map(\.name)
        #expect(!names.isEmpty)
        for name in names {
            let device = try #require(libudev.udevDevice(atSysPath: "/sys/block/" + name))
            #expect(device.devnode == "/dev/" + name)
            #expect(fixture.udevDevice(atSysPath: "/sys/block/" + name) == device)
        }
        #expect(libudev.udevDevice(atSysPath: "/sys/block/no-such-device") == nil)
        #expect(fixture.udevDevice(atSysPath: "/sys/block/no-such-device") == nil)
    }

    /// The host machine has libudev's facts; a fixture machine the tree's.
    @Test func theMachineChoosesTheSource() {
        #expect(SystemEnvironment.host().blockDeviceFacts() is LibudevFacts)
        #expect(SystemEnvironment.fixture(root: "/tmp").blockDeviceFacts() is FixtureBlockDevices)
    }

    @Test func smartLogFields() {
        let smart = GuestNVMeSmart(logPage: DiskMachine.smartLog)
        #expect(smart.temperature == 305)
        #expect(smart.numberOfErrorLogEntriesHi == 0xA000_0000_0000_0014)
        #expect(LibudevFacts().nvmeSmartLog(devnode: "/dev/null") == nil)
    }
}

@Suite struct DiskstatsTests {
    @Test func everyLineWithTheCountersItHas() throws {
        let tree = try FixtureTree()
        try tree.file("/proc/diskstats", """
               7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
             254       0 vda 62082 11122 5820794 39966 14784 50046 4020048 17057 0 13656 58015 8392 0 1650544 918 2238 74
             254       1 vda1 100 200 300 400
             254       2 vda2 1 2 3 4 5 6 7 8 9 10 11
             254       3 vda3 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
               8       0 sda 1 2 3 4 5 6
               8       1 sda1 1 2
             259       0 big 18446744073709551615 2 3 4 5 6 7 4294967297 9 10 11
            garbage line

            """)
        let full = #""read-sectors": 5820794, "read-ios": 62082, "read-merges": 11122, "write-sectors": 4020048, "#
            + #""write-ios": 14784, "write-merges": 50046, "discard-sectors": 1650544, "discard-ios": 8392, "#
            + #""discard-merges": 0, "flush-ios": 2238, "read-ticks": 39966, "write-ticks": 17057, "discard-ticks": 918, "#
            + #""flush-ticks": 74, "ios-pgr": 0, "total-ticks": 13656, "weight-ticks": 58015"#
        let zeros = #""read-sectors": 0, "read-ios": 0, "read-merges": 0, "write-sectors": 0, "write-ios": 0, "#
            + #""write-merges": 0, "discard-sectors": 0, "discard-ios": 0, "discard-merges": 0, "flush-ios": 0, "#
            + #""read-ticks": 0, "write-ticks": 0, "discard-ticks": 0, "flush-ticks": 0, "ios-pgr": 0, "#
            + #""total-ticks": 0, "weight-ticks": 0"#
        let eleven = #""read-sectors": 3, "read-ios": 1, "read-merges": 2, "write-sectors": 7, "write-ios": 5, "#
            + #""write-merges": 6, "read-ticks": 4, "write-ticks": 8, "ios-pgr": 9, "total-ticks": 10, "weight-ticks": 11"#
        let fifteen = #""read-sectors": 3, "read-ios": 1, "read-merges": 2, "write-sectors": 7, "write-ios": 5, "#
            + #""write-merges": 6, "discard-sectors": 14, "discard-ios": 12, "discard-merges": 13, "read-ticks": 4, "#
            + #""write-ticks": 8, "discard-ticks": 15, "ios-pgr": 9, "total-ticks": 10, "weight-ticks": 11"#
        // 32-bit tick counters wrap as qemu-ga reads them.
        let big = #""read-sectors": 3, "read-ios": 18446744073709551615, "read-merges": 2, "write-sectors": 7, "#
            + #""write-ios": 5, "write-merges": 6, "read-ticks": 4, "write-ticks": 1, "ios-pgr": 9, "total-ticks": 10, "#
            + #""weight-ticks": 11"#
        expectReturn("guest-get-diskstats", """
            [{"name": "loop0", "major": 7, "minor": 0, "stats": {\(zeros)}}, \
            {"name": "vda", "major": 254, "minor": 0, "stats": {\(full)}}, \
            {"name": "vda1", "major": 254, "minor": 1, "stats": {"read-sectors": 200, "read-ios": 100, \
            "write-sectors": 400, "write-ios": 300}}, \
            {"name": "vda2", "major": 254, "minor": 2, "stats": {\(eleven)}}, \
            {"name": "vda3", "major": 254, "minor": 3, "stats": {\(fifteen)}}, \
            {"name": "sda", "major": 8, "minor": 0, "stats": {}}, \
            {"name": "big", "major": 259, "minor": 0, "stats": {\(big)}}]
            """, agent: tree.agent())
    }

    @Test func missingFile() throws {
        let tree = try FixtureTree()
        expectError("guest-get-diskstats", #"open("/proc/diskstats"): No such file or directory"#, agent: tree.agent())
    }
}

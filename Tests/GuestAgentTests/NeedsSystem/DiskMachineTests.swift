import Glibc
import Testing
import TestRequirements
@testable import GuestAgent

extension NeedsSystem {
    /// guest-get-fsinfo and guest-get-disks on `DiskMachine`, whose btrfs
    /// device node is made with mknod (root).
    @Suite struct DiskMachineTests {
        @Test func everyLayoutLastMountedFirst() throws {
            let machine = try DiskMachine()
            let tree = machine.tree
            let lvmDisks = tree.inDirectoryOrder(DiskMachine.dm0 + "/slaves", [
                "vdc": diskAddress(pci: (0, 0, 5, 0), busType: "virtio", dev: "/dev/vdc"),
                "vdd": diskAddress(pci: (0, 0, 6, 0), busType: "virtio", dev: "/dev/vdd"),
            ]).reversed()
            let expected = [
                #"{"name": "8:99", "mountpoint": "/gone", "type": "ext4", "disk": []}"#,
                #"{"name": "vde", "mountpoint": "/btr", "type": "btrfs", "disk": ["#
                    + diskAddress(pci: (0, 0, 9, 0), busType: "virtio", dev: "/dev/vde") + "]}",
                #"{"name": "sda", "mountpoint": "/scsi", "type": "ext4", "disk": ["#
                    + diskAddress(pci: (0, 0, 8, 0), busType: "scsi", unit: 3, serial: DiskMachine.scsiSerial, dev: "/dev/sda")
                    + "]}",
                #"{"name": "nvme0n1p1", "mountpoint": "/fast", "type": "ext4", "disk": ["#
                    + diskAddress(pci: (0, 0, 7, 0), busType: "nvme", serial: DiskMachine.nvmeSerial, dev: "/dev/nvme0n1p1")
                    + "]}",
                #"{"name": "dm-0", "mountpoint": "/data", "type": "xfs", "disk": ["# + lvmDisks.joined(separator: ", ") + "]}",
                #"{"name": "vdb1", "mountpoint": "/boot", "type": "ext4", "disk": ["#
                    + diskAddress(pci: (0, 0, 4, 0), busType: "virtio", serial: "vdb-serial", dev: "/dev/vdb1") + "]}",
            ]
            expectReturn("guest-get-fsinfo", "[" + expected.joined(separator: ", ") + "]", agent: tree.agent())
        }

        @Test func disksEachAfterItsPartitionsLastListedFirst() throws {
            let machine = try DiskMachine()
            let tree = machine.tree
            let lvmDependencies = tree.inDirectoryOrder(DiskMachine.dm0 + "/slaves", ["vdc": "\"/dev/vdc\"", "vdd": "\"/dev/vdd\""])
            let disks = [
                "vdb": #"{"name": "/dev/vdb", "partition": false, "dependencies": [], "address": "#
                    + diskAddress(pci: (0, 0, 4, 0), busType: "virtio", serial: "vdb-serial", dev: "/dev/vdb") + "}",
                "vdc": #"{"name": "/dev/vdc", "partition": false, "dependencies": [], "address": "#
                    + diskAddress(pci: (0, 0, 5, 0), busType: "virtio", dev: "/dev/vdc") + "}",
                "vdd": #"{"name": "/dev/vdd", "partition": false, "address": "#
                    + diskAddress(pci: (0, 0, 6, 0), busType: "virtio", dev: "/dev/vdd") + "}",
                "dm-0": #"{"name": "/dev/dm-0", "partition": false, "dependencies": ["#
                    + lvmDependencies.reversed().joined(separator: ", ") + #"], "alias": "vg0-data"}"#,
                "nvme0n1": #"{"name": "/dev/nvme0n1", "partition": false, "dependencies": [], "address": "#
                    + diskAddress(pci: (0, 0, 7, 0), busType: "nvme", serial: DiskMachine.nvmeSerial, dev: "/dev/nvme0n1")
                    + #", "smart": "# + DiskMachine.smartJSON + "}",
                "sda": #"{"name": "/dev/sda", "partition": false, "dependencies": [], "address": "#
                    + diskAddress(pci: (0, 0, 8, 0), busType: "scsi", unit: 3, serial: DiskMachine.scsiSerial, dev: "/dev/sda")
                    + "}",
                "vde": #"{"name": "/dev/vde", "partition": false, "dependencies": [], "address": "#
                    + diskAddress(pci: (0, 0, 9, 0), busType: "virtio", dev: "/dev/vde") + "}",
            ]
            let partitions = [
                "vdb": ["vdb1": "/dev/vdb1", "vdb2": "/dev/vdb2"],
                "nvme0n1": ["nvme0n1p1": "/dev/nvme0n1p1"],
            ]
            var listed: [String] = []
            for name in tree.directoryOrder("/sys/block") {
                guard let disk = disks[name] else { continue }
                listed.append(disk)
                let parts = tree.inDirectoryOrder("/sys/block/" + name, partitions[name] ?? [:])
                listed += parts.map { #"{"name": "\#($0)", "partition": true, "dependencies": ["/dev/\#(name)"]}"# }
            }
            #expect(listed.count == 10)
            expectReturn("guest-get-disks", "[" + listed.reversed().joined(separator: ", ") + "]", agent: tree.agent())
        }
    }
}

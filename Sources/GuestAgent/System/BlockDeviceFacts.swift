import CGLib
import CUdev
import Glibc

/// What udev knows about a block device that qemu-ga reports: its device
/// node and the properties `ID_SERIAL` and `DM_NAME`.
package struct UdevDevice: Equatable {
    package var devnode: String?
    package var properties: [String: String] = [:]

    package init(devnode: String?, properties: [String: String] = [:]) {
        self.devnode = devnode
        self.properties = properties
    }

    /// A property's value, nil when it is absent or empty.
    func property(_ name: String) -> String? {
        properties[name].flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// Where the facts about block devices come from that sysfs alone does not
/// give: udev's view of a device and the NVMe health log of a device node.
///
/// On the real machine this is libudev and the device itself. libudev always
/// reads the real /sys and /run/udev, so for a fixture tree the same facts
/// come from the tree: the files libudev itself reads there.
package protocol BlockDeviceFacts {
    /// udev's device for a sysfs path of the machine (symbolic links
    /// allowed), nil when there is none.
    func udevDevice(atSysPath path: String) -> UdevDevice?
    /// The SMART / health information log page (512 bytes) of an NVMe device
    /// node, nil when it cannot be had.
    func nvmeSmartLog(devnode: String) -> [UInt8]?
}

/// The udev properties qemu-ga asks for.
package let reportedUdevProperties = ["ID_SERIAL", "DM_NAME"]

/// libudev, and the NVMe admin ioctl on the device node.
package final class LibudevFacts: BlockDeviceFacts {
    private let udev: OpaquePointer?

    init() { udev = udev_new() }

    isolated deinit { udev_unref(udev) }

    package func udevDevice(atSysPath path: String) -> UdevDevice? {
        guard let udev, let device = udev_device_new_from_syspath(udev, path) else { return nil }
        defer { udev_device_unref(device) }
        var result = UdevDevice(devnode: udev_device_get_devnode(device).map { String(cString: $0) })
        for name in reportedUdevProperties {
            if let value = udev_device_get_property_value(device, name) {
                result.properties[name] = String(cString: value)
            }
        }
        return result
    }

    /// NVMe Get Log Page (opcode 0x02) for log 0x02 (SMART / health) of all
    /// namespaces, with Retain Asynchronous Event set so that reading it
    /// does not clear a pending event.
    package func nvmeSmartLog(devnode: String) -> [UInt8]? {
        let fd = open(devnode, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var log = [UInt8](repeating: 0, count: nvmeSmartLogSize)
        let status = log.withUnsafeMutableBytes { buffer -> Int32 in
            var command = nvme_passthru_cmd()
            command.opcode = 0x02
            command.nsid = 0xFFFF_FFFF
            command.addr = UInt64(UInt(bitPattern: buffer.baseAddress))
            command.data_len = UInt32(buffer.count)
            command.cdw10 = 0x02 | 1 << 15 | UInt32(buffer.count / 4 - 1) << 16
            return cglib_ioctl_pointer(fd, cglib_nvme_ioctl_admin_cmd(), &command)
        }
        return status == 0 ? log : nil
    }
}

/// The size of the NVMe SMART / health information log page.
package let nvmeSmartLogSize = 512

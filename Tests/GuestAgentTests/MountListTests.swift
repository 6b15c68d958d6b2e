import Testing
@testable import GuestAgent
import MachineFixtures

@Suite struct MountListTests {
    @Test func mountInfoKeepsDeviceBackedMountsOncePerDeviceInFileOrder() throws {
        try withTemporaryDirectory { root in
            let system = SystemEnvironment.fixture(root: root)
            let text = """
                22 1 0:21 / /proc rw,nosuid - proc proc rw
                25 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
                26 25 254:1 /srv /mnt/bind\\040dir rw - ext4 /dev/vda1 rw
                27 25 0:24 / /run rw - tmpfs tmpfs rw
                28 25 8:16 / /data\\134x rw master:2 - xfs /dev/sdb rw
                29 25 0:30 / /btr rw - btrfs /dev/missing rw
                """
            let mounts = MountList.parseMountInfo(text, system: system)
            #expect(mounts == [
                Mount(device: "/dev/vda1", mountPoint: "/", type: "ext4", major: 254, minor: 1),
                Mount(device: "/dev/vda1", mountPoint: "/mnt/bind dir", type: "ext4", major: 254, minor: 1),
                Mount(device: "/dev/sdb", mountPoint: "/data\\x", type: "xfs", major: 8, minor: 16),
            ])
            try makeDirectories(root + "/proc/self")
            writeFile(root + "/proc/self/mountinfo", text)
            #expect(try MountList.read(system).map(\.mountPoint) == ["/", "/data\\x"])
        }
    }

    @Test func theMountsFileIsTheFallback() throws {
        try withTemporaryDirectory { root in
            try makeDirectories(root + "/proc/self")
            writeFile(root + "/proc/self/mounts", "/dev/nonexistent / ext4 rw 0 0\nproc /proc proc rw 0 0\n//server/x /smb cifs rw 0 0\n")
            let mounts = try MountList.read(SystemEnvironment.fixture(root: root))
            #expect(mounts == [Mount(device: "/dev/nonexistent", mountPoint: "/", type: "ext4", major: 0, minor: 0)])
        }
    }

    @Test func noMountTableIsQemuGasError() {
        #expect(throws: QMPError("failed to open mtab file: '/proc/self/mounts'")) {
            try MountList.read(SystemEnvironment.fixture(root: "/nonexistent"))
        }
    }

    @Test func theRealMachineHasARootMount() throws {
        #expect(try MountList.read(SystemEnvironment.host()).contains { $0.mountPoint == "/" || $0.type == "overlay" || $0.major != 0 })
    }
}

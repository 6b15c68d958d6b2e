import Testing
import GuestAgent

@Test func interfaceVersionIsAQemuRelease() {
    #expect(qgaInterfaceVersion.split(separator: ".").count == 3)
}

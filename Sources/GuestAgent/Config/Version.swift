/// The qemu-ga release whose interface this agent implements. Host tools gate
/// features on the version `guest-info` reports, so it names that release.
package let qgaInterfaceVersion = "11.1.0"

/// swift-qemu-ga's own release.
package let swiftQemuGaVersion = "0.1.0"

import Testing
@testable import GuestAgent

@Suite struct RegistryTests {
    /// The Linux commands of the newest schema (QEMU's qga/qapi-schema.json),
    /// in the order it defines them.
    static let schemaOrder = [
        "guest-sync-delimited", "guest-sync", "guest-ping", "guest-get-time", "guest-set-time", "guest-info",
        "guest-shutdown", "guest-file-open", "guest-file-close", "guest-file-read", "guest-file-write", "guest-file-seek",
        "guest-file-flush", "guest-fsfreeze-status", "guest-fsfreeze-freeze", "guest-fsfreeze-freeze-list",
        "guest-fsfreeze-thaw", "guest-fstrim", "guest-suspend-disk", "guest-suspend-ram", "guest-suspend-hybrid",
        "guest-network-get-interfaces", "guest-get-vcpus", "guest-set-vcpus", "guest-get-disks", "guest-get-fsinfo",
        "guest-set-user-password", "guest-get-memory-blocks", "guest-set-memory-blocks", "guest-get-memory-block-info",
        "guest-exec-status", "guest-exec", "guest-get-host-name", "guest-get-users", "guest-get-timezone",
        "guest-get-osinfo", "guest-ssh-get-authorized-keys", "guest-ssh-add-authorized-keys",
        "guest-ssh-remove-authorized-keys", "guest-get-diskstats", "guest-get-cpustats", "guest-get-load",
        "guest-network-get-route",
    ]

    @Test func registrationFollowsTheSchemaOrder() {
        let names = registeredCommands.map { $0.name }
        #expect(names == Self.schemaOrder.filter(names.contains), "\(names)")
    }

    @Test func successResponseAndFreezeSafety() {
        let registry = CommandRegistry()
        let silent: Set = ["guest-shutdown", "guest-suspend-disk", "guest-suspend-ram", "guest-suspend-hybrid"]
        let freezeSafe: Set = ["guest-ping", "guest-info", "guest-sync", "guest-sync-delimited", "guest-fsfreeze-status", "guest-fsfreeze-thaw"]
        for entry in registry.entries {
            #expect(entry.successResponse == !silent.contains(entry.name), "\(entry.name)")
            #expect(entry.allowedWhileFrozen == freezeSafe.contains(entry.name), "\(entry.name)")
        }
    }
}

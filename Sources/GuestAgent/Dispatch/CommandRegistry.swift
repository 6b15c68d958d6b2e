/// Every command the agent knows, in QEMU's schema order: `-b help` lists
/// them in this order and `guest-info` in the reverse, as qemu-ga does.
/// Adding a command is one line here. Each entry is made from its concrete
/// type, never from an `any GuestAgentCommand.Type`: such an existential
/// needs the conformance's witness table, which the runtime instantiates
/// (the protocol's associated types conform to the standard library's
/// Decodable and Encodable), 46 of them with every start.
let registeredCommands: [CommandEntry] = [
    CommandEntry(GuestSyncDelimited.self),
    CommandEntry(GuestSync.self),
    CommandEntry(GuestPing.self),
    CommandEntry(GuestGetTime.self),
    CommandEntry(GuestSetTime.self),
    CommandEntry(GuestInfo.self),
    CommandEntry(GuestShutdown.self),
    CommandEntry(GuestFileOpen.self),
    CommandEntry(GuestFileClose.self),
    CommandEntry(GuestFileRead.self),
    CommandEntry(GuestFileWrite.self),
    CommandEntry(GuestFileSeek.self),
    CommandEntry(GuestFileFlush.self),
    CommandEntry(GuestFsfreezeGetStatus.self),
    CommandEntry(GuestFsfreezeFreeze.self),
    CommandEntry(GuestFsfreezeFreezeList.self),
    CommandEntry(GuestFsfreezeThaw.self),
    CommandEntry(GuestFstrim.self),
    CommandEntry(GuestSuspendDisk.self),
    CommandEntry(GuestSuspendRam.self),
    CommandEntry(GuestSuspendHybrid.self),
    CommandEntry(GuestNetworkGetInterfaces.self),
    CommandEntry(GuestGetVcpus.self),
    CommandEntry(GuestSetVcpus.self),
    CommandEntry(GuestGetDisks.self),
    CommandEntry(GuestGetFsinfo.self),
    CommandEntry(GuestSetUserPassword.self),
    CommandEntry(GuestGetMemoryBlocks.self),
    CommandEntry(GuestSetMemoryBlocks.self),
    CommandEntry(GuestGetMemoryBlockInfo.self),
    CommandEntry(GuestExecStatus.self),
    CommandEntry(GuestExec.self),
    CommandEntry(GuestGetHostName.self),
    CommandEntry(GuestGetUsers.self),
    CommandEntry(GuestGetTimezone.self),
    CommandEntry(GuestGetOsinfo.self),
    CommandEntry(GuestSSHGetAuthorizedKeys.self),
    CommandEntry(GuestSSHAddAuthorizedKeys.self),
    CommandEntry(GuestSSHRemoveAuthorizedKeys.self),
    CommandEntry(GuestGetDiskstats.self),
    CommandEntry(GuestGetCpustats.self),
    // The newest schema defines guest-get-load (10.0) before
    // guest-network-get-route (9.1).
    CommandEntry(GuestGetLoad.self),
    CommandEntry(GuestNetworkGetRoute.self),
]

/// Why a command is disabled; the text ends the host's error,
/// `Command <name> has been disabled: <reason>`.
enum DisabledReason: String {
    /// A block list names it, or an allow list leaves it out.
    case notAllowed = "the command is not allowed"
    /// Filesystems are frozen and it is not freeze-safe. qemu-ga 7.2's text:
    /// it tells the operator to thaw rather than to look for a list.
    case frozen = "the agent is in frozen state"
}

/// The registered commands and which of them are enabled right now.
package final class CommandRegistry {
    package let entries: [CommandEntry]
    private let indexByName: [String: Int]
    private var disabled: [String: DisabledReason] = [:]

    package init(_ entries: [CommandEntry] = registeredCommands) {
        self.entries = entries
        indexByName = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
    }

    package func entry(named name: String) -> CommandEntry? {
        indexByName[name].map { entries[$0] }
    }

    package func isEnabled(_ name: String) -> Bool { disabled[name] == nil }

    func disabledReason(_ name: String) -> DisabledReason? { disabled[name] }

    /// Recomputes which commands are enabled, with the newest qemu-ga's rule:
    /// allowed unless an allow-list omits it or the block-list names it.
    /// While frozen, exactly the freeze-safe commands are enabled, whatever
    /// the lists say, so that an agent can always be asked for its freeze
    /// status and thawed.
    func applyFilters(blocked: Set<String>, allowed: Set<String>?, frozen: Bool) {
        disabled = [:]
        for entry in entries {
            if frozen {
                if !entry.allowedWhileFrozen { disabled[entry.name] = .frozen }
            } else if blocked.contains(entry.name) || allowed.map({ !$0.contains(entry.name) }) == true {
                disabled[entry.name] = .notAllowed
            }
        }
    }
}

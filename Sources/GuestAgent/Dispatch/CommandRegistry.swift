/// Every command the agent knows, in QEMU's schema order: `-b help` lists
/// them in this order and `guest-info` in the reverse, as qemu-ga does.
/// Adding a command is one line here.
let registeredCommands: [any GuestAgentCommand.Type] = [
    GuestSyncDelimited.self,
    GuestSync.self,
    GuestPing.self,
    GuestGetTime.self,
    GuestSetTime.self,
    GuestInfo.self,
    GuestShutdown.self,
    GuestFileOpen.self,
    GuestFileClose.self,
    GuestFileRead.self,
    GuestFileWrite.self,
    GuestFileSeek.self,
    GuestFileFlush.self,
    GuestFsfreezeGetStatus.self,
    GuestFsfreezeFreeze.self,
    GuestFsfreezeFreezeList.self,
    GuestFsfreezeThaw.self,
    GuestFstrim.self,
    GuestSuspendDisk.self,
    GuestSuspendRam.self,
    GuestSuspendHybrid.self,
    GuestNetworkGetInterfaces.self,
    GuestGetVcpus.self,
    GuestSetVcpus.self,
    GuestGetDisks.self,
    GuestGetFsinfo.self,
    GuestSetUserPassword.self,
    GuestGetMemoryBlocks.self,
    GuestSetMemoryBlocks.self,
    GuestGetMemoryBlockInfo.self,
    GuestExecStatus.self,
    GuestExec.self,
    GuestGetHostName.self,
    GuestGetUsers.self,
    GuestGetTimezone.self,
    GuestGetOsinfo.self,
    GuestSSHGetAuthorizedKeys.self,
    GuestSSHAddAuthorizedKeys.self,
    GuestSSHRemoveAuthorizedKeys.self,
    GuestGetDiskstats.self,
    GuestGetCpustats.self,
    // The newest schema defines guest-get-load (10.0) before
    // guest-network-get-route (9.1).
    GuestGetLoad.self,
    GuestNetworkGetRoute.self,
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

    package init(_ commands: [any GuestAgentCommand.Type] = registeredCommands) {
        entries = commands.map { CommandEntry($0) }
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

/// Freezing and thawing the guest's filesystems (guest-fsfreeze-*, see
/// qemu-ga-ref(7); the hook and frozen mode in qemu-ga(8)): the fsfreeze hook,
/// FIFREEZE in reverse mount order, repeated FITHAW, and the agent's frozen
/// mode around them.
enum Fsfreeze {
    static let hookAction = "execute fsfreeze hook"

    /// Runs the fsfreeze hook (`-F`) with `freeze` or `thaw`, when one is
    /// configured. Better than qemu-ga with `kill-hook-after`: a hook
    /// that hangs is killed instead of hanging the agent.
    static func runHook(_ argument: String, agent: GAState) throws(QMPError) -> ChildProcess.Outcome? {
        guard let hook = agent.config.fsfreezeHook else { return nil }
        agent.log.syslog("executing fsfreeze hook with arg '\(argument)'")
        let timeout = agent.config.killHookAfter.flatMap { $0 > 0 ? $0 : nil }
        return try ChildProcess.outcome(of: [hook, argument], action: hookAction, system: agent.system, timeout: timeout)
    }

    /// `guest-fsfreeze-freeze[-list]`: the number of filesystems frozen.
    static func freeze(mountPoints: [String]?, agent: GAState) throws(QMPError) -> Int64 {
        agent.log.syslog("guest-fsfreeze called")
        if let hook = try runHook("freeze", agent: agent) {
            if case .timedOut = hook.ending {
                // The killed hook may have done half its work: its thaw undoes
                // it, so that the failed freeze leaves everything thawed.
                _ = try? thaw(agent: agent)
            }
            try hook.check(action: hookAction)
        }
        let mounts = try MountList.read(agent.system)
        // No write may block the agent from here until the thaw.
        agent.setFrozen()
        var frozen: Int64 = 0
        do throws(QMPError) {
            // Children before their parents.
            for mount in mounts.reversed() where mountPoints?.contains(mount.mountPoint) ?? true {
                do throws(OpenedCallError) {
                    try agent.system.calls.withOpened(agent.system.path(mount.mountPoint)) { fd throws(SystemError) in
                        try agent.system.calls.freezeFilesystem(fd)
                    }
                    frozen += 1
                } catch .open(let error) {
                    throw QMPError("failed to open \(mount.mountPoint): \(error)")
                } catch .call(let error) where error != .notSupported && error != .busy {
                    // EOPNOTSUPP: cannot be frozen; EBUSY: already frozen (a
                    // second mount of the same filesystem): neither counts.
                    throw QMPError("failed to freeze \(mount.mountPoint): \(error)")
                } catch {}
            }
        } catch {
            _ = try? thaw(agent: agent)
            throw error
        }
        if frozen == 0 { agent.unsetFrozen() }
        return frozen
    }

    /// `guest-fsfreeze-thaw`: thaws every filesystem of the mount list, not
    /// only those the agent froze, leaves frozen mode and runs the hook with
    /// `thaw`; the number of filesystems that were frozen. A failing hook
    /// makes it an error although everything is thawed, as in qemu-ga.
    @discardableResult
    static func thaw(agent: GAState) throws(QMPError) -> Int64 {
        let mounts = try MountList.read(agent.system)
        var thawed: Int64 = 0
        for mount in mounts {
            // Each FIFREEZE needs its FITHAW: repeat until the kernel says it
            // is not frozen any more. A mount point that cannot be opened is
            // passed over.
            var succeeded = false
            _ = try? agent.system.calls.withOpened(agent.system.path(mount.mountPoint)) { fd throws(SystemError) in
                while (try? agent.system.calls.thawFilesystem(fd)) != nil { succeeded = true }
            }
            if succeeded { thawed += 1 }
        }
        agent.unsetFrozen()
        agent.log.syslog("guest-fsthaw called")
        try runHook("thaw", agent: agent)?.check(action: hookAction)
        return thawed
    }

    /// The end of the agent while still frozen (not by a signal, which is
    /// ignored then, but by a channel failure): thaw first.
    static func cleanUp(agent: GAState) {
        guard agent.isFrozen else { return }
        do {
            try thaw(agent: agent)
        } catch {
            agent.log.syslog("failed to clean up frozen filesystems: \(error.desc)")
        }
    }

    /// Better than qemu-ga (`thaw-after`): the thaw nobody sent.
    static func autoThaw(agent: GAState, seconds: Int) {
        let prefix = "filesystems frozen for \(seconds) s without guest-fsfreeze-thaw"
        do {
            let count = try thaw(agent: agent)
            agent.log.syslog("\(prefix): thawed \(count) automatically")
        } catch {
            agent.log.syslog("\(prefix): automatic thaw: \(error.desc)")
        }
    }
}

/// GuestFsfreezeStatus.
enum GuestFsfreezeStatus: String, Encodable {
    case thawed, frozen
}

/// `guest-fsfreeze-status`: the agent's own flag (set by its freeze or by the
/// marker at start-up), not the kernel's.
struct GuestFsfreezeGetStatus: @MainActor GuestAgentCommand {
    static let name = "guest-fsfreeze-status"
    static let allowedWhileFrozen = true

    static func run(_ arguments: NoArguments, agent: GAState) -> GuestFsfreezeStatus {
        agent.isFrozen ? .frozen : .thawed
    }
}

/// `guest-fsfreeze-freeze`: every filesystem of the mount list.
struct GuestFsfreezeFreeze: @MainActor GuestAgentCommand {
    static let name = "guest-fsfreeze-freeze"

    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> Int64 {
        try Fsfreeze.freeze(mountPoints: nil, agent: agent)
    }
}

/// `guest-fsfreeze-freeze-list`: only the mount points named exactly (all
/// without `mountpoints`); unknown names are ignored.
struct GuestFsfreezeFreezeList: @MainActor GuestAgentCommand {
    static let name = "guest-fsfreeze-freeze-list"

    struct Arguments: Decodable { let mountpoints: [String]? }

    static func run(_ arguments: Arguments, agent: GAState) throws(QMPError) -> Int64 {
        try Fsfreeze.freeze(mountPoints: arguments.mountpoints, agent: agent)
    }
}

/// `guest-fsfreeze-thaw`.
struct GuestFsfreezeThaw: @MainActor GuestAgentCommand {
    static let name = "guest-fsfreeze-thaw"
    static let allowedWhileFrozen = true

    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> Int64 {
        try Fsfreeze.thaw(agent: agent)
    }
}

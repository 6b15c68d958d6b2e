/// `guest-shutdown`, as the newest qemu-ga does it: `/sbin/poweroff`,
/// `/sbin/halt` or `/sbin/reboot` without arguments when executable, else
/// `/sbin/shutdown -h -P|-H|-r +0 "hypervisor initiated shutdown"`. No reply
/// on success; an error reply on failure.
struct GuestShutdown: @MainActor GuestAgentCommand {
    static let name = "guest-shutdown"
    static let successResponse = false

    struct Arguments: Decodable { let mode: String? }

    static func run(_ arguments: Arguments, agent: GAState) throws(QMPError) -> EmptyResult {
        agent.log.syslog("guest-shutdown called, mode: \(arguments.mode ?? "(null)")")
        let (program, flag) = switch arguments.mode ?? "powerdown" {
        case "powerdown": ("/sbin/poweroff", "-P")
        case "halt": ("/sbin/halt", "-H")
        case "reboot": ("/sbin/reboot", "-r")
        default: throw QMPError("mode is invalid (valid values are: halt|powerdown|reboot")
        }
        let command = agent.system.calls.isExecutable(agent.system.path(program))
            ? [program] : ["/sbin/shutdown", "-h", flag, "+0", "hypervisor initiated shutdown"]
        try ChildProcess.run(command, action: "shutdown", system: agent.system)
        return EmptyResult()
    }
}

/// A sleep state and how each strategy names it.
nonisolated struct SuspendMode: Equatable, Sendable {
    let systemdService: String
    let systemctlVerb: String
    let pmUtilsOption: String
    let pmUtilsProgram: String
    /// What `/sys/power/state` calls it; hybrid has no sysfs form.
    let sysfsState: String?

    static let disk = SuspendMode(
        systemdService: "systemd-hibernate", systemctlVerb: "hibernate", pmUtilsOption: "--hibernate",
        pmUtilsProgram: "pm-hibernate", sysfsState: "disk")
    static let ram = SuspendMode(
        systemdService: "systemd-suspend", systemctlVerb: "suspend", pmUtilsOption: "--suspend",
        pmUtilsProgram: "pm-suspend", sysfsState: "mem")
    static let hybrid = SuspendMode(
        systemdService: "systemd-hybrid-sleep", systemctlVerb: "hybrid-sleep", pmUtilsOption: "--suspend-hybrid",
        pmUtilsProgram: "pm-suspend-hybrid", sysfsState: nil)
}

/// guest-suspend-disk/-ram/-hybrid: systemd, then pm-utils, then
/// `/sys/power/state`. Errors of the first two strategies are dropped when the
/// next one is tried, as in qemu-ga.
///
/// Better than qemu-ga: when a strategy claimed support but failed and none
/// after it could act, the host gets that failure as an error reply (qemu-ga
/// sends nothing, which looks like success).
enum Suspend {
    static let statePath = "/sys/power/state"

    static func suspend(_ mode: SuspendMode, agent: GAState) throws(QMPError) {
        let system = agent.system
        var supported = false
        var failure: QMPError?

        if systemdSupports(mode, system: system) {
            supported = true
            guard let error = actionError(["systemctl", mode.systemctlVerb], system: system) else { return }
            failure = error
        }
        if pmUtilsSupports(mode, system: system) {
            supported = true
            guard let error = actionError([mode.pmUtilsProgram], system: system) else { return }
            failure = error
        }
        guard let state = mode.sysfsState else {
            throw supported ? QMPError("unknown guest suspend mode") : notSupported
        }
        guard sysfsSupports(state, system: system) else {
            throw supported ? failure ?? notSupported : notSupported
        }
        do throws(OpenedCallError) {
            _ = try system.calls.withOpened(system.path(statePath), .writeOnly) { fd throws(SystemError) in
                try system.calls.write(fd, Array(state.utf8), at: nil)
            }
        } catch {
            let failure = switch error { case .open(let failure), .call(let failure): failure }
            throw QMPError("suspend: cannot write to '\(statePath)': \(failure)")
        }
    }

    private static let notSupported = QMPError("the requested suspend mode is not supported by the guest")

    /// A helper's exit status as qemu-ga reads it from `g_spawn_sync`:
    /// WEXITSTATUS, which is 0 for a signal death.
    private static func exitStatus(_ outcome: ChildProcess.Outcome) -> Int32 {
        if case .exited(let status) = outcome.ending { return status }
        return 0
    }

    /// A probe's exit status; nil when it could not be run at all.
    private static func probe(_ command: [String], system: SystemEnvironment) -> Int32? {
        guard let outcome = try? ChildProcess.outcome(of: command, action: "suspend", system: system),
              outcome.execError == nil
        else { return nil }
        return exitStatus(outcome)
    }

    /// `systemctl status <service>`: LSB statuses 1-3 (e.g. 3, not running)
    /// mean the service exists; 4 means it does not.
    private static func systemdSupports(_ mode: SuspendMode, system: SystemEnvironment) -> Bool {
        guard let status = probe(["systemctl", "status", mode.systemdService], system: system) else { return false }
        return (1...3).contains(status)
    }

    private static func pmUtilsSupports(_ mode: SuspendMode, system: SystemEnvironment) -> Bool {
        probe(["pm-is-supported", mode.pmUtilsOption], system: system) == 0
    }

    /// Runs a suspend action; its failure in qemu-ga's words, or nil.
    private static func actionError(_ command: [String], system: SystemEnvironment) -> QMPError? {
        let name = command.joined(separator: " ")
        let outcome: ChildProcess.Outcome
        do {
            outcome = try ChildProcess.outcome(of: command, action: "suspend", system: system)
        } catch {
            return error
        }
        if let error = outcome.execError {
            return error == .noSuchFile
                ? QMPError("the helper program '\(name)' was not found")
                : QMPError("failed to create child process, error 'Failed to execute child process “\(command[0])” (\(error))'")
        }
        let status = exitStatus(outcome)
        return status == 0 ? nil : QMPError("the helper program '\(name)' returned an unexpected exit status code (\(status))")
    }

    /// The first 31 bytes of `/sys/power/state` name the state.
    private static func sysfsSupports(_ state: String, system: SystemEnvironment) -> Bool {
        // 31 bytes, searched as a C string (qemu-ga's strstr: up to a NUL).
        guard let bytes = try? system.calls.withOpened(system.path(statePath), .readOnly, { fd throws(SystemError) in
            try system.calls.read(fd, upTo: 31, at: nil)
        }), !bytes.isEmpty else { return false }
        let text = Array(bytes.prefix { $0 != 0 }), wanted = Array(state.utf8)
        return text.indices.contains { text[$0...].starts(with: wanted) }
    }
}

/// The three guest-suspend-* commands: the chain of `Suspend` for their
/// mode; no reply on success.
protocol GuestSuspendCommand: GuestAgentCommand where Arguments == NoArguments, Result == EmptyResult {
    static var mode: SuspendMode { get }
}

extension GuestSuspendCommand {
    static var successResponse: Bool { false }

    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> EmptyResult {
        try Suspend.suspend(mode, agent: agent)
        return EmptyResult()
    }
}

/// `guest-suspend-disk`: hibernate.
struct GuestSuspendDisk: @MainActor GuestSuspendCommand {
    static let name = "guest-suspend-disk"
    static let mode = SuspendMode.disk
}

/// `guest-suspend-ram`: suspend to RAM.
struct GuestSuspendRam: @MainActor GuestSuspendCommand {
    static let name = "guest-suspend-ram"
    static let mode = SuspendMode.ram
}

/// `guest-suspend-hybrid`: both.
struct GuestSuspendHybrid: @MainActor GuestSuspendCommand {
    static let name = "guest-suspend-hybrid"
    static let mode = SuspendMode.hybrid
}

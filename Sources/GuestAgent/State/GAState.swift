import Glibc
import QMPJSON

/// The agent's process-wide state, as qemu-ga's `GAState`: the JSON parser
/// fed by the channel, the command registry, the log, and the one-shot
/// `delimitResponse` flag of `guest-sync-delimited`.
package final class GAState {
    package let config: GAConfig
    /// The machine the commands read and change (a fixture tree in tests).
    package let system: SystemEnvironment
    package let log: GALog
    package let commands: CommandRegistry
    let persistentState: PersistentState?
    /// True while the guest's filesystems are frozen: only the freeze-safe
    /// commands run, nothing is logged, and stop signals are ignored.
    package private(set) var isFrozen: Bool
    /// The log file and pid file that a start in frozen mode put off until
    /// the thaw (qemu-ga's `deferred_options`).
    var deferredLogFile: String?
    var deferredPidFile: String?
    /// The pid file this process created, removed at exit.
    var pidFile: PidFile?
    /// Fires `thaw-after` seconds into a freeze.
    private var autoThawTimer: GLibSource?
    /// Set by `guest-sync-delimited`; `sendResponse` consumes it to put the
    /// 0xFF sentinel before the next response, which is that command's own.
    package var delimitResponse = false
    /// The files opened by guest-file-open.
    let guestFiles = GuestFiles()
    /// The children started by guest-exec.
    lazy var guestProcesses = GuestProcesses(log: log, outputBudget: config.execOutputBudgetBytes, timeout: config.execTimeout)

    var parser = JSONMessageParser()
    /// The daemon's channel: its input is answered here, its failures are
    /// the daemon's business.
    var channel: GAChannel? {
        didSet { attach(channel) }
    }
    /// Where input comes from and replies go: `channel`, or a test's stand-in.
    private var host: (any HostChannel)?
    /// Called once each chunk of the host's input is answered: the daemon
    /// counts the host's quiet from there (`CleanPageRelease`).
    var afterInput: (() -> Void)?

    /// Answers the input of `host` and sends it the replies.
    func attach(_ host: (any HostChannel)?) {
        self.host = host
        host?.onInput = { [unowned self] bytes in self.handleInput(bytes) }
        host?.onDisconnect = { [unowned self] in self.hostDisconnected() }
    }

    package init(
        config: GAConfig = GAConfig(), system: SystemEnvironment, log: GALog = GALog(),
        commands: CommandRegistry = CommandRegistry(), persistentState: PersistentState? = nil, frozen: Bool = false
    ) {
        self.config = config
        self.system = system
        self.log = log
        self.commands = commands
        self.persistentState = persistentState
        isFrozen = frozen
        ignoreBrokenPipes()
        applyCommandFilters()
        if frozen { armAutoThaw() }
    }

    /// Enables and disables commands from the block and allow lists and the
    /// frozen state, logging each command whose state changes.
    func applyCommandFilters() {
        let wasEnabled = commands.entries.map { commands.isEnabled($0.name) }
        commands.applyFilters(
            blocked: Set(config.blockedRPCs),
            allowed: config.allowedRPCs.isEmpty ? nil : Set(config.allowedRPCs),
            frozen: isFrozen)
        for (entry, wasEnabled) in zip(commands.entries, wasEnabled) where commands.isEnabled(entry.name) != wasEnabled {
            log.debug("\(wasEnabled ? "disabling" : "enabling") command: \(entry.name)")
        }
    }

    /// `<statedir>/qga.state.isfrozen`: tells a restarted agent that the
    /// filesystems may still be frozen.
    var frozenMarkerPath: String { config.stateDirectory + "/qga.state.isfrozen" }

    /// Enters frozen mode (qemu-ga's `ga_set_frozen`): only the freeze-safe
    /// commands stay enabled, the marker is created, and the warning below
    /// is the last line logged until the thaw, since a write to a frozen
    /// filesystem would block the agent.
    func setFrozen() {
        guard !isFrozen else { return }
        isFrozen = true
        applyCommandFilters()
        let marker = frozenMarkerPath
        let fd = open(marker, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        if fd >= 0 {
            close(fd)
        } else {
            log.warning("unable to open/create file \(marker): \(SystemError.current)")
            log.warning("unable to create \(marker), fsfreeze may not function properly")
        }
        log.warning("disabling logging due to filesystem freeze")
        log.isEnabled = false
        armAutoThaw()
    }

    /// Leaves frozen mode (qemu-ga's `ga_unset_frozen`), first creating the
    /// log file and pid file that a frozen start-up put off.
    func unsetFrozen() {
        guard isFrozen else { return }
        autoThawTimer?.cancel()
        autoThawTimer = nil
        if let path = deferredLogFile {
            // As in qemu-ga, a log file that cannot be opened now leaves the log on stderr.
            try? log.openFile(path)
            deferredLogFile = nil
        }
        log.isEnabled = true
        log.warning("logging re-enabled due to filesystem unfreeze")
        if let path = deferredPidFile {
            do {
                pidFile = try PidFile.create(path: path)
            } catch {
                log.warning(error.description)
            }
            deferredPidFile = nil
        }
        isFrozen = false
        let marker = frozenMarkerPath
        if unlink(marker) != 0 {
            log.warning("unable to delete file: \(marker): \(SystemError.current)")
            log.warning("unable to delete \(marker), fsfreeze may not function properly")
        }
        applyCommandFilters()
    }

    /// Better than qemu-ga (`thaw-after`): a freeze that nobody
    /// thaws ends by itself; retried every period while the thaw fails.
    private func armAutoThaw() {
        guard let seconds = config.thawAfter, seconds > 0 else { return }
        let milliseconds = UInt32(clamping: Int64(seconds) * 1000)
        autoThawTimer = GLibSource.timeout(milliseconds: milliseconds) { [unowned self] in
            Fsfreeze.autoThaw(agent: self, seconds: seconds)
            return self.isFrozen
        }
    }

    /// Parses bytes from the host and answers every complete request, in order.
    /// The replies to one chunk of input go out in one write: a host that
    /// pipelines requests costs one system call per chunk, not per request.
    func handleInput(_ bytes: UnsafeRawBufferPointer) {
        var replies: [UInt8] = []
        for output in parser.feed(bytes) {
            // A command without a success response (shutdown, suspend) may
            // end the machine: what was answered before it goes out first.
            if !replies.isEmpty, mayNotReturn(output) {
                host?.send(replies)
                replies = []
            }
            answer(output, into: &replies)
        }
        if !replies.isEmpty { host?.send(replies) }
        afterInput?()
    }

    /// Answers one request or parse error: its response line goes to the end
    /// of `replies`, nothing for a command that answers nothing. (Package
    /// access: the dispatcher fuzzer drives the agent through here.)
    package func answer(_ output: JSONParserOutput, into replies: inout [UInt8]) {
        log.debug("process_event: called")
        switch output {
        case .value(let request):
            log.debug("processing command")
            guard let response = QMPDispatcher.response(to: request, agent: self) else { return }
            sendResponse(response, to: &replies)
        case .error(let description):
            sendResponse(QMPDispatcher.errorResponse(QMPError(description), id: nil), to: &replies)
        }
    }

    private func mayNotReturn(_ output: JSONParserOutput) -> Bool {
        guard case .value(.object(let request)) = output, case .string(let name)? = request["execute"] else { return false }
        return commands.entry(named: name)?.successResponse == false
    }

    /// qemu-ga's send_response: one response line, appended to the replies
    /// that `handleInput` writes. The 0xFF sentinel goes first when
    /// `delimitResponse` is set, and the flag is spent either way.
    func sendResponse(_ response: JSONObject, to replies: inout [UInt8]) {
        let start = replies.count
        if delimitResponse {
            replies.append(0xFF)
            delimitResponse = false
        }
        JSONWriter.append(.object(response), to: &replies)
        replies.append(0x0A)
        log.debug("sending data, count: \(replies.count - start)")
    }

    /// A new host client must not inherit half a message from the last one.
    private func hostDisconnected() {
        parser.reset()
    }
}

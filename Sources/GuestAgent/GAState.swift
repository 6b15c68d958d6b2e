import QMPJSON

/// The agent's process-wide state, as qemu-ga's `GAState`: the JSON parser
/// fed by the channel, the command registry, the log, and the one-shot
/// `delimitResponse` flag of `guest-sync-delimited`.
public final class GAState {
    public let config: GAConfig
    /// The machine the commands read and change (a fixture tree in tests).
    public let system: SystemEnvironment
    public let log: GALog
    public let commands: CommandRegistry
    let persistentState: PersistentState?
    /// True while the guest's filesystems are frozen: only the freeze-safe
    /// commands run, nothing is logged, and stop signals are ignored.
    public private(set) var isFrozen: Bool
    /// Set by `guest-sync-delimited`; `sendResponse` consumes it to put the
    /// 0xFF sentinel before the next response, which is that command's own.
    public var delimitResponse = false
    /// The files opened by guest-file-open.
    let guestFiles = GuestFiles()
    /// The children started by guest-exec.
    lazy var guestProcesses = GuestProcesses(log: log)

    var parser = JSONMessageParser()
    var channel: GAChannel? {
        didSet {
            channel?.onInput = { [unowned self] bytes in self.handleInput(bytes) }
            channel?.onDisconnect = { [unowned self] in self.hostDisconnected() }
        }
    }

    init(
        config: GAConfig = GAConfig(), system: SystemEnvironment = SystemEnvironment(), log: GALog = GALog(),
        commands: CommandRegistry = CommandRegistry(), persistentState: PersistentState? = nil, frozen: Bool = false
    ) {
        self.config = config
        self.system = system
        self.log = log
        self.commands = commands
        self.persistentState = persistentState
        isFrozen = frozen
        applyCommandFilters()
    }

    /// Enables and disables commands from the block and allow lists and the
    /// frozen state, logging each command that ends up disabled.
    func applyCommandFilters() {
        commands.applyFilters(
            blocked: Set(config.blockedRPCs),
            allowed: config.allowedRPCs.isEmpty ? nil : Set(config.allowedRPCs),
            frozen: isFrozen)
        for entry in commands.entries where !commands.isEnabled(entry.name) {
            log.debug("disabling command: \(entry.name)")
        }
    }

    /// Parses bytes from the host and answers every complete request, in order.
    func handleInput(_ bytes: UnsafeRawBufferPointer) {
        for output in parser.feed(bytes) {
            log.debug("process_event: called")
            switch output {
            case .value(let request):
                log.debug("processing command")
                if let response = QMPDispatcher.response(to: request, agent: self) {
                    sendResponse(response)
                }
            case .error(let description):
                sendResponse(QMPDispatcher.errorResponse(QMPError(description), id: nil))
            }
        }
    }

    /// Writes one response line to the host.
    func sendResponse(_ response: JSONObject) {
        let bytes = responseBytes(response)
        log.debug("sending data, count: \(bytes.count)")
        channel?.send(bytes)
    }

    /// The bytes of one response line; the 0xFF sentinel goes first when
    /// `delimitResponse` is set, and the flag is spent either way.
    func responseBytes(_ response: JSONObject) -> [UInt8] {
        var bytes: [UInt8] = []
        if delimitResponse {
            bytes.append(0xFF)
            delimitResponse = false
        }
        JSONWriter.append(.object(response), to: &bytes)
        bytes.append(0x0A)
        return bytes
    }

    /// A new host client must not inherit half a message from the last one.
    private func hostDisconnected() {
        parser.reset()
    }
}

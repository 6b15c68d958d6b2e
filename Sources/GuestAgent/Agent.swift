import CGLib
import Glibc

/// Starts the agent from a command line and runs it until it is told to stop;
/// returns the process exit status.
public enum GuestAgentDaemon {
    public static func main(arguments: [String]) -> Int32 {
        let environment = ["QGA_CONF"].reduce(into: [String: String]()) { found, name in
            found[name] = getenv(name).map { String(cString: $0) }
        }
        switch AgentCommandLine.configure(arguments: arguments, environment: environment) {
        case .exit(let status, let output):
            print(output, terminator: "")
            return status
        case .run(let config):
            return run(config)
        }
    }

    /// qemu-ga's start-up, in the newest order: everything that can fail
    /// (log file, state file, channel) is done before daemonizing, so the
    /// exit status says whether the agent started.
    static func run(_ configuration: GAConfig) -> Int32 {
        // Bulk transfers allocate tens of MiB per request. A fixed mmap
        // threshold (glibc's own moves up to 32 MiB as big blocks are freed)
        // keeps blocks of 2 MiB and more out of the heap, so their memory
        // goes back to the system as soon as they are freed; smaller ones
        // (a 1 MiB transfer's buffers) are reused from the heap, which keeps
        // up to 4 MiB free at its top instead of faulting pages in anew.
        mallopt(M_MMAP_THRESHOLD, 2 << 20)
        mallopt(M_TRIM_THRESHOLD, 4 << 20)
        var config = configuration
        // Socket activation overrides -m and -p (and shows in -D).
        let activation: (method: ChannelMethod, descriptor: Int32)?
        do {
            activation = try SocketActivation.inheritedListener()
        } catch {
            if case .invalidDescriptor = error {
                writeAll(STDERR_FILENO, Array("\(error)\n".utf8))  // QEMU's error_report
            } else {
                GLibLog.critical(error.description)
            }
            return 1
        }
        if let activation {
            config.method = activation.method.rawValue
            config.path = nil
        }
        let method = ChannelMethod(rawValue: config.method ?? ChannelMethod.virtioSerial.rawValue)
        if config.path == nil { config.path = method.flatMap(defaultPath(for:)) }
        guard let path = config.path ?? activation.map({ _ in "" }) else {
            GLibLog.critical("must specify a path for this channel")
            return 1
        }
        if config.dumpConfig {
            print(config.dump(), terminator: "")
            return 0
        }

        let frozenMarker = config.stateDirectory + "/qga.state.isfrozen"
        let frozen = access(frozenMarker, F_OK) == 0
        if frozen {
            GLibLog.warning("previous instance appears to have exited with frozen filesystems. deferring logging/pidfile creation and disabling non-fsfreeze-safe commands until guest-fsfreeze-thaw is issued, or filesystems are manually unfrozen and the file \(frozenMarker) is removed")
        }

        let log = GALog()
        log.verbose = config.verbose
        log.becomeGLibDefaultHandler()
        log.debug("Guest agent version \(qgaInterfaceVersion) started")
        // While frozen nothing is logged, and the log file is opened at thaw.
        log.isEnabled = !frozen
        if let logFile = config.logFile, !frozen {
            do {
                try log.openFile(logFile)
            } catch {
                log.critical("unable to open specified log file: \(error)")
                log.critical("error initializing guest agent")
                return 1
            }
        }

        let persistentState: PersistentState
        do {
            persistentState = try PersistentState.load(directory: config.stateDirectory, create: !frozen)
        } catch {
            error.messages.forEach { log.critical($0) }
            log.critical("failed to load persistent state")
            log.critical("error initializing guest agent")
            return 1
        }

        let agent = GAState(
            config: config, system: SystemEnvironment.current(), log: log, persistentState: persistentState, frozen: frozen)
        if frozen {
            agent.deferredLogFile = config.logFile
            agent.deferredPidFile = config.daemonize ? config.pidFile : nil
        }
        do throws(ChannelError) {
            guard let method else { throw ChannelError("unsupported channel method/type: \(config.method ?? "")") }
            if let activation {
                agent.channel = try GAChannel(method: method, listeningDescriptor: activation.descriptor, log: log)
            } else {
                agent.channel = try GAChannel(method: method, path: path, log: log, retryPath: config.retryPath)
            }
        } catch {
            log.critical(error.description)
            log.critical("failed to create guest agent channel")
            log.critical("failed to initialize guest agent channel")
            return 1
        }

        if config.daemonize {
            agent.pidFile = Daemon.daemonize(pidFilePath: frozen ? nil : config.pidFile, log: log)
        }

        let loop = g_main_loop_new(nil, 0)
        defer { g_main_loop_unref(loop) }
        // The channel failed for good (qemu-ga exits 0 then).
        agent.channel?.onFatalError = { g_main_loop_quit(loop) }
        let stopSignals = [SIGTERM, SIGINT].map { signal in
            GLibSource.unixSignal(signal) {
                // A frozen guest must be thawed by the host first.
                guard !agent.isFrozen else { return }
                log.debug("received signal num \(signal), quitting")
                g_main_loop_quit(loop)
            }
        }
        g_main_loop_run(loop)

        stopSignals.forEach { $0.cancel() }
        agent.channel = nil
        while g_main_context_iteration(nil, 0) != 0 {}
        Fsfreeze.cleanUp(agent: agent)
        agent.pidFile?.remove()
        return 0
    }

    static func defaultPath(for method: ChannelMethod) -> String? {
        switch method {
        case .virtioSerial: "/dev/virtio-ports/org.qemu.guest_agent.0"
        case .isaSerial: "/dev/ttyS0"
        case .unixListen, .vsockListen: nil
        }
    }
}

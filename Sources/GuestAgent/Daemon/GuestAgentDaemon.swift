import CGLib
import Glibc

/// Starts the agent from a command line and runs it until it is told to stop;
/// returns the process exit status. `system` is the machine it manages: the
/// one it runs on (`SystemEnvironment.current()`), or a test's fixture.
package enum GuestAgentDaemon {
    package static func main(arguments: [String], system: SystemEnvironment) -> Int32 {
        let environment = ["QGA_CONF"].reduce(into: [String: String]()) { found, name in
            found[name] = ProcessEnvironment.value(name)
        }
        switch AgentCommandLine.configure(arguments: arguments, environment: environment) {
        case .exit(let status, let output):
            print(output, terminator: "")
            return status
        case .run(let config):
            return run(config, system: system)
        }
    }

    /// qemu-ga's start-up, in the newest order: everything that can fail
    /// (log file, state file, channel) is done before daemonizing, so the
    /// exit status says whether the agent started.
    static func run(_ configuration: GAConfig, system: SystemEnvironment) -> Int32 {
        releaseBulkBuffersEarly()
        do throws(StartupFailed) {
            var config = configuration
            let activation = try inheritedListener()
            if let activation {
                // Socket activation overrides -m and -p (and shows in -D).
                config.method = activation.method.rawValue
                config.path = nil
            }
            let method = ChannelMethod(rawValue: config.method ?? ChannelMethod.virtioSerial.rawValue)
            if config.path == nil { config.path = method.flatMap(defaultPath(for:)) }
            guard let path = config.path ?? activation.map({ _ in "" }) else {
                GLibLog.critical("must specify a path for this channel")
                throw StartupFailed()
            }
            if config.dumpConfig {
                print(config.dump(), terminator: "")
                return 0
            }

            let frozen = startsFrozen(config)
            let log = try openLog(config, frozen: frozen)
            let notifier = SystemdNotifier.fromEnvironment(log: log)
            let agent = GAState(
                config: config, system: system, log: log,
                persistentState: try loadState(config, frozen: frozen, log: log), frozen: frozen)
            if frozen {
                agent.deferredLogFile = config.logFile
                agent.deferredPidFile = config.daemonize ? config.pidFile : nil
            }
            agent.channel = try openChannel(method, path: path, activation: activation, config: config, log: log)
            if config.daemonize {
                agent.pidFile = Daemon.daemonize(pidFilePath: frozen ? nil : config.pidFile, log: log)
            }
            serve(agent, notifier: notifier)
            return 0
        } catch {
            return 1
        }
    }

    /// A start-up step failed; it has said why.
    private struct StartupFailed: Error {}

    /// Bulk transfers allocate tens of MiB per request. A fixed mmap
    /// threshold (glibc's own moves up to 32 MiB as big blocks are freed)
    /// keeps blocks of 2 MiB and more out of the heap, so their memory goes
    /// back to the system as soon as they are freed; smaller ones (a 1 MiB
    /// transfer's buffers) are reused from the heap, which keeps up to 4 MiB
    /// free at its top instead of faulting pages in anew.
    private static func releaseBulkBuffersEarly() {
        mallopt(M_MMAP_THRESHOLD, 2 << 20)
        mallopt(M_TRIM_THRESHOLD, 4 << 20)
    }

    private static func inheritedListener() throws(StartupFailed) -> (method: ChannelMethod, descriptor: Int32)? {
        do {
            return try SocketActivation.inheritedListener()
        } catch {
            if case .invalidDescriptor = error {
                writeAll(STDERR_FILENO, Array("\(error)\n".utf8))  // QEMU's error_report
            } else {
                GLibLog.critical(error.description)
            }
            throw StartupFailed()
        }
    }

    /// Whether a previous instance left filesystems frozen (its marker file).
    private static func startsFrozen(_ config: GAConfig) -> Bool {
        let frozenMarker = config.stateDirectory + "/qga.state.isfrozen"
        guard access(frozenMarker, F_OK) == 0 else { return false }
        GLibLog.warning("previous instance appears to have exited with frozen filesystems. deferring logging/pidfile creation and disabling non-fsfreeze-safe commands until guest-fsfreeze-thaw is issued, or filesystems are manually unfrozen and the file \(frozenMarker) is removed")
        return true
    }

    private static func openLog(_ config: GAConfig, frozen: Bool) throws(StartupFailed) -> GALog {
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
                throw StartupFailed()
            }
        }
        return log
    }

    private static func loadState(_ config: GAConfig, frozen: Bool, log: GALog) throws(StartupFailed) -> PersistentState {
        do {
            return try PersistentState.load(directory: config.stateDirectory, create: !frozen)
        } catch {
            error.messages.forEach { log.critical($0) }
            log.critical("failed to load persistent state")
            log.critical("error initializing guest agent")
            throw StartupFailed()
        }
    }

    private static func openChannel(
        _ method: ChannelMethod?, path: String, activation: (method: ChannelMethod, descriptor: Int32)?,
        config: GAConfig, log: GALog
    ) throws(StartupFailed) -> GAChannel {
        do throws(ChannelError) {
            guard let method else { throw ChannelError("unsupported channel method/type: \(config.method ?? "")") }
            if let activation {
                return try GAChannel(method: method, listeningDescriptor: activation.descriptor, log: log)
            }
            return try GAChannel(method: method, path: path, log: log, retryPath: config.retryPath)
        } catch {
            log.critical(error.description)
            log.critical("failed to create guest agent channel")
            log.critical("failed to initialize guest agent channel")
            throw StartupFailed()
        }
    }

    /// Runs the main loop until SIGTERM or SIGINT (ignored while frozen) or
    /// the channel fails for good (qemu-ga exits 0 then), then cleans up.
    /// Under systemd (`notifier`), says when the channel accepts requests
    /// (now, or once `-r` has opened it), keeps its watchdog fed, and says
    /// when it stops.
    private static func serve(_ agent: GAState, notifier: SystemdNotifier?) {
        let loop = g_main_loop_new(nil, 0)
        defer { g_main_loop_unref(loop) }
        agent.channel?.onFatalError = { g_main_loop_quit(loop) }
        agent.channel?.onReopen = { notifier?.ready() }
        if agent.channel?.isOpen == true { notifier?.ready() }
        let watchdog = notifier?.startWatchdog()
        let stopSignals = [SIGTERM, SIGINT].map { signal in
            GLibSource.unixSignal(signal) {
                // A frozen guest must be thawed by the host first.
                guard !agent.isFrozen else { return }
                agent.log.debug("received signal num \(signal), quitting")
                g_main_loop_quit(loop)
            }
        }
        // Unowned: the agent holds the release, through afterInput.
        let pageRelease = CleanPageRelease(isFrozen: { [unowned agent] in agent.isFrozen })
        agent.afterInput = { pageRelease.hostSpoke() }
        pageRelease.startUpDone()
        g_main_loop_run(loop)

        notifier?.send("STOPPING=1")
        watchdog?.cancel()
        stopSignals.forEach { $0.cancel() }
        agent.channel = nil
        while g_main_context_iteration(nil, 0) != 0 {}
        Fsfreeze.cleanUp(agent: agent)
        agent.pidFile?.remove()
    }

    static func defaultPath(for method: ChannelMethod) -> String? {
        switch method {
        case .virtioSerial: "/dev/virtio-ports/org.qemu.guest_agent.0"
        case .isaSerial: "/dev/ttyS0"
        case .unixListen, .vsockListen: nil
        }
    }
}

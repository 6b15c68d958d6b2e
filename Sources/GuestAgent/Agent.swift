import CGLib
import Glibc

/// Starts the agent from a command line and runs it until it is told to stop;
/// returns the process exit status.
public enum GuestAgentDaemon {
    public static func main(arguments: [String]) -> Int32 {
        switch AgentCommandLine.parse(arguments) {
        case .exit(let status, let output):
            print(output, terminator: "")
            return status
        case .run(let options):
            return run(options)
        }
    }

    static func run(_ options: AgentOptions) -> Int32 {
        // A write to a vanished client must fail with EPIPE, not kill us.
        signal(SIGPIPE, SIG_IGN)

        let log = GALog()
        log.verbose = options.verbose
        // Socket activation overrides -m and -p.
        let activation: (method: ChannelMethod, descriptor: Int32)?
        do {
            activation = try SocketActivation.inheritedListener()
        } catch {
            if case .invalidDescriptor = error {
                writeAll(STDERR_FILENO, Array("\(error)\n".utf8))  // QEMU's error_report
            } else {
                glibCritical(error.description)
            }
            return 1
        }
        let method: ChannelMethod
        let path: String
        if let activation {
            method = activation.method
            path = ""
        } else {
            guard let requested = ChannelMethod(rawValue: options.method) else {
                log.critical("unsupported channel method/type: \(options.method)")
                log.critical("failed to create guest agent channel")
                log.critical("failed to initialize guest agent channel")
                return 1
            }
            guard let requestedPath = options.path ?? defaultPath(for: requested) else {
                glibCritical("must specify a path for this channel")
                return 1
            }
            method = requested
            path = requestedPath
        }

        let agent = GAState(log: log)
        log.debug("Guest agent version \(qgaInterfaceVersion) started")
        do {
            if let activation {
                agent.channel = try GAChannel(method: method, listeningDescriptor: activation.descriptor, log: log)
            } else {
                agent.channel = try GAChannel(method: method, path: path, log: log)
            }
        } catch {
            log.critical(error.description)
            log.critical("failed to create guest agent channel")
            log.critical("failed to initialize guest agent channel")
            return 1
        }

        let loop = g_main_loop_new(nil, 0)
        defer { g_main_loop_unref(loop) }
        // The channel failed for good (qemu-ga exits 0 then).
        agent.channel?.onFatalError = { g_main_loop_quit(loop) }
        let stopSignals = [SIGTERM, SIGINT].map { signal in
            GLibSource.unixSignal(signal) {
                log.debug("received signal num \(signal), quitting")
                g_main_loop_quit(loop)
            }
        }
        g_main_loop_run(loop)

        stopSignals.forEach { $0.cancel() }
        agent.channel = nil
        while g_main_context_iteration(nil, 0) != 0 {}
        return 0
    }

    static func defaultPath(for method: ChannelMethod) -> String? {
        switch method {
        case .virtioSerial: "/dev/virtio-ports/org.qemu.guest_agent.0"
        case .isaSerial: "/dev/ttyS0"
        case .unixListen, .vsockListen: nil
        }
    }

    /// A critical message through GLib's default handler, as qemu-ga reports
    /// errors found before its own log handler is installed.
    static func glibCritical(_ message: String) {
        message.withCString { text in
            withVaList([text]) { g_logv(nil, G_LOG_LEVEL_CRITICAL, "%s", $0) }
        }
    }
}

import CGLib
import Glibc

/// What the command line asks for (`qemu-ga -m -p -t -f -v`).
public struct AgentOptions: Equatable, Sendable {
    /// As given: like qemu-ga, an unknown method is only refused when the
    /// channel is opened.
    public var method = ChannelMethod.virtioSerial.rawValue
    public var path: String?
    public var pidFile = "/var/run/qemu-ga.pid"
    public var stateDirectory = "/var/run"
    public var verbose = false

    public init() {}
}

/// The outcome of reading the command line.
public enum CommandLineAction: Equatable, Sendable {
    case run(AgentOptions)
    /// Print `output` on stdout (and whatever getopt printed on stderr), then
    /// exit with `status`.
    case exit(status: Int32, output: String)
}

/// The command line, read with glibc's getopt_long so that abbreviations,
/// attached arguments and the diagnostics are exactly qemu-ga's.
public enum AgentCommandLine {
    private struct Option {
        let long: String
        let short: Character
        let takesArgument: Bool
    }

    private static let options: [Option] = [
        Option(long: "method", short: "m", takesArgument: true),
        Option(long: "path", short: "p", takesArgument: true),
        Option(long: "pidfile", short: "f", takesArgument: true),
        Option(long: "statedir", short: "t", takesArgument: true),
        Option(long: "verbose", short: "v", takesArgument: false),
        Option(long: "version", short: "V", takesArgument: false),
        Option(long: "help", short: "h", takesArgument: false),
    ]

    public static func parse(_ arguments: [String]) -> CommandLineAction {
        let program = arguments.first ?? "qemu-ga"
        var result = AgentOptions()
        var action: CommandLineAction?
        scan(arguments) { short, argument in
            switch short {
            case "m": result.method = argument!
            case "p": result.path = argument!
            case "f": result.pidFile = argument!
            case "t": result.stateDirectory = argument!
            case "v": result.verbose = true
            case "V": action = .exit(status: 0, output: versionText)
            case "h": action = .exit(status: 0, output: helpText(program: program))
            default: action = .exit(status: 1, output: "Unknown option, try '\(program) --help' for more information.\n")
            }
            return action == nil
        }
        return action ?? .run(result)
    }

    public static var versionText: String {
        "QEMU Guest Agent \(qgaInterfaceVersion)\nswift-qemu-ga \(swiftQemuGaVersion)\n"
    }

    /// Calls `visit` with each option's short letter (`?` for an error) and
    /// argument until it returns false or the options end.
    private static func scan(_ arguments: [String], _ visit: (Character, String?) -> Bool) {
        let cArguments = arguments.map { strdup($0) }
        let longNames = options.map { strdup($0.long) }
        defer {
            cArguments.forEach { free($0) }
            longNames.forEach { free($0) }
        }
        var longOptions = zip(options, longNames).map { option, name in
            CGLib.option(name: name, has_arg: option.takesArgument ? 1 : 0, flag: nil,
                         val: Int32(option.short.asciiValue!))
        }
        longOptions.append(CGLib.option(name: nil, has_arg: 0, flag: nil, val: 0))
        let shortOptions = options.map { "\($0.short)" + ($0.takesArgument ? ":" : "") }.joined()
        var argv = cArguments + [nil]
        cglib_reset_getopt()
        while true {
            let code = getopt_long(Int32(arguments.count), &argv, shortOptions, longOptions, nil)
            if code == -1 { return }
            let argument = cglib_optarg().map { String(cString: $0) }
            if !visit(Character(Unicode.Scalar(UInt8(truncatingIfNeeded: code))), argument) { return }
        }
    }

    static func helpText(program: String) -> String {
        """
        Usage: \(program) [-m <method> -p <path>] [<options>]
        QEMU Guest Agent \(qgaInterfaceVersion) (swift-qemu-ga \(swiftQemuGaVersion))

          -m, --method      how to reach the host: virtio-serial (the default),
                            isa-serial, unix-listen or vsock-listen
          -p, --path        device or socket path (virtio-serial default:
                            /dev/virtio-ports/org.qemu.guest_agent.0,
                            isa-serial default: /dev/ttyS0);
                            vsock-listen addresses are written <cid>:<port>
          -f, --pidfile     pid file, used with --daemonize
                            (default is /var/run/qemu-ga.pid)
          -t, --statedir    directory for the agent's state files
                            (absolute paths only, default is /var/run)
          -v, --verbose     log everything, debug messages included
          -V, --version     print the version and exit
          -h, --help        print this help and exit

        swift-qemu-ga answers the QEMU Guest Agent protocol of QEMU \(qgaInterfaceVersion).

        """
    }
}

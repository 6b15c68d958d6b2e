import CGLib
import Glibc

/// The outcome of reading the configuration and the command line.
package enum StartupAction: Equatable, Sendable {
    case run(GAConfig)
    /// Print `output` on stdout, then exit with `status`. Diagnostics were
    /// already printed on stderr, as getopt and GLib print them.
    case exit(status: Int32, output: String)
}

/// qemu-ga's command line, read with glibc's getopt_long so that
/// abbreviations, optional arguments and diagnostics are exactly qemu-ga's.
package enum AgentCommandLine {
    private enum Argument { case none, required, optional }

    private struct Option {
        let long: String
        /// The letter; for a long-only option a character beyond ASCII that
        /// only serves as getopt's value.
        let short: Character
        let argument: Argument

        var isLongOnly: Bool { !short.isASCII }
        var code: Int32 { Int32(short.unicodeScalars.first!.value) }
    }

    // Our own options are long-only, so that no letter qemu-ga may take one
    // day can clash: each gets getopt's value 0x100 + its index in
    // `GAConfig.ownSettings`.
    private static let firstOwnCode: UInt32 = 0x100

    private static let options: [Option] = [
        Option(long: "help", short: "h", argument: .none),
        Option(long: "version", short: "V", argument: .none),
        Option(long: "config", short: "c", argument: .required),
        Option(long: "dump-conf", short: "D", argument: .none),
        Option(long: "logfile", short: "l", argument: .required),
        Option(long: "pidfile", short: "f", argument: .required),
        Option(long: "fsfreeze-hook", short: "F", argument: .optional),
        Option(long: "verbose", short: "v", argument: .none),
        Option(long: "method", short: "m", argument: .required),
        Option(long: "path", short: "p", argument: .required),
        Option(long: "daemonize", short: "d", argument: .none),
        Option(long: "block-rpcs", short: "b", argument: .required),
        Option(long: "allow-rpcs", short: "a", argument: .required),
        Option(long: "statedir", short: "t", argument: .required),
        Option(long: "retry-path", short: "r", argument: .none),
    ] + GAConfig.ownSettings.indices.map { index in
        Option(long: GAConfig.ownSettings[index].key, short: Character(Unicode.Scalar(firstOwnCode + UInt32(index))!),
               argument: .required)
    }

    /// Reads the config file (`-c`, else `$QGA_CONF`, else
    /// /etc/qemu/qemu-ga.conf), then the command line on top of it.
    package static func configure(arguments: [String], environment: [String: String]) -> StartupAction {
        let program = arguments.first ?? "qemu-ga"
        var explicitPath: String?
        scan(arguments, printErrors: false) { short, argument in
            if short == "c" { explicitPath = argument }
            return true
        }
        var config = GAConfig()
        let path = explicitPath ?? environment["QGA_CONF"] ?? GAConfig.defaultConfigPath
        do {
            let file = KeyFile()
            try file.load(path: path)
            try config.apply(file)
        } catch where error.isMissingFile && explicitPath == nil {
            // No config file is the normal case: Debian ships none.
        } catch {
            GLibLog.critical("error loading configuration from path: \(path), \(error)")
            return .exit(status: 1, output: "")
        }

        var action: StartupAction?
        scan(arguments, printErrors: true) { short, argument in
            switch short {
            case "c": break
            case "m": config.method = argument!
            case "p": config.path = argument!
            case "l": config.logFile = argument!
            case "f": config.pidFile = argument!
            case "F": config.fsfreezeHook = argument ?? GAConfig.defaultFsfreezeHook
            case "t": config.stateDirectory = argument!
            case "v": config.verbose = true
            case "d": config.daemonize = true
            case "D": config.dumpConfig = true
            case "r": config.retryPath = true
            case "b", "a":
                if argument == "help" || argument == "?" {
                    action = .exit(status: 0, output: registeredCommands.map { $0.name + "\n" }.joined())
                } else if short == "b" {
                    GAConfig.appendList(argument!, to: &config.blockedRPCs)
                } else {
                    GAConfig.appendList(argument!, to: &config.allowedRPCs)
                }
            case "V": action = .exit(status: 0, output: versionText)
            case "h": action = .exit(status: 0, output: helpText(program: program))
            default:
                let index = Int(short.unicodeScalars.first!.value) - Int(firstOwnCode)
                guard GAConfig.ownSettings.indices.contains(index) else {
                    action = .exit(status: 1, output: "Unknown option, try '\(program) --help' for more information.\n")
                    break
                }
                let setting = GAConfig.ownSettings[index]
                switch setting.value {
                case .number(let field, let unit):
                    guard let number = GAConfig.number(argument!) else {
                        writeAll(STDERR_FILENO, Array("\(program): --\(setting.key) takes a number of \(unit), not '\(argument!)'\n".utf8))
                        action = .exit(status: 1, output: "")
                        break
                    }
                    field.set(&config, number)
                case .list(let field):
                    field.append(argument!, to: &config)
                }
            }
            return action == nil
        }
        return action ?? .run(config)
    }

    package static var versionText: String {
        "QEMU Guest Agent \(qgaInterfaceVersion)\nswift-qemu-ga \(swiftQemuGaVersion)\n"
    }

    /// Calls `visit` with each option's short letter (`?` for an error) and
    /// argument until it returns false or the options end.
    private static func scan(_ arguments: [String], printErrors: Bool, _ visit: (Character, String?) -> Bool) {
        // getopt's tables in plain buffers: arrays of C pointers or structs
        // would each instantiate generic metadata, a sizeable part of the
        // agent's start-up.
        let argv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: arguments.count + 1)
        let longOptions = UnsafeMutablePointer<CGLib.option>.allocate(capacity: options.count + 1)
        for (index, argument) in arguments.enumerated() { argv[index] = strdup(argument) }
        argv[arguments.count] = nil
        // Appended one by one: joined() is generic in the standard library,
        // and its first call costs 100k instructions of metadata look-ups.
        var shortOptions = ""
        for (index, option) in options.enumerated() {
            let hasArgument: Int32 = switch option.argument {
            case .none: no_argument
            case .required: required_argument
            case .optional: optional_argument
            }
            longOptions[index] = CGLib.option(name: strdup(option.long), has_arg: hasArgument, flag: nil, val: option.code)
            guard !option.isLongOnly else { continue }
            shortOptions.append(option.short)
            shortOptions += String(repeating: ":", count: Int(hasArgument))
        }
        longOptions[options.count] = CGLib.option(name: nil, has_arg: 0, flag: nil, val: 0)
        defer {
            for index in 0..<arguments.count { free(argv[index]) }
            for index in 0..<options.count { free(UnsafeMutablePointer(mutating: longOptions[index].name)) }
            argv.deallocate()
            longOptions.deallocate()
        }
        cglib_reset_getopt(printErrors ? 1 : 0)
        while true {
            let code = getopt_long(Int32(arguments.count), argv, shortOptions, longOptions, nil)
            if code == -1 { return }
            let argument = cglib_optarg().map { String(cString: $0) }
            if !visit(Character(Unicode.Scalar(UInt32(code)) ?? "?"), argument) { return }
        }
    }

    static func helpText(program: String) -> String {
        """
        Usage: \(program) [-m <method> -p <path>] [<options>]
        QEMU Guest Agent \(qgaInterfaceVersion) (swift-qemu-ga \(swiftQemuGaVersion))

          -c, --config      configuration file to read instead of the default
                            (\(GAConfig.defaultConfigPath)); it must then exist
          -m, --method      how to reach the host: virtio-serial (the default),
                            isa-serial, unix-listen or vsock-listen
          -p, --path        device or socket path (virtio-serial default:
                            /dev/virtio-ports/org.qemu.guest_agent.0,
                            isa-serial default: /dev/ttyS0);
                            vsock-listen addresses are written <cid>:<port>
          -l, --logfile     append log lines to this file instead of stderr
          -f, --pidfile     pid file written with --daemonize
                            (default is /var/run/qemu-ga.pid)
          -F, --fsfreeze-hook
                            run a hook with 'freeze' before freezing and with
                            'thaw' after thawing filesystems; give its path
                            attached (-F/path or --fsfreeze-hook=/path), the
                            default is \(GAConfig.defaultFsfreezeHook)
          -t, --statedir    directory for the agent's state files
                            (absolute paths only, default is /var/run)
          -v, --verbose     log everything, debug messages included
          -V, --version     print the version and exit
          -d, --daemonize   run in the background once the channel is open
          -b, --block-rpcs  commands to disable, separated by commas
                            (use "--block-rpcs=help" to list the commands)
          -a, --allow-rpcs  commands to allow, separated by commas; all others
                            are disabled (use "--allow-rpcs=help" to list them)
          -D, --dump-conf   print the effective configuration in the config
                            file's format and exit
          -r, --retry-path  keep re-opening the channel when it fails or
                            disappears (driver reload, device hot-unplug)
              --thaw-after=SECONDS
                            thaw the filesystems when no guest-fsfreeze-thaw
                            came SECONDS after a freeze (default 0: never)
              --kill-hook-after=SECONDS
                            kill an fsfreeze hook still running after SECONDS;
                            a freeze then fails with everything thawed
                            (default 0: wait for the hook)
              --exec-output-budget=MiB
                            guest-exec output kept for the host, all children
                            together; the rest is discarded and marked
                            truncated (default \(GAConfig.defaultExecOutputBudget), 0: no limit)
              --exec-timeout=SECONDS
                            kill (SIGKILL) a guest-exec child still running
                            after SECONDS (default 0: no limit)
              --exclude-interfaces=LIST
                            leave the interfaces whose names match one of
                            these fnmatch patterns (veth*,docker?) out of
                            guest-network-get-interfaces
              --exec-allow=LIST
                            guest-exec runs only programs whose canonical
                            path (found through PATH, symlinks resolved)
                            matches one of these fnmatch patterns, where *
                            also matches / (default: every program)
              --open-allow=LIST
                            guest-file-open opens or creates only files whose
                            canonical path matches one of these patterns
                            (default: every file)
                            Lists: items separated by ',' or ';'; each
                            option given adds to its list
          -h, --help        print this help and exit

        swift-qemu-ga answers the QEMU Guest Agent protocol of QEMU \(qgaInterfaceVersion).

        """
    }
}

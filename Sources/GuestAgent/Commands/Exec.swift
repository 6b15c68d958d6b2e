import QMPJSON

// guest-exec and guest-exec-status. Children run from the main loop: a child
// watch reaps each one, pipe watches read its output and feed its input, and
// the agent keeps answering meanwhile.

/// GuestExecCaptureOutputMode.
enum GuestExecCaptureOutputMode: String, QAPIEnum {
    case none, stdout, stderr, separated, merged
}

/// GuestExecCaptureOutput: `true` (separated), `false` (none) or a mode.
nonisolated enum GuestExecCaptureOutput: QAPIAlternate {
    case flag(Bool)
    case mode(GuestExecCaptureOutputMode)

    static let qapiTypeName = "GuestExecCaptureOutput"

    static func accepts(_ value: JSONValue) -> Bool {
        switch value {
        case .bool, .string: true
        default: false
        }
    }

    init(alternateFrom decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if case .bool(let flag) = decoder.qapiValue {
            self = .flag(flag)
        } else {
            self = .mode(try container.decode(GuestExecCaptureOutputMode.self))
        }
    }

    var mode: GuestExecCaptureOutputMode {
        switch self {
        case .flag(let flag): flag ? .separated : .none
        case .mode(let mode): mode
        }
    }
}

/// `guest-exec`: starts a program and returns its pid at once.
struct GuestExec: @MainActor GuestAgentCommand {
    static let name = "guest-exec"

    struct Arguments: Decodable {
        let path: String
        let arg: [String]?
        let env: [String]?
        let inputData: String?
        let captureOutput: GuestExecCaptureOutput?

        enum CodingKeys: String, CodingKey {
            case path, arg, env
            case inputData = "input-data"
            case captureOutput = "capture-output"
        }
    }

    struct Result: Encodable { let pid: Int64 }

    static func run(_ arguments: Arguments, agent: GAState) throws(QMPError) -> Result {
        var input: [UInt8]?
        if let inputData = arguments.inputData {
            do {
                input = try Base64.decode(inputData)
            } catch {
                throw QMPError("\(error)")
            }
        }
        let argv = [arguments.path] + (arguments.arg ?? [])
        agent.log.syslog("guest-exec called: \"\(argv.joined(separator: " "))\"")
        let (stdout, stderr): (ExecChild.Output, ExecChild.Output) =
            switch arguments.captureOutput?.mode ?? .none {
            case .none: (.devNull, .devNull)
            case .stdout: (.pipe, .devNull)
            case .stderr: (.devNull, .pipe)
            case .separated: (.pipe, .pipe)
            case .merged: (.pipe, .stdout)
            }
        // With exec-allow, the file that was checked is the one run: no
        // second PATH search.
        let program = try agent.config.execAllow.map { patterns throws(QMPError) in
            try allowedProgram(arguments.path, environment: arguments.env, patterns, log: agent.log)
        }
        let child: ExecChild.Started
        do {
            child = try ExecChild.spawn(argv: argv, program: program, environment: arguments.env, stdinPipe: input != nil,
                                           stdout: stdout, stderr: stderr)
        } catch {
            throw QMPError("Guest agent command failed, error was '\(error.message)'")
        }
        let process = agent.guestProcesses.add(child, path: arguments.path, input: input)
        return Result(pid: Int64(process.pid))
    }
}

extension GuestExec {
    /// Beyond qemu-ga (`exec-allow`): the canonical path of the program
    /// when one of `patterns` matches it; else the refusal.
    private static func allowedProgram(
        _ path: String, environment: [String]?, _ patterns: [String], log: GALog
    ) throws(QMPError) -> String {
        let reason: String
        do {
            let program = try ExecAllow.canonicalProgram(path, environment: environment)
            if anyPatternMatches(patterns, program) { return program }
            reason = "is '\(program)', which exec-allow does not allow"
        } catch {
            reason = "cannot be found (\(error))"
        }
        throw policyRefusal(name, "Program", path, by: "exec-allow", reason, log: log)
    }
}

/// `guest-exec-status`: `exited: false` while the child runs or its output
/// is still coming; then its exit and output, once (the record goes).
struct GuestExecStatus: @MainActor GuestAgentCommand {
    static let name = "guest-exec-status"

    struct Arguments: Decodable { let pid: Int64 }

    struct Result: Encodable {
        var exited: Bool
        var exitcode: Int64?
        var signal: Int64?
        var outData: String?
        var errData: String?
        var outTruncated: Bool?
        var errTruncated: Bool?

        enum CodingKeys: String, CodingKey {
            case exited, exitcode, signal
            case outData = "out-data"
            case errData = "err-data"
            case outTruncated = "out-truncated"
            case errTruncated = "err-truncated"
        }
    }

    static func run(_ arguments: Arguments, agent: GAState) throws(QMPError) -> Result {
        agent.log.syslog("guest-exec-status called, pid: \(UInt32(truncatingIfNeeded: arguments.pid))")
        let processes = agent.guestProcesses
        guard let process = processes.find(arguments.pid) else { throw QMPError("Invalid parameter 'pid'") }
        var result = Result(exited: process.hasExited)
        guard result.exited, let status = process.status else { return result }
        // The wait status: exit code in bits 8-15 when the low 7 bits are 0,
        // else the terminating signal in those bits.
        let signal = status & 0x7F
        if signal == 0 {
            result.exitcode = Int64((status >> 8) & 0xFF)
        } else if signal != 0x7F {
            result.signal = Int64(signal)
        }
        // As qemu-ga, data and flag only for a stream that gave something;
        // also when the budget left nothing of it to keep.
        func report(_ capture: GuestProcesses.Capture?) -> (String?, Bool?) {
            guard let capture, capture.count > 0 || capture.truncated else { return (nil, nil) }
            return (capture.base64(), capture.truncated)
        }
        (result.outData, result.outTruncated) = report(process.stdout)
        (result.errData, result.errTruncated) = report(process.stderr)
        processes.remove(process)
        return result
    }
}

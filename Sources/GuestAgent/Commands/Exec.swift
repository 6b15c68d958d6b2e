import CGLib
import QMPJSON

// guest-exec and guest-exec-status (commands.md §10.1-10.2). Children run
// from the main loop: a child watch reaps each one, pipe watches read its
// output and feed its input, and the agent keeps answering meanwhile.

/// The children started by guest-exec whose exit nobody has been told yet.
///
/// Better than qemu-ga 7.2, which keeps such records forever: at most
/// `finishedLimit` records of finished children wait to be asked about;
/// past that the oldest finished ones are forgotten (a later
/// guest-exec-status for them gets the unknown-pid error). Running
/// children are never forgotten. And the output they keep is bounded by
/// one budget for all of them (`exec-output-budget`): what does not fit is
/// read and discarded as past the per-stream limit, so no child is ever
/// blocked, and the host's polls give the memory back.
final class GuestProcesses {
    /// Output kept per stream; the rest is read and thrown away.
    static let captureLimit = 16 << 20
    static let defaultFinishedLimit = 1024
    /// One read(2) per wake-up, at most this much.
    private static let readSize = 64 << 10

    /// One captured output stream.
    final class Capture {
        /// What was kept, in pieces allocated once at their final size
        /// (256 bytes, doubling up to 64 KiB): growing never copies what is
        /// kept, only the last piece has room left, and the memory held is
        /// what the budget counts (an array growing by doubling would hold
        /// up to twice what it keeps).
        private var pieces: [[UInt8]] = []
        private(set) var count = 0
        /// The pieces' sizes: what this stream holds of the budget.
        private(set) var reserved = 0
        var truncated = false
        var pipe: PipeEnd?
        var isClosed: Bool { pipe == nil }
        init(_ pipe: PipeEnd) { self.pipe = pipe }

        /// Piece n holds 256 << n bytes, up to 64 KiB.
        private static func pieceSize(_ index: Int) -> Int { 256 << min(index, 8) }

        /// Keeps what fits of `bytes` under the stream's limit, taking new
        /// pieces out of `budget`; returns how many bytes were kept.
        func keep(_ bytes: UnsafeRawBufferPointer, budget: inout Int) -> Int {
            var kept = 0
            while kept < bytes.count {
                if reserved == count {
                    let size = min(Self.pieceSize(pieces.count), budget, GuestProcesses.captureLimit - count)
                    guard size > 0 else { break }
                    pieces.append([])
                    pieces[pieces.count - 1].reserveCapacity(size)
                    reserved += size
                    budget -= size
                }
                let length = min(reserved - count, bytes.count - kept)
                pieces[pieces.count - 1].append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[kept..<kept + length]))
                count += length
                kept += length
            }
            return kept
        }

        /// The bytes kept, in base64, written straight into the string.
        func base64() -> String {
            Base64.encode(reading: count) { storage in
                var offset = 0
                for piece in pieces {
                    piece.withUnsafeBytes { (storage.baseAddress! + offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                    offset += piece.count
                }
                return offset
            }
        }
    }

    final class Process {
        let pid: pid_t
        /// The wait status once reaped.
        var status: Int32?
        let stdout: Capture?
        let stderr: Capture?
        var stdin: PipeEnd?
        var childWatch: GLibSource?
        /// Output was discarded for the budget (said once in syslog).
        var overBudget = false

        init(pid: pid_t, stdout: Capture?, stderr: Capture?, stdin: PipeEnd?) {
            self.pid = pid
            self.stdout = stdout
            self.stderr = stderr
            self.stdin = stdin
        }

        var captures: [Capture] { [stdout, stderr].compactMap { $0 } }

        /// Reaped, and every captured stream has reached its end.
        var hasExited: Bool { status != nil && stdout?.isClosed != false && stderr?.isClosed != false }

        /// Closes everything still open (for a record that is dropped).
        func close() {
            childWatch?.cancel()
            stdin?.close()
            stdout?.pipe?.close()
            stderr?.pipe?.close()
        }
    }

    let finishedLimit: Int
    /// `exec-output-budget` in bytes (nil: unbounded), and what is left of it.
    let outputBudget: Int?
    private(set) var budgetLeft: Int
    private let log: GALog
    /// In start order, as qemu-ga searches them (a reused pid finds the older record).
    private var processes: [Process] = []
    /// The exited ones nobody has been told about, oldest first.
    private var finished: [Process] = []
    /// Each read lands here first; what is kept is copied into its stream.
    private var scratch = [UInt8](repeating: 0, count: readSize)

    init(log: GALog, finishedLimit: Int = defaultFinishedLimit, outputBudget: Int? = GAConfig().execOutputBudgetBytes) {
        self.log = log
        self.finishedLimit = finishedLimit
        self.outputBudget = outputBudget
        budgetLeft = outputBudget ?? .max
    }

    func find(_ pid: Int64) -> Process? { processes.first { Int64($0.pid) == pid } }

    /// Forgets a record (its exit reported, or dropped by the record cap),
    /// giving its output's memory back to the budget.
    func remove(_ process: Process) {
        processes.removeAll { $0 === process }
        finished.removeAll { $0 === process }
        process.close()
        for capture in process.captures { budgetLeft += capture.reserved }
    }

    /// Starts watching a child that was just spawned.
    func add(_ child: ExecChild.Started, input: [UInt8]?) -> Process {
        let process = Process(pid: child.pid, stdout: child.stdout.map(Capture.init),
                               stderr: child.stderr.map(Capture.init), stdin: child.stdin)
        processes.append(process)
        process.childWatch = GLibSource.childWatch(child.pid) { [unowned self, unowned process] status in
            log.debug("guest_exec_child_watch called, pid: \(process.pid), status: \(UInt32(bitPattern: status))")
            process.status = status
            process.childWatch = nil
            noteProgress(process)
        }
        for capture in process.captures {
            capture.pipe?.watch(ioCondition(G_IO_IN, G_IO_HUP, G_IO_ERR)) { [unowned self, unowned process] condition in
                readOutput(capture, of: process, condition)
                if capture.isClosed { noteProgress(process) }
                return !capture.isClosed
            }
        }
        if let stdin = process.stdin, let input {
            feed(stdin, input, of: process)
        }
        return process
    }

    /// Reads what one wake-up offers and keeps what the stream's limit and
    /// the budget allow; the rest goes into the void.
    private func readOutput(_ capture: Capture, of process: Process, _ condition: GIOCondition) {
        guard let pipe = capture.pipe else { return }
        // A hang-up with nothing left to read is the end.
        if !condition.contains(G_IO_IN) {
            capture.pipe = nil
            pipe.close()
            return
        }
        switch scratch.withUnsafeMutableBytes({ pipe.read(into: $0) }) {
        case .done(let count):
            let kept = scratch.withUnsafeBytes { capture.keep(UnsafeRawBufferPointer(rebasing: $0.prefix(count)), budget: &budgetLeft) }
            guard kept < count else { break }
            capture.truncated = true
            if capture.count < Self.captureLimit, !process.overBudget, let outputBudget {
                process.overBudget = true
                log.syslog("exec-output-budget (\(outputBudget >> 20) MiB) is full: discarding output of guest-exec child \(process.pid)")
            }
        case .wouldBlock: break
        case .end, .failed:
            capture.pipe = nil
            pipe.close()
        }
    }

    /// Writes the input as the child takes it, then closes its stdin.
    private func feed(_ stdin: PipeEnd, _ input: [UInt8], of process: Process) {
        var offset = 0
        stdin.watch(ioCondition(G_IO_OUT, G_IO_ERR, G_IO_HUP)) { [unowned process, log] _ in
            while offset < input.count {
                switch stdin.write(input, from: offset) {
                case .done(let count):
                    offset += count
                    continue
                case .wouldBlock:
                    return true
                case .failed(let error):
                    log.warning("qga: i/o error writing to input_data channel: \(error)")
                case .end:
                    break
                }
                break
            }
            process.stdin = nil
            stdin.close()
            return false
        }
    }

    /// A child was reaped or one of its streams ended: once it has exited,
    /// it joins the finished records, and the oldest of those beyond the
    /// limit are forgotten.
    private func noteProgress(_ process: Process) {
        guard process.hasExited, !finished.contains(where: { $0 === process }) else { return }
        finished.append(process)
        while finished.count > finishedLimit {
            let oldest = finished[0]
            log.debug("forgetting the unreported exit of guest-exec child \(oldest.pid)")
            remove(oldest)
        }
    }
}

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
        let child: ExecChild.Started
        do {
            child = try ExecChild.spawn(argv: argv, environment: arguments.env, stdinPipe: input != nil,
                                           stdout: stdout, stderr: stderr)
        } catch {
            throw QMPError("Guest agent command failed, error was '\(error.message)'")
        }
        let process = agent.guestProcesses.add(child, input: input)
        return Result(pid: Int64(process.pid))
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

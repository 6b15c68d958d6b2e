import CGLib
import FuzzingSupport
import Glibc
import GuestAgent
import QMPJSON

/// libFuzzer target for the parser and the dispatcher with every registered
/// command, on a fixture machine (see `FixtureMachine` for how each command
/// is kept off the real one). Each input is parsed as the agent parses host
/// input; each request is answered through the agent's own reply path
/// (`GAState.answer(_:into:)`). Properties checked besides "no crash, no memory
/// error":
/// - every request gets exactly one reply line, except a command that
///   answers nothing on success (shutdown, suspend);
/// - the reply is one JSON object that our parser reads back as such, with
///   `return` or `error` (class and text), and the request's `id` if it had one;
/// - the raw 0xFF only ever starts the reply to guest-sync-delimited.
/// Structured mutations come from `RequestMutator`.
@_cdecl("LLVMFuzzerTestOneInput")
public nonisolated func fuzzDispatcher(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    // libFuzzer calls on the main thread.
    nonisolated(unsafe) let input = UnsafeRawBufferPointer(start: data, count: size)
    MainActor.assumeIsolated { DispatcherFuzzer.shared.run(input) }
    return 0
}

@MainActor
final class DispatcherFuzzer {
    static let shared = DispatcherFuzzer()

    let machine = FixtureMachine()
    var agent: GAState { machine.agent }
    /// Command names, for the mutator.
    lazy var commandNames = agent.commands.entries.map(\.name)

    private init() {
        atexit { MainActor.assumeIsolated { DispatcherFuzzer.shared.machine.remove() } }
    }

    func run(_ input: UnsafeRawBufferPointer) {
        var parser = JSONMessageParser()
        var session = Session()
        for output in parser.feed(input) {
            var request: JSONValue?
            if case .value(let value) = output { request = session.renumber(machine.confine(value), agent: agent) }
            var reply: [UInt8] = []
            agent.answer(request.map { .value($0) } ?? output, into: &reply)
            if let (command, result) = check(reply, for: request) { session.note(command, result) }
        }
        // Children of guest-exec are fed, read and reaped by the main loop.
        while g_main_context_iteration(nil, 0) != 0 {}
        // Handles must not pile up across inputs (every open takes a descriptor).
        for handle in session.handles {
            var reply: [UInt8] = []
            agent.answer(.value(.object(JSONObject([
                "execute": .string("guest-file-close"), "arguments": .object(JSONObject(["handle": .int(handle)])),
            ]))), into: &reply)
        }
    }

    /// Checks one reply (empty: none); returns the command and its `return` value.
    private func check(_ reply: [UInt8], for request: JSONValue?) -> (String, JSONValue)? {
        let command: CommandEntry? = {
            guard case .object(let object)? = request, case .string(let name)? = object["execute"] else { return nil }
            return agent.commands.entry(named: name)
        }()
        guard !reply.isEmpty else {
            precondition(command?.successResponse == false, "no reply to \(String(describing: request))")
            return nil
        }
        precondition(reply.last == 0x0A && reply.dropLast().firstIndex(of: 0x0A) == nil, "not one line: \(reply)")
        let delimited = reply.first == 0xFF
        precondition(!reply.dropFirst().contains(0xFF), "a raw 0xFF inside a reply")
        // An id with a number beyond a double's range is echoed as `inf`,
        // byte for byte as qemu-ga 7.2 does (not JSON): read such a reply
        // with 0 for inf.
        var finiteID = true
        if case .object(let object)? = request, let id = object["id"] { finiteID = id.isFinite }
        var parser = JSONMessageParser()
        let outputs = parser.feed(finiteID ? reply : Self.replacingInfinities(reply))
        guard outputs.count == 1, case .value(.object(let response)) = outputs[0] else {
            preconditionFailure("reply does not read back as one object: \(String(decoding: reply, as: UTF8.self))")
        }
        let keys = Set(response.keys)
        precondition(keys == ["return"] || keys == ["error"] || keys == ["return", "id"] || keys == ["error", "id"],
                     "reply members \(response.keys)")
        if case .object(let object)? = request, finiteID {
            precondition(response["id"]?.normalized == object["id"]?.normalized, "id not echoed")
        }
        if case .object(let error)? = response["error"] {
            precondition(Set(error.keys) == ["class", "desc"], "error members \(error.keys)")
            guard case .string(let errorClass)? = error["class"], case .string? = error["desc"],
                  errorClass == "GenericError" || errorClass == "CommandNotFound"
            else { preconditionFailure("error \(error)") }
            precondition(!delimited || command?.name == "guest-sync-delimited", "0xFF before an error")
            return nil
        }
        precondition(response["return"] != nil, "neither return nor error")
        precondition(!delimited || command?.name == "guest-sync-delimited", "0xFF before a reply")
        if command?.name == "guest-sync-delimited" { precondition(delimited, "guest-sync-delimited without 0xFF") }
        return command.flatMap { command in response["return"].map { (command.name, $0) } }
    }

    private static func replacingInfinities(_ bytes: [UInt8]) -> [UInt8] {
        var result: [UInt8] = []
        var index = 0
        while index < bytes.count {
            if bytes[index...].starts(with: "inf".utf8) {
                result.append(UInt8(ascii: "0"))
                index += 3
            } else {
                result.append(bytes[index])
                index += 1
            }
        }
        return result
    }
}

/// What one input's requests opened and started. An input's i-th
/// guest-file-open is handle 1000+i and its i-th guest-exec pid i+1, so that
/// its later requests can use them (the real numbers depend on the inputs
/// run before it).
@MainActor
struct Session {
    private(set) var handles: [Int64] = []
    private var pids: [Int64] = []

    mutating func note(_ command: String, _ result: JSONValue) {
        switch (command, result) {
        case ("guest-file-open", .int(let handle)): handles.append(handle)
        case ("guest-exec", .object(let object)): if case .int(let pid)? = object["pid"] { pids.append(pid) }
        default: break
        }
    }

    func renumber(_ request: JSONValue, agent: GAState) -> JSONValue {
        request.rewritingArguments(for: agent.commands) { command, arguments in
            if command.hasPrefix("guest-file-"), case .int(let number)? = arguments["handle"],
               number >= 1000, number - 1000 < handles.count {
                arguments["handle"] = .int(handles[Int(number - 1000)])
            } else if command == "guest-exec-status", case .int(let number)? = arguments["pid"], number >= 1,
                      number <= pids.count {
                let pid = pids[Int(number - 1)]
                arguments["pid"] = .int(pid)
                Self.awaitExit(pid_t(truncatingIfNeeded: pid))
            } else {
                return false
            }
            return true
        }
    }

    /// Runs the main loop until the child has exited and the agent has seen
    /// the end of it (at most 5 s), so that guest-exec-status finds it done.
    private static func awaitExit(_ pid: pid_t) {
        var exited = false
        var quiet = 0
        for _ in 0..<5000 where quiet < 3 {
            if g_main_context_iteration(nil, 0) != 0 {
                quiet = 0
                continue
            }
            if !exited {
                var info = siginfo_t()
                // Not reaped here: the agent's child watch does that.
                exited = waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0
                    || info._sifields._sigchld.si_pid == pid
            }
            if exited { quiet += 1 }
            usleep(1000)
        }
    }
}

extension JSONValue {
    /// The request with its `arguments` object changed by `rewrite`, which
    /// gets the command's name as the dispatcher matches it
    /// (`CommandRegistry.entry(named:)`) and returns false to leave the
    /// request as it is. Anything but a request for a registered command
    /// with an arguments object is left as it is.
    @MainActor
    func rewritingArguments(for commands: CommandRegistry, _ rewrite: (String, inout JSONObject) -> Bool) -> JSONValue {
        guard case .object(var object) = self, case .string(let name)? = object["execute"],
              let command = commands.entry(named: name)?.name,
              case .object(var arguments)? = object["arguments"],
              rewrite(command, &arguments)
        else { return self }
        object["arguments"] = .object(arguments)
        return .object(object)
    }

    /// The value as it reads back after QEMU printed it: objects in
    /// another member order (QEMU's hash order), and a double with an
    /// integral value as an integer (`%.17g` prints 2.0 as `2`). So: members
    /// sorted by key, every number a double.
    var normalized: JSONValue {
        switch self {
        case .int(let value): .double(Double(value))
        case .uint(let value): .double(Double(value))
        case .array(let array): .array(array.map(\.normalized))
        case .object(let object):
            .object(object.members.sorted { Array($0.key.utf8).lexicographicallyPrecedes($1.key.utf8) }
                .reduce(into: JSONObject()) { $0.appendUnchecked(key: $1.key, value: $1.value.normalized) })
        default: self
        }
    }

    /// False when a number in it is infinite (QEMU reads 1e999 as inf).
    var isFinite: Bool {
        switch self {
        case .double(let value): value.isFinite
        case .array(let array): array.allSatisfy(\.isFinite)
        case .object(let object): object.members.allSatisfy(\.value.isFinite)
        default: true
        }
    }
}

#if FUZZING
@_cdecl("fuzz_dispatcher_main")
nonisolated func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzDispatcher)
}
#else
@main struct ReplayCorpus {
    static func main() { replayCorpus(CommandLine.arguments.dropFirst(), fuzzDispatcher) }
}
#endif

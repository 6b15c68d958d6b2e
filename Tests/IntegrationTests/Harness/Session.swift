#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Testing

/// One client of one agent for command sequences. `$DIR` in a request
/// stands for the agent's directory, and the directory in a reply is
/// written back as `$DIR`, so that the transcripts of two agents compare.
final class Session {
    let agent: Agent
    let connection: Connection

    init(_ agent: Agent) throws {
        self.agent = agent
        connection = try agent.connect()
    }

    func path(_ name: String) -> String { agent.directory + "/" + name }

    /// The reply line to `request`, without its newline.
    func ask(_ request: String, timeout: Duration = .seconds(60)) throws -> String {
        try connection.send(wire(request.replacing("$DIR", with: agent.directory)), timeout: timeout)
        var line = try connection.receive(lines: 1, timeout: timeout)
        line.removeLast()
        return String(decoding: line, as: UTF8.self).replacing(agent.directory, with: "$DIR")
    }

    /// The replies to `requests`, one after the other.
    func transcript(_ requests: [String]) throws -> [String] { try requests.map { try ask($0) } }

    /// The `return` member of the reply (the test fails on an error reply).
    func value(_ request: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Any {
        let line = try ask(request)
        guard let reply = try JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed]) as? [String: Any],
              let result = reply["return"] else {
            throw HarnessError("\(agent.kind): \(request.prefix(200)) failed: \(line.prefix(300))")
        }
        return result
    }

    func handle(_ path: String, mode: String) throws -> Int {
        guard let handle = try value(FileRequest.open(path, mode)) as? Int else { throw HarnessError("no handle") }
        return handle
    }
}

/// The same requests to our agent and to the reference, each on a fresh
/// agent; the transcripts must be identical. `prepare` runs on each agent
/// before the requests (making FIFOs, ...).
func expectSameTranscripts(
    _ what: String, _ requests: [String], prepare: (Session) throws -> Void = { _ in },
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    try withBothAgents(sourceLocation: sourceLocation) { ours, reference in
        let theirs = try Session(reference)
        try prepare(theirs)
        let expected = try theirs.transcript(requests)
        let mine = try Session(ours)
        try prepare(mine)
        let actual = try mine.transcript(requests)
        for (index, request) in requests.enumerated() where actual[index] != expected[index] {
            Issue.record("\(what), request \(index + 1) \(request.prefix(200)):\n  ours: \(actual[index].prefix(600))\n  7.2:  \(expected[index].prefix(600))",
                         sourceLocation: sourceLocation)
        }
    }
}

/// guest-file-* requests.
enum FileRequest {
    static func open(_ path: String, _ mode: String? = nil) -> String {
        let mode = mode.map { #","mode":"\#($0)""# } ?? ""
        return #"{"execute":"guest-file-open","arguments":{"path":"\#(path)"\#(mode)}}"#
    }

    static func read(_ handle: Int, _ count: Int? = nil) -> String {
        let count = count.map { #","count":\#($0)"# } ?? ""
        return #"{"execute":"guest-file-read","arguments":{"handle":\#(handle)\#(count)}}"#
    }

    static func write(_ handle: Int, _ base64: String, count: Int? = nil) -> String {
        let count = count.map { #","count":\#($0)"# } ?? ""
        return #"{"execute":"guest-file-write","arguments":{"handle":\#(handle),"buf-b64":"\#(base64)"\#(count)}}"#
    }

    static func write(_ handle: Int, bytes: Bytes) -> String { write(handle, Data(bytes).base64EncodedString()) }

    static func seek(_ handle: Int, _ offset: Int, _ whence: String) -> String {
        #"{"execute":"guest-file-seek","arguments":{"handle":\#(handle),"offset":\#(offset),"whence":\#(whence)}}"#
    }

    static func flush(_ handle: Int) -> String { #"{"execute":"guest-file-flush","arguments":{"handle":\#(handle)}}"# }
    static func close(_ handle: Int) -> String { #"{"execute":"guest-file-close","arguments":{"handle":\#(handle)}}"# }
}

/// The data of a guest-file-read reply, decoded (nil if it is not one).
func readData(_ reply: String) -> Bytes? {
    guard let start = reply.range(of: #""buf-b64": ""#)?.upperBound,
          let end = reply[start...].firstIndex(of: "\"") else { return nil }
    if start == end { return [] }
    return Data(base64Encoded: String(reply[start..<end])).map(Bytes.init)
}

/// guest-exec requests.
enum ExecRequest {
    static func exec(_ path: String, _ arguments: [String]? = nil, env: [String]? = nil, input: String? = nil,
                     capture: String? = nil) -> String {
        func list(_ items: [String]) -> String {
            "[" + items.map { String(decoding: try! JSONSerialization.data(withJSONObject: $0, options: [.fragmentsAllowed]), as: UTF8.self) }
                .joined(separator: ",") + "]"
        }
        var members = [#""path":"\#(path)""#]
        if let arguments { members.append(#""arg":\#(list(arguments))"#) }
        if let env { members.append(#""env":\#(list(env))"#) }
        if let input { members.append(#""input-data":"\#(input)""#) }
        if let capture { members.append(#""capture-output":\#(capture)"#) }
        return #"{"execute":"guest-exec","arguments":{\#(members.joined(separator: ","))}}"#
    }

    static func status(_ pid: Int) -> String { #"{"execute":"guest-exec-status","arguments":{"pid":\#(pid)}}"# }
}

extension Session {
    /// Starts a child; its pid.
    func start(_ request: String) throws -> Int {
        guard let result = try value(request) as? [String: Any], let pid = result["pid"] as? Int else {
            throw HarnessError("no pid")
        }
        return pid
    }

    /// Polls guest-exec-status until `exited` is true; the final reply line.
    /// The timeout only catches a hang: a debug agent under AddressSanitizer
    /// on a loaded machine takes half a minute to capture 32 MiB of output.
    func waitForExit(_ pid: Int, timeout: Duration = .seconds(120)) throws -> String {
        let deadline = ContinuousClock.now + timeout
        while true {
            let reply = try ask(ExecRequest.status(pid))
            if reply != #"{"return": {"exited": false}}"# { return reply }
            guard ContinuousClock.now < deadline else { throw HarnessError("child \(pid) still running after \(timeout)") }
            usleep(10_000)
        }
    }

    /// Runs a child to its end; the final status line.
    func run(_ request: String) throws -> String { try waitForExit(try start(request)) }
}

import Testing

/// One request→response exchange on a single fresh connection.
///
/// Every step's input is written; the bytes the agent answers to it are
/// collected:
/// - after an intermediate step: everything until the agent stays quiet
///   for 300 ms (typically "nothing": an incomplete message);
/// - after the last step: a fence `guest-sync` is appended to the input,
///   and everything before the fence's answer belongs to the step. The fence
///   proves that the agent read and processed all bytes, and that no
///   further reply is pending, without waiting for a quiet window.
/// So the last step's input must leave the agent able to parse the fence
/// (complete message, or a lexer in its start/recovery state).
struct Step: Sendable {
    let input: @Sendable () -> Bytes
    /// The exact answer, nil when only compared between agents.
    let expected: (@Sendable () -> Bytes)?
    var perByte = false
}

struct WireCase: Sendable, CustomTestStringConvertible {
    let name: String
    let steps: [Step]
    var timeout: Duration = .seconds(10)
    /// Generated (large) input: not worth a byte-per-write variant.
    var large = false

    var testDescription: String { name }

    /// Single write of `input`, expecting `expected` (wire text, see `wire`).
    init(_ name: String, _ input: String, _ expected: String?, perByte: Bool = false) {
        self.name = name
        steps = [Step(input: WireCase.constant(wire(input)), expected: expected.map(WireCase.wireText), perByte: perByte)]
    }

    /// Several writes: (input, expected answer before the next write).
    init(_ name: String, steps: [(String, String?)]) {
        self.name = name
        self.steps = steps.map { input, expected in
            Step(input: WireCase.constant(wire(input)), expected: expected.map(WireCase.wireText))
        }
    }

    private static func constant(_ bytes: Bytes) -> @Sendable () -> Bytes { { bytes } }
    private static func wireText(_ text: String) -> @Sendable () -> Bytes { { wire(text) } }

    /// Large generated input (built only when the case runs).
    init(_ name: String, timeout: Duration, input: @escaping @Sendable () -> Bytes,
         expected: (@Sendable () -> Bytes)?) {
        self.name = name
        self.timeout = timeout
        large = true
        steps = [Step(input: input, expected: expected)]
    }

    init(_ name: String, steps: [Step], timeout: Duration = .seconds(10)) {
        self.name = name
        self.steps = steps
        self.timeout = timeout
    }

    /// The same exchange with every byte of every step written separately.
    var fedBytewise: WireCase {
        WireCase(name + " (one byte per write)",
                 steps: steps.map { Step(input: $0.input, expected: $0.expected, perByte: true) },
                 timeout: timeout)
    }

    static let fenceID = 271_828_182
    static let fenceRequest = wire(Request.sync(fenceID))
    static let fenceReply = wire(Reply.return("\(fenceID)"))

    /// Runs the exchange on a new connection to `agent`; returns the answer
    /// to each step.
    func run(on agent: Agent, quiet: Duration = .milliseconds(300)) throws -> [Bytes] {
        let connection = try agent.connect()
        defer { connection.close() }
        var answers: [Bytes] = []
        for (index, step) in steps.enumerated() {
            let last = index == steps.count - 1
            let input = step.input()
            if last {
                try connection.send(input + WireCase.fenceRequest, perByte: step.perByte, timeout: timeout)
                var answer = try connection.receive(through: WireCase.fenceReply, timeout: timeout)
                answer.removeLast(WireCase.fenceReply.count)
                answers.append(answer)
                // Replies are strictly in request order: nothing may follow the fence's.
                if !connection.pending.isEmpty {
                    Issue.record("\(agent.kind) sent bytes after the fence reply: \(render(connection.pending))")
                }
            } else {
                try connection.send(input, perByte: step.perByte, timeout: timeout)
                answers.append(try connection.receiveUntilQuiet(quiet: quiet, limit: timeout))
            }
        }
        return answers
    }

    /// Runs on `agent` and checks each step's answer byte for byte.
    func check(on agent: Agent, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let answers = try run(on: agent)
        for (index, (step, answer)) in zip(steps, answers).enumerated() {
            guard let expected = step.expected else {
                Issue.record("case \(name) has no expected answer for step \(index + 1)", sourceLocation: sourceLocation)
                continue
            }
            expectBytes(answer, expected(), "\(name), step \(index + 1) of \(steps.count)",
                        sourceLocation: sourceLocation)
        }
    }

    /// Runs on both agents and compares their answers byte for byte.
    func compare(ours: Agent, reference: Agent, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let referenceAnswers = try run(on: reference)
        let ourAnswers = try run(on: ours)
        for (index, (answer, referenceAnswer)) in zip(ourAnswers, referenceAnswers).enumerated() {
            expectBytes(answer, referenceAnswer,
                        "\(name), step \(index + 1) of \(steps.count): ours (actual) vs 7.2 (expected)",
                        sourceLocation: sourceLocation)
        }
    }
}

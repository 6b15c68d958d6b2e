import QMPJSON

/// One guest-agent command: typed arguments in, an encodable result or a
/// typed QMP error out. The dispatcher checks the arguments and produces the
/// standard error texts before `run` is called.
package protocol GuestAgentCommand {
    associatedtype Arguments: Decodable = NoArguments
    associatedtype Result: Encodable = EmptyResult

    /// The name hosts execute it by, e.g. `guest-ping`.
    static var name: String { get }
    /// False for commands that answer nothing when they succeed (shutdown, suspend).
    static var successResponse: Bool { get }
    /// True for the few commands still allowed while filesystems are frozen.
    static var allowedWhileFrozen: Bool { get }

    static func run(_ arguments: Arguments, agent: GAState) throws(QMPError) -> Result
}

extension GuestAgentCommand {
    package static var successResponse: Bool { true }
    package static var allowedWhileFrozen: Bool { false }
}

/// The arguments of a command that takes none: any member is unexpected.
package struct NoArguments: Decodable, Sendable {
    package init() {}
    package init(from decoder: any Decoder) throws {
        _ = try decoder.container(keyedBy: NoKeys.self)
    }
    private enum NoKeys: CodingKey {}
}

/// The result of a command without a return type: `{}`.
package struct EmptyResult: Encodable, Sendable {
    package init() {}
}

/// A registered command with its types erased, as the dispatcher sees it.
package struct CommandEntry {
    package let name: String
    package let successResponse: Bool
    package let allowedWhileFrozen: Bool
    let execute: (JSONObject, GAState) throws(QMPError) -> JSONValue

    init<C: GuestAgentCommand>(_ command: C.Type) {
        name = C.name
        successResponse = C.successResponse
        allowedWhileFrozen = C.allowedWhileFrozen
        execute = { arguments, agent throws(QMPError) in
            let decoded = try QAPIArgumentDecoder.decode(C.Arguments.self, from: arguments)
            return QAPIResultEncoder.encode(try C.run(decoded, agent: agent))
        }
    }
}

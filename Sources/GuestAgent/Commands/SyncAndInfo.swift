/// `guest-sync-delimited`: echoes the id, and its reply is preceded by 0xFF so
/// that a client can find the start of it in a stream holding stale bytes.
struct GuestSyncDelimited: @MainActor GuestAgentCommand {
    static let name = "guest-sync-delimited"
    static let allowedWhileFrozen = true

    struct Arguments: Decodable { let id: Int64 }

    static func run(_ arguments: Arguments, agent: GAState) -> Int64 {
        agent.delimitResponse = true
        return arguments.id
    }
}

/// `guest-sync`: echoes the id.
struct GuestSync: @MainActor GuestAgentCommand {
    static let name = "guest-sync"
    static let allowedWhileFrozen = true

    struct Arguments: Decodable { let id: Int64 }

    static func run(_ arguments: Arguments, agent: GAState) -> Int64 { arguments.id }
}

/// `guest-ping`.
struct GuestPing: @MainActor GuestAgentCommand {
    static let name = "guest-ping"
    static let allowedWhileFrozen = true

    static func run(_ arguments: NoArguments, agent: GAState) -> EmptyResult {
        agent.log.syslog("guest-ping called")
        return EmptyResult()
    }
}

/// `guest-info`: the version and every registered command, newest first.
struct GuestInfo: @MainActor GuestAgentCommand {
    static let name = "guest-info"
    static let allowedWhileFrozen = true

    struct CommandInfo: Encodable {
        let name: String
        let enabled: Bool
        let successResponse: Bool

        enum CodingKeys: String, CodingKey {
            case name, enabled
            case successResponse = "success-response"
        }
    }

    struct Result: Encodable {
        let version: String
        // The one schema member spelled with an underscore.
        let supportedCommands: [CommandInfo]

        enum CodingKeys: String, CodingKey {
            case version
            case supportedCommands = "supported_commands"
        }
    }

    static func run(_ arguments: NoArguments, agent: GAState) -> Result {
        let registry = agent.commands
        return Result(
            version: qgaInterfaceVersion,
            supportedCommands: registry.entries.reversed().map {
                CommandInfo(name: $0.name, enabled: registry.isEnabled($0.name), successResponse: $0.successResponse)
            }
        )
    }
}

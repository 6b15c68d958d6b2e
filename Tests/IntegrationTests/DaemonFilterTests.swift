import Testing
import TestRequirements

/// `-b`/`block-rpcs` and `-a`/`allow-rpcs` (qemu-ga(8)): replies and
/// guest-info's `enabled`. Ours follows the newest rules (9.1+): one reason for
/// every disabled command, `-a` and `-b` together, block wins.
@Suite("Daemon: RPC filters")
struct DaemonFilterTests {
    /// guest-info's view: exactly `disabled` are disabled (among the
    /// registered commands).
    static func expectDisabled(_ agent: Agent, _ disabled: Set<String>, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let commands = try agent.supportedCommands()
        #expect(!commands.isEmpty, sourceLocation: sourceLocation)
        // 7.2 registers guest-get-devices and disables it on Linux; newest
        // does not build it (checked in DeliberateDifferenceTests).
        for command in commands where command.name != "guest-get-devices" {
            #expect(command.enabled == !disabled.contains(command.name), "\(agent.kind): \(command)",
                    sourceLocation: sourceLocation)
        }
    }

    // MARK: -b

    /// -b arguments and the commands they block.
    static let blockFilters: [([String], [String])] = [
        (["-b", "guest-ping"], ["guest-ping"]),
        (["-b", "guest-ping,guest-sync"], ["guest-ping", "guest-sync"]),
        (["-b", "guest-sync", "-b", "guest-ping"], ["guest-ping", "guest-sync"]),
        (["--block-rpcs=guest-ping,no-such-command,,"], ["guest-ping"]),
        // names are exact: no case folding, no trimming
        (["-b", "GUEST-SYNC,guest-ping "], []),
    ]

    @Test("-b: the blocked commands show enabled: false in guest-info; the rest work",
          arguments: [AgentBinary.ours], blockFilters)
    func blockInGuestInfo(kind: AgentBinary, filter: ([String], [String])) throws {
        try withAgent(kind, extraArguments: filter.0) { agent throws in
            try Self.expectDisabled(agent, Set(filter.1))
            if !filter.1.contains("guest-ping") { #expect(try agent.ask(Request.ping) == Reply.pong) }
            if !filter.1.contains("guest-sync") { #expect(try agent.ask(Request.sync(4)) == Reply.return("4")) }
        }
    }

    @Test("-b guest-ping: `Command guest-ping has been disabled: the command is not allowed` (newest)")
    func blockReply() throws {
        try withAgent(extraArguments: ["-b", "guest-ping,guest-sync"]) { agent throws in
            #expect(try agent.ask(Request.ping) == disabledReply("guest-ping"))
            #expect(try agent.ask(Request.sync(1)) == disabledReply("guest-sync"))
            #expect(try agent.ask(#"{"execute":"guest-ping","id":7}"#)
                        == #"{"id": 7, "error": {"class": "CommandNotFound", "desc": "Command guest-ping has been disabled: the command is not allowed"}}"# + "\n")
            // Arguments are not looked at: disabled first.
            #expect(try agent.ask(#"{"execute":"guest-sync","arguments":{"bad":1}}"#) == disabledReply("guest-sync"))
        }
    }

    @Test("block-rpcs in the config file, plus -b", arguments: [AgentBinary.ours])
    func blockKey(kind: AgentBinary) throws {
        let directory = try TemporaryDirectory()
        let conf = try directory.write("qemu-ga.conf", "[general]\nblock-rpcs=guest-ping\n")
        try withAgent(kind, extraArguments: ["-b", "guest-sync"], environment: ["QGA_CONF": conf]) { agent throws in
            try Self.expectDisabled(agent, ["guest-ping", "guest-sync"])
        }
    }

    // MARK: -a (newest)

    @Test("-a guest-ping,guest-info: every other command disabled (newest)")
    func allow() throws {
        try withAgent(extraArguments: ["-a", "guest-ping,guest-info"], checkSync: false) { agent throws in
            let commands = try agent.supportedCommands()
            #expect(commands.count >= 4)
            try Self.expectDisabled(agent, Set(commands.map(\.name)).subtracting(["guest-ping", "guest-info"]))
            #expect(try agent.ask(Request.ping) == Reply.pong)
            #expect(try agent.ask(Request.sync(1)) == disabledReply("guest-sync"))
            #expect(try agent.ask(Request.syncDelimited(1)) == disabledReply("guest-sync-delimited"))
        }
    }

    @Test("-a accumulates; allow-rpcs in the config file too (newest)")
    func allowAccumulates() throws {
        let directory = try TemporaryDirectory()
        let conf = try directory.write("qemu-ga.conf", "[general]\nallow-rpcs=guest-sync-delimited\n")
        try withAgent(extraArguments: ["-a", "guest-info", "--allow-rpcs=guest-ping"], environment: ["QGA_CONF": conf]) { agent throws in
            let commands = try agent.supportedCommands()
            try Self.expectDisabled(agent, Set(commands.map(\.name))
                .subtracting(["guest-ping", "guest-info", "guest-sync-delimited"]))
        }
    }

    /// qemu-ga ≥ 9.1 allows both lists; the block list wins.
    @Test("-a and -b together: block wins (newest ≥ 9.1)")
    func allowAndBlock() throws {
        try withAgent(extraArguments: ["-a", "guest-ping,guest-info,guest-sync-delimited,guest-sync", "-b", "guest-ping,guest-sync"]) { agent throws in
            let commands = try agent.supportedCommands()
            try Self.expectDisabled(agent, Set(commands.map(\.name)).subtracting(["guest-info", "guest-sync-delimited"]))
            #expect(try agent.ask(Request.ping) == disabledReply("guest-ping"))
        }
    }

    @Test("block-rpcs and allow-rpcs keys together: block wins (newest ≥ 9.1)")
    func allowAndBlockKeys() throws {
        let directory = try TemporaryDirectory()
        let conf = try directory.write("qemu-ga.conf",
                                       "[general]\nallow-rpcs=guest-ping,guest-info,guest-sync-delimited\nblock-rpcs=guest-info\n")
        try withAgent(environment: ["QGA_CONF": conf]) { agent throws in
            #expect(try agent.ask(Request.ping) == Reply.pong)
            #expect(try agent.ask(#"{"execute":"guest-info"}"#) == disabledReply("guest-info"))
            #expect(try agent.ask(Request.sync(2)) == disabledReply("guest-sync"))
        }
    }

    @Test("-a with only unknown names disables everything (newest)")
    func allowNothing() throws {
        try withAgent(extraArguments: ["-a", "no-such-command"], checkSync: false) { agent throws in
            #expect(try agent.ask(Request.ping) == disabledReply("guest-ping"))
            #expect(try agent.ask(#"{"execute":"guest-info"}"#) == disabledReply("guest-info"))
        }
    }

    // MARK: Newest and better config keys

    /// qemu-ga 9.1 removed the deprecated key (7.2 reads it instead of block-rpcs).
    @Test("The blacklist key is ignored (newest)")
    func blacklistKeyIgnored() throws {
        let directory = try TemporaryDirectory()
        let conf = try directory.write("qemu-ga.conf", "[general]\nblacklist=guest-ping\nblock-rpcs=guest-sync\n")
        try withAgent(environment: ["QGA_CONF": conf]) { agent throws in
            try Self.expectDisabled(agent, ["guest-sync"])
            #expect(!agent.log.contains("deprecated"), "\(agent.log)")
        }
    }

    @Test("Better: `;` separates names in block-rpcs and allow-rpcs",
          arguments: [("block-rpcs", "guest-ping;guest-sync", ["guest-ping", "guest-sync"]),
                      ("block-rpcs", "guest-ping;guest-sync;", ["guest-ping", "guest-sync"]),
                      ("block-rpcs", "guest-sync,guest-ping;guest-info", ["guest-ping", "guest-sync", "guest-info"])])
    func semicolonBlocks(key: String, value: String, blocked: [String]) throws {
        let directory = try TemporaryDirectory()
        let conf = try directory.write("qemu-ga.conf", "[general]\n\(key)=\(value)\n")
        try withAgent(environment: ["QGA_CONF": conf]) { agent throws in
            if blocked.contains("guest-info") {
                #expect(try agent.ask(#"{"execute":"guest-info"}"#) == disabledReply("guest-info"))
                #expect(try agent.ask(Request.ping) == disabledReply("guest-ping"))
                #expect(try agent.ask(Request.sync(3)) == disabledReply("guest-sync"))
            } else {
                try Self.expectDisabled(agent, Set(blocked))
            }
        }
    }

    @Test("Better: `;` separates names in allow-rpcs")
    func semicolonAllows() throws {
        let directory = try TemporaryDirectory()
        let conf = try directory.write("qemu-ga.conf", "[general]\nallow-rpcs=guest-ping;guest-info;guest-sync-delimited\n")
        try withAgent(environment: ["QGA_CONF": conf]) { agent throws in
            let commands = try agent.supportedCommands()
            try Self.expectDisabled(agent, Set(commands.map(\.name))
                .subtracting(["guest-ping", "guest-info", "guest-sync-delimited"]))
        }
    }
}

extension NeedsSystem {
    /// The tests above that compare with qemu-ga 7.2, and our agent's
    /// cases run on 7.2 itself: its answers are what ours are held to.
    @Suite("Daemon: RPC filters, on qemu-ga 7.2") struct DaemonFilterTestsNeedingSystem {
        @Test("-b guest-ping on 7.2: `Command guest-ping has been disabled` (for the record)")
        func blockReplyReference() throws {
            try withAgent(.reference, extraArguments: ["-b", "guest-ping"]) { agent throws in
                #expect(try agent.ask(Request.ping)
                            == Reply.error("Command guest-ping has been disabled", class: "CommandNotFound"))
            }
        }

        // The cases of our agent above, on qemu-ga 7.2 (the same bodies).

        @Test(arguments: DaemonFilterTests.blockFilters)
        func blockInGuestInfo(filter: ([String], [String])) throws { try DaemonFilterTests().blockInGuestInfo(kind: .reference, filter: filter) }

        @Test func blockKey() throws { try DaemonFilterTests().blockKey(kind: .reference) }
    }
}

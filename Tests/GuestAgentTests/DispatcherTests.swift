import Testing
import QMPJSON
@testable import GuestAgent

/// Commands with every kind of argument, to check the visitor's texts.
private struct ArgumentKinds: @MainActor GuestAgentCommand {
    static let name = "test-kinds"

    enum Whence: String, QAPIEnum { case set, cur, end }
    struct Inner: Decodable { let flag: Bool }
    struct Arguments: Decodable {
        let count: Int64
        let size: UInt64?
        let small: UInt16?
        let tiny: Int8?
        let ratio: Double?
        let name: String?
        let enabled: Bool?
        let words: [String]?
        let inner: Inner?
        let whence: Whence?
        let items: [Inner]?
    }

    static func run(_ arguments: Arguments, agent: GAState) -> JSONValue {
        var echo = JSONObject()
        echo["count"] = .int(arguments.count)
        if let size = arguments.size { echo["size"] = size <= UInt64(Int64.max) ? .int(Int64(size)) : .uint(size) }
        if let whence = arguments.whence { echo["whence"] = .string(whence.rawValue) }
        if let ratio = arguments.ratio { echo["ratio"] = .double(ratio) }
        return .object(echo)
    }
}

private struct Failing: @MainActor GuestAgentCommand {
    static let name = "test-fail"
    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> EmptyResult {
        throw QMPError("it failed")
    }
}

private struct Silent: @MainActor GuestAgentCommand {
    static let name = "test-silent"
    static let successResponse = false
    static func run(_ arguments: NoArguments, agent: GAState) -> EmptyResult { EmptyResult() }
}

private func makeAgent() -> GAState {
    GAState(system: .host(), commands: CommandRegistry(registeredCommands + [CommandEntry(ArgumentKinds.self), CommandEntry(Failing.self), CommandEntry(Silent.self)]))
}

private func parse(_ text: String) -> JSONValue {
    var parser = JSONMessageParser()
    let outputs = parser.feed(Array(text.utf8) + [0x0A])
    guard outputs.count == 1, case .value(let value) = outputs[0] else {
        Issue.record("\(text) did not parse to one value: \(outputs)")
        return .null
    }
    return value
}

/// The reply line the agent would write for a request, without the newline.
private func reply(_ request: String, agent: GAState = makeAgent()) -> String? {
    QMPDispatcher.response(to: parse(request), agent: agent).map {
        String(decoding: JSONWriter.encode(.object($0)), as: UTF8.self)
    }
}

private func error(_ desc: String, id: String? = nil, class errorClass: String = "GenericError") -> String {
    let body = "\"error\": {\"class\": \"\(errorClass)\", \"desc\": \"\(desc)\"}"
    return id.map { "{\"id\": \($0), \(body)}" } ?? "{\(body)}"
}

@Suite struct EnvelopeValidation {
    @Test(arguments: ["[1,2]", "\"guest-ping\"", "1", "true", "null"])
    func nonObjectRequestsAreRefusedWithoutIdEcho(request: String) {
        #expect(reply(request) == error("QMP input must be a JSON object"))
    }

    @Test func executeMustBeAString() {
        #expect(reply(#"{"execute":1}"#) == error("QMP input member 'execute' must be a string"))
        #expect(reply(#"{"execute":null,"id":2}"#) == error("QMP input member 'execute' must be a string", id: "2"))
    }

    @Test func argumentsMustBeAnObject() {
        #expect(reply(#"{"execute":"guest-ping","arguments":[]}"#) == error("QMP input member 'arguments' must be an object"))
        #expect(reply(#"{"execute":"guest-ping","arguments":null}"#) == error("QMP input member 'arguments' must be an object"))
    }

    @Test func unknownMembersAreUnexpected() {
        #expect(reply(#"{"execute":"guest-ping","foo":1}"#) == error("QMP input member 'foo' is unexpected"))
        #expect(reply(#"{"exec-oob":"guest-ping"}"#) == error("QMP input member 'exec-oob' is unexpected"))
        #expect(reply(#"{"execute":"guest-ping","":1}"#) == error("QMP input member '' is unexpected"))
        // `exec-oob` comes before `execute` in QEMU's hash order.
        #expect(reply(#"{"execute":"guest-ping","exec-oob":"guest-ping"}"#) == error("QMP input member 'exec-oob' is unexpected"))
        // `execute` comes before `foo`, so its error wins.
        #expect(reply(#"{"foo":1,"execute":1}"#) == error("QMP input member 'execute' must be a string"))
    }

    @Test func executeIsRequired() {
        #expect(reply("{}") == error("QMP input lacks member 'execute'"))
        #expect(reply(#"{"arguments":{},"id":3}"#) == error("QMP input lacks member 'execute'", id: "3"))
    }

    @Test func unknownCommandsAreNotFound() {
        #expect(reply(#"{"execute":"foo","id":7}"#) == error("The command foo has not been found", id: "7", class: "CommandNotFound"))
        #expect(reply(#"{"execute":"GUEST-PING"}"#) == error("The command GUEST-PING has not been found", class: "CommandNotFound"))
        #expect(reply(#"{"execute":"guest-get-devices"}"#) == error("The command guest-get-devices has not been found", class: "CommandNotFound"))
    }

    @Test func disabledCommandsAreReportedBeforeTheirArguments() {
        let agent = makeAgent()
        agent.commands.applyFilters(blocked: ["guest-sync-delimited"], allowed: nil, frozen: false)
        #expect(reply(#"{"execute":"guest-sync-delimited","arguments":{"id":"x"},"id":1}"#, agent: agent)
            == error("Command guest-sync-delimited has been disabled: the command is not allowed", id: "1", class: "CommandNotFound"))
    }

    @Test func idIsEchoedOnSuccessAndFailure() {
        #expect(reply(#"{"execute":"guest-ping","id":[1,{"a":null}]}"#) == #"{"return": {}, "id": [1, {"a": null}]}"#)
        #expect(reply(#"{"execute":"guest-ping","id":null}"#) == #"{"return": {}, "id": null}"#)
        #expect(reply(#"{"execute":"test-fail","id":"x"}"#) == error("it failed", id: "\"x\""))
    }

    @Test func commandsWithoutSuccessResponseAnswerNothingOnSuccess() {
        #expect(reply(#"{"execute":"test-silent","id":9}"#) == nil)
        #expect(reply(#"{"execute":"test-silent","arguments":{"x":1}}"#) == error("Parameter 'x' is unexpected"))
    }
}

@Suite struct ArgumentErrors {
    @Test func missingAndUnexpectedParameters() {
        #expect(reply(#"{"execute":"guest-sync"}"#) == error("Parameter 'id' is missing"))
        #expect(reply(#"{"execute":"guest-sync","arguments":{"id":1,"x":2}}"#) == error("Parameter 'x' is unexpected"))
        #expect(reply(#"{"execute":"guest-ping","arguments":{"x":2}}"#) == error("Parameter 'x' is unexpected"))
        #expect(reply(#"{"id":5,"execute":"guest-ping","arguments":{"a":1,"b":2}}"#) == error("Parameter 'b' is unexpected", id: "5"))
    }

    @Test func missingMembersAreReportedBeforeUnexpectedOnes() {
        #expect(reply(#"{"execute":"guest-sync","arguments":{"x":2}}"#) == error("Parameter 'id' is missing"))
    }

    @Test func integerParametersTakeOnlyInt64Values() {
        for bad in [#""1""#, "1.0", "1e3", "18446744073709551615", "true", "null", "{}", "[]"] {
            #expect(reply(#"{"execute":"guest-sync","arguments":{"id":\#(bad)}}"#)
                == error("Invalid parameter type for 'id', expected: integer"), "id \(bad)")
        }
        #expect(reply(#"{"execute":"guest-sync","arguments":{"id":-9223372036854775808}}"#) == #"{"return": -9223372036854775808}"#)
    }

    @Test func typeNamesOfEachKind() {
        let cases: [(String, String)] = [
            (#""ratio":"x""#, "Invalid parameter type for 'ratio', expected: number"),
            (#""name":1"#, "Invalid parameter type for 'name', expected: string"),
            (#""enabled":"yes""#, "Invalid parameter type for 'enabled', expected: boolean"),
            (#""words":"a""#, "Invalid parameter type for 'words', expected: array"),
            (#""words":["a",1]"#, "Invalid parameter type for 'words[1]', expected: string"),
            (#""inner":[]"#, "Invalid parameter type for 'inner', expected: object"),
            (#""inner":{}"#, "Parameter 'inner.flag' is missing"),
            (#""inner":{"flag":1}"#, "Invalid parameter type for 'inner.flag', expected: boolean"),
            (#""inner":{"flag":true,"x":1}"#, "Parameter 'inner.x' is unexpected"),
            (#""items":[{"flag":true},{"flag":0}]"#, "Invalid parameter type for 'items[1].flag', expected: boolean"),
            (#""whence":"middle""#, "Parameter 'whence' does not accept value 'middle'"),
            (#""whence":1"#, "Invalid parameter type for 'whence', expected: string"),
            (#""name":null"#, "Invalid parameter type for 'name', expected: string"),
        ]
        for (member, text) in cases {
            #expect(reply(#"{"execute":"test-kinds","arguments":{"count":1,\#(member)}}"#) == error(text), "\(member)")
        }
    }

    @Test func unsignedAndSizedIntegers() {
        #expect(reply(#"{"execute":"test-kinds","arguments":{"count":1,"size":1.5}}"#) == error("Parameter 'size' expects uint64"))
        #expect(reply(#"{"execute":"test-kinds","arguments":{"count":1,"size":"1"}}"#) == error("Parameter 'size' expects uint64"))
        #expect(reply(#"{"execute":"test-kinds","arguments":{"count":1,"small":65536}}"#) == error("Parameter 'small' expects uint16"))
        #expect(reply(#"{"execute":"test-kinds","arguments":{"count":1,"tiny":128}}"#) == error("Parameter 'tiny' expects int8"))
        // Negative values wrap into uint64, as QEMU's visitor does.
        #expect(reply(#"{"execute":"test-kinds","arguments":{"count":1,"size":-1}}"#) == #"{"return": {"count": 1, "size": 18446744073709551615}}"#)
        #expect(reply(#"{"execute":"test-kinds","arguments":{"count":1,"size":18446744073709551615}}"#) == #"{"return": {"count": 1, "size": 18446744073709551615}}"#)
    }

    @Test func numbersAcceptIntegersAndEnumsTheirValues() {
        #expect(reply(#"{"execute":"test-kinds","arguments":{"count":1,"ratio":2,"whence":"cur"}}"#) == #"{"return": {"whence": "cur", "count": 1, "ratio": 2}}"#)
    }

    @Test func severalUnexpectedMembersNameTheFirstInGLibHashOrder() {
        // Checked against qemu-ga 7.2 with the same GLib.
        #expect(reply(#"{"execute":"guest-ping","arguments":{"u":1,"ll":1,"o":1,"n":1,"id2":1,"pp":1,"é":1,"v":1,"AA":1,"path":1,"foo":1,"k184":1}}"#)
            == error("Parameter 'path' is unexpected"))
        #expect(glibHashTableOrder(inserting: ["a", "b"], removing: []) == ["b", "a"])
        #expect(glibHashTableOrder(inserting: ["a", "b", "c"], removing: ["b"]).sorted() == ["a", "c"])
    }
}

@Suite struct SyncAndInfo {
    @Test func syncEchoesTheId() {
        #expect(reply(#"{"execute":"guest-sync","arguments":{"id":123}}"#) == #"{"return": 123}"#)
    }

    @Test func syncDelimitedPutsTheSentinelBeforeItsOwnReplyOnly() {
        let agent = makeAgent()
        let response = QMPDispatcher.response(to: parse(#"{"execute":"guest-sync-delimited","arguments":{"id":5},"id":"abc"}"#), agent: agent)!
        #expect(agent.delimitResponse)
        var replies: [UInt8] = []
        agent.sendResponse(response, to: &replies)
        #expect(replies == [0xFF] + Array(#"{"return": 5, "id": "abc"}"#.utf8) + [0x0A])
        #expect(!agent.delimitResponse)
        let ping = QMPDispatcher.response(to: parse(#"{"execute":"guest-ping"}"#), agent: agent)!
        agent.sendResponse(ping, to: &replies)
        #expect(replies == [0xFF] + Array(#"{"return": 5, "id": "abc"}"#.utf8) + [0x0A] + Array(#"{"return": {}}"#.utf8) + [0x0A])
    }

    @Test func syncDelimitedWithBadArgumentsHasNoSentinel() {
        let agent = makeAgent()
        let response = QMPDispatcher.response(to: parse(#"{"execute":"guest-sync-delimited","arguments":{"id":"x"}}"#), agent: agent)!
        #expect(!agent.delimitResponse)
        var replies: [UInt8] = []
        agent.sendResponse(response, to: &replies)
        #expect(replies.first == UInt8(ascii: "{"))
    }

    @Test func infoListsEveryCommandNewestFirstWithItsState() {
        let agent = GAState(system: .host())
        agent.commands.applyFilters(blocked: ["guest-ping"], allowed: nil, frozen: false)
        let entries = registeredCommands.reversed().map { command in
            #"{"enabled": \#(command.name != "guest-ping"), "name": "\#(command.name)", "success-response": \#(command.successResponse)}"#
        }
        #expect(entries.last == #"{"enabled": true, "name": "guest-sync-delimited", "success-response": true}"#)
        #expect(reply(#"{"execute":"guest-info"}"#, agent: agent) == """
            {"return": {"version": "\(qgaInterfaceVersion)", "supported_commands": [\(entries.joined(separator: ", "))]}}
            """)
    }
}

@Suite struct CommandFilters {
    @Test func frozenAllowsOnlyTheFreezeSafeCommands() {
        let agent = makeAgent()
        agent.commands.applyFilters(blocked: [], allowed: nil, frozen: true)
        #expect(agent.commands.isEnabled("guest-ping"))
        #expect(agent.commands.isEnabled("guest-sync-delimited"))
        #expect(!agent.commands.isEnabled("test-kinds"))
        #expect(reply(#"{"execute":"test-kinds","id":1}"#, agent: agent)
            == error("Command test-kinds has been disabled: the agent is in frozen state", id: "1", class: "CommandNotFound"))
    }

    @Test func frozenOverridesBothLists() {
        let agent = makeAgent()
        agent.commands.applyFilters(blocked: ["guest-ping", "test-kinds"], allowed: ["guest-info", "test-kinds"], frozen: true)
        #expect(agent.commands.isEnabled("guest-ping"))
        #expect(agent.commands.isEnabled("guest-sync"))
        #expect(agent.commands.disabledReason("test-kinds") == .frozen)
        agent.commands.applyFilters(blocked: ["guest-ping", "test-kinds"], allowed: ["guest-info", "test-kinds"], frozen: false)
        #expect(agent.commands.disabledReason("guest-ping") == .notAllowed)
        #expect(agent.commands.disabledReason("guest-sync") == .notAllowed)
        #expect(agent.commands.disabledReason("test-kinds") == .notAllowed)
        #expect(agent.commands.isEnabled("guest-info"))
    }

    @Test func blockListWinsOverAllowList() {
        let agent = makeAgent()
        agent.commands.applyFilters(blocked: ["guest-ping"], allowed: ["guest-ping", "guest-info"], frozen: false)
        #expect(!agent.commands.isEnabled("guest-ping"))
        #expect(agent.commands.isEnabled("guest-info"))
        #expect(!agent.commands.isEnabled("guest-sync"))
    }
}

/// Multi-connection scenarios whose transcripts are the same for 7.2 and
/// ours: checked exactly on ours (`RobustnessTests`) and compared in
/// `DifferentialTests`.
enum Scenarios {
    /// A client sends requests and half-closes: every request sent before
    /// EOF is answered, then the agent closes the connection.
    static func halfClose(_ agent: Agent) throws -> [Bytes] {
        let client = try agent.connect()
        try client.send(Request.ping + Request.syncDelimited(9) + Request.sync(10))
        try client.halfClose()
        return [try client.receiveUntilClosed()]
    }

    static let halfCloseExpected = [wire(Reply.pong + "«ff»" + Reply.return("9") + Reply.return("10"))]

    /// One client at a time: a second client is not served (its request
    /// waits in the socket) until the first one leaves.
    static func oneClientAtATime(_ agent: Agent) throws -> [Bytes] {
        let first = try agent.connect()
        try first.send(Request.ping)
        let firstAnswer = try first.receive(lines: 1)
        let second = try agent.connect()
        try second.send(Request.sync(2))
        let secondWhileFirstConnected = try second.receiveUntilQuiet()
        try first.send(Request.sync(1))
        let firstAgain = try first.receive(lines: 1)
        first.close()
        let secondAfterFirstLeft = try second.receive(lines: 1)
        return [firstAnswer, secondWhileFirstConnected, firstAgain, secondAfterFirstLeft]
    }

    static let oneClientAtATimeExpected = [wire(Reply.pong), [], wire(Reply.return("1")), wire(Reply.return("2"))]
}

import QMPJSON

/// QEMU's QMP dispatcher as the guest agent uses it: validates a request in
/// the reference's order, runs the command and builds the response.
enum QMPDispatcher {
    /// The response to one parsed request, or nil when the command succeeded
    /// and is one of those that answer nothing on success.
    static func response(to request: JSONValue, agent: GAState) -> JSONObject? {
        guard case .object(let request) = request else {
            return errorResponse(QMPError("QMP input must be a JSON object"), id: nil)
        }
        let id = request["id"]
        var commandName: String?
        var arguments = JSONObject()
        // Members are checked in QEMU's hash order, so that with several
        // offenders the same one is reported.
        for member in request.qdictOrderedMembers {
            switch member.key {
            case "execute":
                guard case .string(let name) = member.value else {
                    return errorResponse(QMPError("QMP input member 'execute' must be a string"), id: id)
                }
                commandName = name
            case "arguments":
                guard case .object(let object) = member.value else {
                    return errorResponse(QMPError("QMP input member 'arguments' must be an object"), id: id)
                }
                arguments = object
            case "id":
                break
            default:
                return errorResponse(QMPError("QMP input member '\(member.key)' is unexpected"), id: id)
            }
        }
        guard let commandName else {
            return errorResponse(QMPError("QMP input lacks member 'execute'"), id: id)
        }
        guard let command = agent.commands.entry(named: commandName) else {
            return errorResponse(QMPError("The command \(commandName) has not been found", class: .commandNotFound), id: id)
        }
        if let reason = agent.commands.disabledReason(commandName) {
            return errorResponse(
                QMPError("Command \(commandName) has been disabled: \(reason.rawValue)", class: .commandNotFound), id: id)
        }
        do {
            let result = try command.execute(arguments, agent)
            guard command.successResponse else { return nil }
            var response = JSONObject()
            response["return"] = result
            if let id { response["id"] = id }
            return response
        } catch {
            return errorResponse(error, id: id)
        }
    }

    static func errorResponse(_ error: QMPError, id: JSONValue?) -> JSONObject {
        var details = JSONObject()
        details["class"] = .string(error.errorClass.rawValue)
        details["desc"] = .string(error.desc)
        var response = JSONObject()
        response["error"] = .object(details)
        if let id { response["id"] = id }
        return response
    }
}

import QMPJSON

/// Feeds `bytes` in one chunk to a fresh parser.
func parseAll(_ bytes: [UInt8], limits: JSONLimits = .qemu) -> [JSONParserOutput] {
    var parser = JSONMessageParser(limits: limits)
    return parser.feed(bytes)
}

func parseAll(_ text: String, limits: JSONLimits = .qemu) -> [JSONParserOutput] {
    parseAll(Array(text.utf8), limits: limits)
}

/// Bytes from a string whose characters U+0000...U+00FF stand for single
/// bytes (so "\u{FF}" is the byte 0xFF, not its UTF-8 encoding).
func bytes(_ latin1: String) -> [UInt8] {
    latin1.unicodeScalars.map { scalar in
        precondition(scalar.value < 256, "not a byte: \(scalar)")
        return UInt8(scalar.value)
    }
}

func parseError(_ detail: String) -> JSONParserOutput { .error("JSON parse error, " + detail) }
func stray(_ text: String) -> JSONParserOutput { .error("JSON parse error, stray '" + text + "'") }
let expectingValue = parseError("expecting value")
let notAnObjectLine = #"{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}"#

/// A miniature of the daemon's dispatcher, just enough to reproduce the
/// response lines observed from qemu-ga 7.2 for `guest-ping` (with an echoed
/// `id`) and for errors.
func responseLine(_ output: JSONParserOutput) -> String {
    var response = JSONObject()
    switch output {
    case .error(let desc):
        response["error"] = .object(JSONObject(["class": .string("GenericError"), "desc": .string(desc)]))
    case .value(let value):
        guard case .object(let request) = value else { return notAnObjectLine }
        if let id = request["id"] { response["id"] = id }
        if request["execute"] == .string("guest-ping") {
            response["return"] = .object(JSONObject())
        } else {
            response["error"] = .object(JSONObject(["class": .string("GenericError"), "desc": .string("unexpected test request")]))
        }
    }
    return String(decoding: JSONWriter.encode(.object(response)), as: UTF8.self)
}

func responses(_ input: [UInt8]) -> [String] { parseAll(input).map(responseLine) }
func responses(_ input: String) -> [String] { responses(Array(input.utf8)) }

func errorLine(_ desc: String) -> String {
    #"{"error": {"class": "GenericError", "desc": ""# + desc + #""}}"#
}

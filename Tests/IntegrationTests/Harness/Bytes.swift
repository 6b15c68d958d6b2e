import FuzzingSupport
import Testing

/// Raw bytes as they travel on the agent's channel.
typealias Bytes = [UInt8]

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Wire bytes from readable text: everything is taken as UTF-8, except
/// `«hh hh …»`, which stands for the raw bytes with those hex values.
/// (A marker that never occurs in a request, unlike `\x`, which some
/// requests contain literally.)
func wire(_ text: String) -> Bytes {
    var out = Bytes()
    var scalars = text.unicodeScalars.makeIterator()
    while let scalar = scalars.next() {
        guard scalar == "«" else {
            out.append(contentsOf: String(scalar).utf8)
            continue
        }
        var hex = ""
        while let h = scalars.next(), h != "»" { hex.unicodeScalars.append(h) }
        for part in hex.split(separator: " ") {
            guard let byte = UInt8(part, radix: 16) else {
                preconditionFailure("bad byte «\(part)» in wire text \(text)")
            }
            out.append(byte)
        }
    }
    return out
}

/// Bytes rendered for a failure message: printable ASCII as is (so the
/// agent's own escapes read naturally: `\uFFFD`), LF as `\n`, every other
/// byte as `\xHH`; long input is cut in the middle.
func render<C: Collection>(_ bytes: C, limit: Int = 800) -> String where C.Element == UInt8 {
    func one(_ b: UInt8) -> String {
        switch b {
        case 0x0A: return "\\n"
        case 0x20...0x7E: return String(UnicodeScalar(b))
        default:
            let hex = String(b, radix: 16)
            return "\\x" + (hex.count == 1 ? "0" + hex : hex)
        }
    }
    let array = Array(bytes)
    if array.count <= limit { return array.map(one).joined() }
    let head = array[..<(limit / 2)].map(one).joined()
    let tail = array[(array.count - limit / 2)...].map(one).joined()
    return head + " …(\(array.count - limit) bytes)… " + tail
}

func lineCount(_ bytes: Bytes) -> Int { bytes.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) } }

/// Exact byte comparison with a readable report: lengths, line counts and
/// the neighbourhood of the first difference.
@discardableResult
func expectBytes(
    _ actual: Bytes, _ expected: Bytes, _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) -> Bool {
    if actual == expected { return true }
    var index = 0
    while index < actual.count, index < expected.count, actual[index] == expected[index] { index += 1 }
    let from = max(0, index - 120)
    let expectedContext = expected[from..<min(expected.count, index + 240)]
    let actualContext = actual[from..<min(actual.count, index + 240)]
    Issue.record(
        """
        \(what): bytes differ at offset \(index) \
        (actual \(actual.count) bytes / \(lineCount(actual)) lines, \
        expected \(expected.count) bytes / \(lineCount(expected)) lines)
          expected[\(from)...]: \(render(expectedContext, limit: 2000))
          actual  [\(from)...]: \(render(actualContext, limit: 2000))
        """,
        sourceLocation: sourceLocation)
    return false
}

/// Exact replies of the agent, as wire text (see `wire`).
enum Reply {
    static let pong = #"{"return": {}}"# + "\n"

    static func `return`(_ value: String) -> String { #"{"return": \#(value)}"# + "\n" }

    static func error(_ desc: String, class errorClass: String = "GenericError") -> String {
        #"{"error": {"class": "\#(errorClass)", "desc": "\#(desc)"}}"# + "\n"
    }

    static func parseError(_ detail: String) -> String { error("JSON parse error, " + detail) }

    static func notFound(_ command: String) -> String {
        error("The command \(command) has not been found", class: "CommandNotFound")
    }

    static let notAnObject = error("QMP input must be a JSON object")
    static let expectingValue = parseError("expecting value")
}

/// Requests used by the harness itself.
enum Request {
    static let ping = #"{"execute":"guest-ping"}"#
    static func sync(_ id: Int) -> String { #"{"execute":"guest-sync","arguments":{"id":\#(id)}}"# }
    static func syncDelimited(_ id: Int) -> String {
        #"{"execute":"guest-sync-delimited","arguments":{"id":\#(id)}}"#
    }
}

/// `count` pseudo-random bytes drawn from `alphabet` (all 256 values if nil),
/// never containing a byte of `excluding`.
func garbage(seed: UInt64, count: Int, alphabet: Bytes? = nil, excluding: Set<UInt8> = []) -> Bytes {
    var rng = SplitMix64(seed: seed)
    let pool = (alphabet ?? Bytes(0...255)).filter { !excluding.contains($0) }
    return (0..<count).map { _ in pool[Int(rng.next() % UInt64(pool.count))] }
}

/// Bytes that exercise the JSON lexer and parser more than uniform noise.
let jsonishAlphabet: Bytes = wire(#"{{}}[[]],,::""''\\  09-.eE+truefalsnu"#) + [0x0A, 0x09, 0x0D, 0x00, 0x01, 0x7F, 0x80, 0xC3, 0xA9, 0xED, 0xFE]

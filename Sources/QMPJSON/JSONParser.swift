// The parser: QEMU's recursive-descent grammar over one message's tokens,
// written as a loop with an explicit stack so that deep nesting cannot
// overflow a thread's stack. Only the first error is reported.

/// A string compared and hashed by its UTF-8 bytes, as QEMU compares keys
/// (Swift's `==` on String uses canonical equivalence instead).
struct ByteKey: Hashable {
    var string: String

    static func == (a: ByteKey, b: ByteKey) -> Bool { sameBytes(a.string, b.string) }

    func hash(into hasher: inout Hasher) {
        var s = string
        s.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

@inline(__always)
func sameBytes(_ a: String, _ b: String) -> Bool {
    var a = a, b = b
    return a.withUTF8 { x in
        b.withUTF8 { y in
            x.count == y.count && (x.count == 0 || memcmpBytes(x.baseAddress!, y.baseAddress!, x.count))
        }
    }
}

@inline(__always)
func memcmpBytes(_ x: UnsafePointer<UInt8>, _ y: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    var i = 0
    while i &+ 8 <= n {
        if loadWord(x, i) != loadWord(y, i) { return false }
        i &+= 8
    }
    while i < n {
        if x[i] != y[i] { return false }
        i &+= 1
    }
    return true
}

struct ParseFrame {
    enum Role { case arrayElement, objectKey, objectValue }
    var role: Role
    /// Where this container's elements / members start on the scratch stacks.
    var start: Int
    var pendingKey = ""
    /// Built once an object gets big, so duplicate detection stays O(n).
    var keySet: Set<ByteKey>? = nil
}

/// The parser's working storage, kept between messages so that parsing a
/// message allocates little more than the values it returns: elements and
/// members are collected on two flat stacks and each container is created
/// in one allocation of its exact size when it closes.
struct ParseScratch {
    var frames: [ParseFrame] = []
    var values: [JSONValue] = []
    var members: [JSONObject.Member] = []

    mutating func clear() {
        if frames.capacity > 256 { frames = [] } else { frames.removeAll(keepingCapacity: true) }
        if values.capacity > 4096 { values = [] } else { values.removeAll(keepingCapacity: true) }
        if members.capacity > 4096 { members = [] } else { members.removeAll(keepingCapacity: true) }
    }

    /// Whether the object of the top frame already has `key`.
    mutating func topObjectHasKey(_ key: String) -> Bool {
        let top = frames.count &- 1
        let start = frames[top].start
        let count = members.count &- start
        if frames[top].keySet == nil {
            if count < 16 {
                var i = start
                while i < members.count {
                    if sameBytes(members[i].key, key) { return true }
                    i &+= 1
                }
                return false
            }
            var set = Set<ByteKey>(minimumCapacity: count * 2)
            for member in members[start...] { set.insert(ByteKey(string: member.key)) }
            frames[top].keySet = set
        }
        return frames[top].keySet!.contains(ByteKey(string: key))
    }
}

/// A new array holding a copy of `array[start...]`, in storage of its own
/// (`Array(slice)` may share the scratch buffer, which would then be copied
/// when the scratch stack shrinks).
@inline(__always)
func exactCopy<T>(_ array: [T], from start: Int) -> [T] {
    let n = array.count &- start
    if n == 0 { return [] }
    var copy: [T] = []
    copy.reserveCapacity(n)
    array.withUnsafeBufferPointer { source in
        copy.append(contentsOf: UnsafeBufferPointer(rebasing: source[start...]))
    }
    return copy
}

struct TokenParser {
    let text: UnsafeBufferPointer<UInt8>
    let tokens: UnsafeBufferPointer<QueuedToken>
    let longStrings: [String]

    init(text: UnsafeBufferPointer<UInt8>, tokens: UnsafeBufferPointer<QueuedToken>, longStrings: [String] = []) {
        self.text = text
        self.tokens = tokens
        self.longStrings = longStrings
    }

    private func tokenText(_ t: QueuedToken) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: text.baseAddress! + Int(t.start), count: Int(t.length))
    }

    private func failure(_ detail: String) -> JSONParserOutput {
        failure(Array(detail.utf8))
    }

    private func failure(_ detail: [UInt8]) -> JSONParserOutput {
        // QEMU formats the detail into a 1024-byte buffer.
        var message = parseErrorPrefix
        message.append(contentsOf: detail.prefix(1023))
        return .error(ModifiedUTF8.decodeLossy(message))
    }

    /// `scratch` is empty on entry and on return; the caller keeps it
    /// between messages so that its storage is reused.
    mutating func parse(scratch: inout ParseScratch) -> JSONParserOutput {
        let result = parseValue(&scratch)
        if !scratch.frames.isEmpty || !scratch.values.isEmpty || !scratch.members.isEmpty
            || scratch.values.capacity > 4096 || scratch.members.capacity > 4096 {
            scratch.clear()
        }
        return result
    }

    private mutating func parseValue(_ scratch: inout ParseScratch) -> JSONParserOutput {
        let count = tokens.count
        var index = 0
                var value: JSONValue

        while true {
            // A value is required at `index`.
            guard index < count else { return failure("premature EOI") }
            let token = tokens[index]
            switch token.kind {
            case .leftBrace, .leftBracket:
                index &+= 1
                guard index < count else { return failure("premature EOI") }
                let isObject = token.kind == .leftBrace
                if tokens[index].kind == (isObject ? .rightBrace : .rightBracket) {
                    index &+= 1
                    value = isObject ? .object(JSONObject()) : .array([])
                } else {
                    scratch.frames.append(ParseFrame(role: isObject ? .objectKey : .arrayElement,
                                                     start: isObject ? scratch.members.count : scratch.values.count))
                    continue
                }
            case .string:
                switch decodeStringToken(tokenText(token)) {
                case .success(let s): value = .string(s)
                case .failure(let detail): return failure(detail)
                }
                index &+= 1
            case .longString:
                value = .string(longStrings[Int(token.start)])
                index &+= 1
            case .integer:
                value = integerValue(tokenText(token))
                index &+= 1
            case .float:
                value = .double(doubleValue(tokenText(token)))
                index &+= 1
            case .keyword:
                let word = tokenText(token)
                if word.elementsEqual("true".utf8) {
                    value = .bool(true)
                } else if word.elementsEqual("false".utf8) {
                    value = .bool(false)
                } else if word.elementsEqual("null".utf8) {
                    value = .null
                } else {
                    return failure(Array("invalid keyword '".utf8) + Array(word) + [UInt8(ascii: "'")])
                }
                index &+= 1
            default:
                return failure("expecting value")
            }

            // A value is complete: give it to the innermost open container,
            // closing containers as long as their closers follow.
            while true {
                guard !scratch.frames.isEmpty else {
                    return .value(value)
                }
                let top = scratch.frames.count &- 1
                switch scratch.frames[top].role {
                case .arrayElement:
                    scratch.values.append(value)
                    guard index < count else { return failure("premature EOI") }
                    let separator = tokens[index].kind
                    index &+= 1
                    if separator == .rightBracket {
                        let start = scratch.frames.removeLast().start
                        value = .array(exactCopy(scratch.values, from: start))
                        scratch.values.removeSubrange(start...)
                        continue
                    }
                    guard separator == .comma else { return failure("expected separator in list") }
                case .objectKey:
                    guard case .string(let key) = value else {
                        return failure("key is not a string in object")
                    }
                    guard index < count else { return failure("premature EOI") }
                    guard tokens[index].kind == .colon else { return failure("missing : in object pair") }
                    index &+= 1
                    scratch.frames[top].pendingKey = key
                    scratch.frames[top].role = .objectValue
                case .objectValue:
                    let key = scratch.frames[top].pendingKey
                    if scratch.members.count > scratch.frames[top].start {
                        if scratch.topObjectHasKey(key) { return failure("duplicate key") }
                        scratch.frames[top].keySet?.insert(ByteKey(string: key))
                    }
                    scratch.members.append(JSONObject.Member(key: key, value: value))
                    guard index < count else { return failure("premature EOI") }
                    let separator = tokens[index].kind
                    index &+= 1
                    if separator == .rightBrace {
                        let start = scratch.frames.removeLast().start
                        value = .object(JSONObject(uniqueMembers: exactCopy(scratch.members, from: start)))
                        scratch.members.removeSubrange(start...)
                        continue
                    }
                    guard separator == .comma else { return failure("expected separator in dict") }
                    scratch.frames[top].role = .objectKey
                }
                break
            }
        }
    }

    /// Integer token: Int64 if it fits; else UInt64 if not negative and it
    /// fits; else the nearest double.
    private func integerValue(_ digits: UnsafeBufferPointer<UInt8>) -> JSONValue {
        let negative = digits[0] == UInt8(ascii: "-")
        var magnitude: UInt64 = 0
        var overflow = false
        for i in (negative ? 1 : 0)..<digits.count {
            let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(digits[i] &- 0x30))
            if o1 || o2 { overflow = true; break }
            magnitude = s
        }
        if !overflow {
            if negative {
                if magnitude <= UInt64(Int64.max) { return .int(-Int64(magnitude)) }
                if magnitude == UInt64(Int64.max) + 1 { return .int(Int64.min) }
            } else {
                if magnitude <= UInt64(Int64.max) { return .int(Int64(magnitude)) }
                return .uint(magnitude)
            }
        }
        return .double(doubleValue(digits))
    }

    /// strtod: correctly rounded, ±infinity on overflow.
    private func doubleValue(_ digits: UnsafeBufferPointer<UInt8>) -> Double {
        let string = String(decoding: digits, as: UTF8.self)
        if let d = Double(string) { return d }
        // Not reachable for tokens of the number grammar.
        return .nan
    }
}

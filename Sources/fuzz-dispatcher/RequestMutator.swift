import FuzzingSupport
import QMPJSON

/// Structured mutations of requests for the dispatcher fuzzer: the input is
/// read as the agent reads it, one request's tree is changed (a value of
/// another type, a huge number, a long string, a member dropped or added, a
/// different command, deep nesting, requests duplicated or dropped), the
/// requests are written back, and the bytes may then get invalid UTF-8 in a
/// string, a 0xFF anywhere, or lose their end. Inputs that hold no request
/// are left to libFuzzer's byte mutations.
struct RequestMutator {
    var random: SplitMix64
    /// Names a new member or a command may take.
    let commandNames: [String]

    init(seed: UInt32, commandNames: [String]) {
        random = SplitMix64(seed: UInt64(seed))
        self.commandNames = commandNames
    }

    /// The mutated input, or nil to leave this input to byte mutations.
    mutating func mutate(_ input: [UInt8], maxSize: Int) -> [UInt8]? {
        var requests = Self.requests(in: input)
        guard !requests.isEmpty else { return nil }
        let names = Self.memberNames(requests) + ["execute", "arguments", "id"]
        let index = random.below(requests.count)
        switch random.below(8) {
        case 0:
            requests.insert(requests[index], at: random.below(requests.count + 1))
        case 1 where requests.count > 1:
            requests.remove(at: index)
        case 2:
            requests[index] = with(requests[index], member: "execute", .string(random.element(commandNames)))
        default:
            requests[index] = mutateNode(requests[index], names: names, depth: 0)
        }
        var output: [UInt8] = []
        for request in requests {
            JSONWriter.append(request, to: &output)
            output += random.element([[], [0x0A], [0x20]])
        }
        switch random.below(6) {
        case 0: output.insert(0xFF, at: random.below(output.count + 1))
        case 1: insertInvalidUTF8(&output)
        case 2: output.removeLast(random.below(output.count) + 1)  // a partial message
        default: break
        }
        return output.count <= maxSize ? output : nil
    }

    /// One request of `first` grafted with requests or values of `second`.
    mutating func crossOver(_ first: [UInt8], _ second: [UInt8], maxSize: Int) -> [UInt8]? {
        let a = Self.requests(in: first), b = Self.requests(in: second)
        guard !a.isEmpty, !b.isEmpty else { return nil }
        var result = a
        if random.below(2) == 0 {
            result.insert(random.element(b), at: random.below(result.count + 1))
        } else {
            let donor = random.element(Self.nodes(of: random.element(b)))
            let index = random.below(result.count)
            result[index] = replacingRandomNode(result[index], with: donor)
        }
        var output: [UInt8] = []
        for request in result { JSONWriter.append(request, to: &output) }
        return output.count <= maxSize ? output : nil
    }

    // MARK: Trees

    private mutating func mutateNode(_ value: JSONValue, names: [String], depth: Int) -> JSONValue {
        // Descend into a child now and then, else change this node.
        switch value {
        case .object(var object) where !object.isEmpty && random.below(3) != 0:
            let member = random.element(object.members)
            object[member.key] = mutateNode(member.value, names: names, depth: depth + 1)
            return .object(object)
        case .array(var array) where !array.isEmpty && random.below(3) != 0:
            let index = random.below(array.count)
            array[index] = mutateNode(array[index], names: names, depth: depth + 1)
            return .array(array)
        default:
            break
        }
        switch (value, random.below(4)) {
        case (.object(var object), 0) where !object.isEmpty:
            object[random.element(object.keys)] = nil
            return .object(object)
        case (.object(var object), 1):
            object[random.element(names + [randomName()])] = strangeValue(names: names)
            return .object(object)
        case (.array(var array), 0) where !array.isEmpty:
            array.remove(at: random.below(array.count))
            return .array(array)
        case (.array(var array), 1):
            array.insert(random.below(2) == 0 ? random.element(array + [.null]) : strangeValue(names: names),
                         at: random.below(array.count + 1))
            return .array(array)
        default:
            return random.below(8) == 0 ? nested(value) : strangeValue(names: names)
        }
    }

    /// Values that arguments are wrong, or only just right, with.
    private mutating func strangeValue(names: [String]) -> JSONValue {
        switch random.below(16) {
        case 0: return .null
        case 1: return .bool(random.below(2) == 0)
        case 2: return .int(random.element([0, -1, 1, 1000, 1001, Int64(Int32.max), Int64(Int32.max) + 1,
                                            Int64(UInt32.max) + 1, .max, .min, .max - 1]))
        case 3: return .uint(random.element([UInt64(Int64.max) + 1, .max]))
        case 4: return .double(random.element([0.5, -0.0, 1e308, -1e308, .leastNonzeroMagnitude, 9.3e18, 1.8446744073709552e19]))
        case 5: return .int(Int64(bitPattern: random.next()))
        case 6: return .string(longString())
        case 7: return .string(random.element(commandNames))
        case 8: return .string(random.element(["", "\u{0}", "r", "w+", "a+b", "set", "cur", "end", "true", "merged",
                                               "separated", "stdout", "aGVsbG8K", "====", "é\u{10FFFF}", "x\ny"]))
        case 9: return .string(randomName())
        case 10: return .array([])
        case 11: return .object(JSONObject())
        case 12: return .array((0..<random.below(5)).map { _ in .string(randomName()) })
        case 13: return .array((0..<random.below(5)).map { _ in .int(Int64(random.below(2000)) - 2) })
        case 14: return .object(JSONObject([(random.element(names)): .int(Int64(random.below(1100)))]))
        default: return nested(.int(1))
        }
    }

    /// `value` inside arrays and objects, around QEMU's nesting limit of 1024.
    private mutating func nested(_ value: JSONValue) -> JSONValue {
        let depth = random.element([1, 2, 30, 1022, 1023, 1024, 1025, 1500])
        var result = value
        for level in 0..<depth {
            result = level % 2 == 0 ? .array([result]) : .object(JSONObject(["n": result]))
        }
        return result
    }

    private mutating func longString() -> String {
        let unit = random.element(["A", "é", "\u{1F600}", "\\", "QUJD", "\u{0}", "\n"])
        return String(repeating: unit, count: random.element([64, 4095, 4096, 65_536, 200_000]))
    }

    private mutating func randomName() -> String {
        String((0..<random.below(12)).map { _ in random.element(Array("abcdefghijklmnopqrstuvwxyz-_01")) })
    }

    private func with(_ value: JSONValue, member: String, _ newValue: JSONValue) -> JSONValue {
        guard case .object(var object) = value else { return value }
        object[member] = newValue
        return .object(object)
    }

    private mutating func replacingRandomNode(_ value: JSONValue, with donor: JSONValue) -> JSONValue {
        switch value {
        case .object(var object) where !object.isEmpty && random.below(3) != 0:
            let key = random.element(object.keys)
            object[key] = replacingRandomNode(object[key]!, with: donor)
            return .object(object)
        case .array(var array) where !array.isEmpty && random.below(3) != 0:
            let index = random.below(array.count)
            array[index] = replacingRandomNode(array[index], with: donor)
            return .array(array)
        default:
            return donor
        }
    }

    // MARK: Bytes

    /// Puts an invalid UTF-8 sequence right after a quote (inside a string
    /// most of the time).
    private mutating func insertInvalidUTF8(_ bytes: inout [UInt8]) {
        let quotes = bytes.indices.filter { bytes[$0] == UInt8(ascii: "\"") }
        guard !quotes.isEmpty else { return }
        let sequence: [UInt8] = random.element([
            [0x80], [0xC0, 0x80], [0xC1, 0xBF], [0xC3], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF],
            [0xF4, 0x90, 0x80, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0xFE], [0xEF, 0xBF, 0xBF],
        ])
        bytes.insert(contentsOf: sequence, at: random.element(quotes) + 1)
    }

    // MARK: Reading inputs

    /// The objects the agent's parser finds in `bytes`.
    static func requests(in bytes: [UInt8]) -> [JSONValue] {
        var parser = JSONMessageParser()
        return parser.feed(bytes).compactMap { output in
            if case .value(let value) = output, case .object = value { value } else { nil }
        }
    }

    static func memberNames(_ values: [JSONValue]) -> [String] {
        values.flatMap(nodes).flatMap { node -> [String] in
            if case .object(let object) = node { object.keys } else { [] }
        }
    }

    static func nodes(of value: JSONValue) -> [JSONValue] {
        switch value {
        case .object(let object): [value] + object.members.flatMap { nodes(of: $0.value) }
        case .array(let array): [value] + array.flatMap(nodes)
        default: [value]
        }
    }
}

/// Draws for the mutations, seeded by libFuzzer.
extension SplitMix64 {
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
    mutating func element<T>(_ items: [T]) -> T { items[below(items.count)] }
}

#if FUZZING
@_silgen_name("LLVMFuzzerMutate")
private nonisolated func libFuzzerMutate(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int) -> Int

/// Half of the mutations are structured, the other half libFuzzer's own.
@_cdecl("LLVMFuzzerCustomMutator")
public nonisolated func customMutator(
    _ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int, _ seed: UInt32
) -> Int {
    if seed % 2 == 0 {
        let input = Array(UnsafeBufferPointer(start: data, count: size))
        let result = MainActor.assumeIsolated {
            var mutator = RequestMutator(seed: seed, commandNames: DispatcherFuzzer.shared.commandNames)
            return mutator.mutate(input, maxSize: maxSize)
        }
        if let result {
            result.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: $0.count) }
            return result.count
        }
    }
    return libFuzzerMutate(data, size, maxSize)
}

@_cdecl("LLVMFuzzerCustomCrossOver")
public nonisolated func customCrossOver(
    _ data1: UnsafePointer<UInt8>, _ size1: Int, _ data2: UnsafePointer<UInt8>, _ size2: Int,
    _ out: UnsafeMutablePointer<UInt8>, _ maxOutSize: Int, _ seed: UInt32
) -> Int {
    let first = Array(UnsafeBufferPointer(start: data1, count: size1))
    let second = Array(UnsafeBufferPointer(start: data2, count: size2))
    let result = MainActor.assumeIsolated {
        var mutator = RequestMutator(seed: seed, commandNames: DispatcherFuzzer.shared.commandNames)
        return mutator.crossOver(first, second, maxSize: maxOutSize)
    }
    guard let result else { return 0 }
    result.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: $0.count) }
    return result.count
}
#endif

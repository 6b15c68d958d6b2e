import QMPJSON

/// Turns a command's Encodable result into a JSON value. Members keep the
/// order the result type encodes them in (its declaration order), which is the
/// order QEMU inserts them in; the writer derives QEMU's printed order from it.
/// Optional members that are nil are left out, as QAPI leaves out absent ones.
enum QAPIResultEncoder {
    static func encode<T: Encodable>(_ value: T) -> JSONValue {
        do {
            return try jsonValue(of: value)
        } catch {
            // Our result types only throw through Encodable's signature.
            preconditionFailure("result encoding failed: \(error)")
        }
    }
}

/// One container under construction. Values are stored finished as they are
/// encoded; only a container nested through `nestedContainer` or
/// `superEncoder`, which is filled after it was handed out, stays a node
/// until the value is taken. Each key is encoded once (synthesized
/// conformances do so), so members are appended without a lookup.
nonisolated private final class EncodedNode {
    enum Kind {
        case unset, single(JSONValue), object, array
    }

    var kind: Kind = .unset
    var members: [JSONObject.Member] = []
    var elements: [JSONValue] = []
    /// Nested containers and where their values go in `members`/`elements`.
    var nested: [(index: Int, node: EncodedNode)] = []

    var value: JSONValue {
        switch kind {
        case .unset:
            return .object(JSONObject())
        case .single(let value):
            return value
        case .object:
            for (index, node) in nested { members[index].value = node.value }
            return .object(JSONObject(uniqueMembers: members))
        case .array:
            for (index, node) in nested { elements[index] = node.value }
            return .array(elements)
        }
    }

    func makeObject() { if case .object = kind {} else { kind = .object } }
    func makeArray() { if case .array = kind {} else { kind = .array } }

    func append(_ key: String, _ value: JSONValue) {
        members.append(JSONObject.Member(key: key, value: value))
    }

    func append(_ value: JSONValue) {
        elements.append(value)
    }

    func nestedMember(_ key: String) -> EncodedNode {
        let node = EncodedNode()
        nested.append((members.count, node))
        append(key, .null)
        return node
    }

    func nestedElement() -> EncodedNode {
        let node = EncodedNode()
        nested.append((elements.count, node))
        append(.null)
        return node
    }
}

@inline(__always)
nonisolated private func integer<I: BinaryInteger>(_ value: I) -> JSONValue {
    if let int = Int64(exactly: value) { return .int(int) }
    return .uint(UInt64(value))
}

// Comparing metatypes is cheap; a failed dynamic cast per candidate type
// cost more than the rest of the encoding of a large result. (Containers
// get the common scalars through their typed overloads; arrays and generic
// code come through here.)
nonisolated private func jsonValue<T: Encodable>(of value: T) throws -> JSONValue {
    if T.self == JSONValue.self { return value as! JSONValue }
    if T.self == EmptyResult.self { return .object(JSONObject()) }
    if T.self == String.self { return .string(value as! String) }
    if T.self == Int.self { return integer(value as! Int) }
    if T.self == Int64.self { return .int(value as! Int64) }
    if T.self == Int32.self { return .int(Int64(value as! Int32)) }
    if T.self == UInt64.self { return integer(value as! UInt64) }
    if T.self == UInt32.self { return .int(Int64(value as! UInt32)) }
    if T.self == UInt16.self { return .int(Int64(value as! UInt16)) }
    if T.self == Double.self { return .double(value as! Double) }
    if T.self == Bool.self { return .bool(value as! Bool) }
    let encoder = ResultValueEncoder()
    try value.encode(to: encoder)
    return encoder.storage.value
}

nonisolated private final class ResultValueEncoder: Encoder {
    let storage: EncodedNode
    init(storage: EncodedNode = EncodedNode()) { self.storage = storage }

    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        storage.makeObject()
        return KeyedEncodingContainer(ResultKeyedContainer<Key>(node: storage))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        storage.makeArray()
        return ResultUnkeyedContainer(node: storage)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        ResultSingleValueContainer(node: storage)
    }
}

nonisolated private struct ResultKeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: EncodedNode
    var codingPath: [any CodingKey] { [] }

    func encodeNil(forKey key: Key) { node.append(key.stringValue, .null) }
    func encode(_ value: Bool, forKey key: Key) { node.append(key.stringValue, .bool(value)) }
    func encode(_ value: String, forKey key: Key) { node.append(key.stringValue, .string(value)) }
    func encode(_ value: Double, forKey key: Key) { node.append(key.stringValue, .double(value)) }
    func encode(_ value: Int, forKey key: Key) { node.append(key.stringValue, integer(value)) }
    func encode(_ value: Int32, forKey key: Key) { node.append(key.stringValue, integer(value)) }
    func encode(_ value: Int64, forKey key: Key) { node.append(key.stringValue, .int(value)) }
    func encode(_ value: UInt16, forKey key: Key) { node.append(key.stringValue, integer(value)) }
    func encode(_ value: UInt32, forKey key: Key) { node.append(key.stringValue, integer(value)) }
    func encode(_ value: UInt64, forKey key: Key) { node.append(key.stringValue, integer(value)) }
    func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        node.append(key.stringValue, try jsonValue(of: value))
    }
    func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let child = node.nestedMember(key.stringValue)
        child.makeObject()
        return KeyedEncodingContainer(ResultKeyedContainer<NestedKey>(node: child))
    }
    func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let child = node.nestedMember(key.stringValue)
        child.makeArray()
        return ResultUnkeyedContainer(node: child)
    }
    func superEncoder() -> any Encoder { ResultValueEncoder(storage: node.nestedMember("super")) }
    func superEncoder(forKey key: Key) -> any Encoder { ResultValueEncoder(storage: node.nestedMember(key.stringValue)) }
}

nonisolated private struct ResultUnkeyedContainer: UnkeyedEncodingContainer {
    let node: EncodedNode
    var codingPath: [any CodingKey] { [] }
    var count: Int { node.elements.count }

    func encodeNil() { node.append(.null) }
    func encode(_ value: Bool) { node.append(.bool(value)) }
    func encode(_ value: String) { node.append(.string(value)) }
    func encode(_ value: Int64) { node.append(.int(value)) }
    func encode<T: Encodable>(_ value: T) throws { node.append(try jsonValue(of: value)) }
    func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let child = node.nestedElement()
        child.makeObject()
        return KeyedEncodingContainer(ResultKeyedContainer<NestedKey>(node: child))
    }
    func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let child = node.nestedElement()
        child.makeArray()
        return ResultUnkeyedContainer(node: child)
    }
    func superEncoder() -> any Encoder { ResultValueEncoder(storage: node.nestedElement()) }
}

nonisolated private struct ResultSingleValueContainer: SingleValueEncodingContainer {
    let node: EncodedNode
    var codingPath: [any CodingKey] { [] }

    func encodeNil() { node.kind = .single(.null) }
    func encode<T: Encodable>(_ value: T) throws { node.kind = .single(try jsonValue(of: value)) }
}

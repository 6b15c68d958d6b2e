import QMPJSON

/// Turns a command's Encodable result into a JSON value. Members keep the
/// order the result type encodes them in (its declaration order), which is the
/// order QEMU inserts them in; the writer derives QEMU's printed order from it.
/// Optional members that are nil are left out, as QAPI leaves out absent ones.
enum QAPIResultEncoder {
    static func encode<T: Encodable>(_ value: T) -> JSONValue {
        if let json = value as? JSONValue { return json }
        let encoder = ResultValueEncoder()
        do {
            try value.encode(to: encoder)
        } catch {
            // Our result types only throw through Encodable's signature.
            preconditionFailure("result encoding failed: \(error)")
        }
        return encoder.storage.value
    }
}

/// A tree under construction; containers hand out references into it so that
/// nested containers can keep filling their part after they were created.
nonisolated private final class EncodedNode {
    enum Kind {
        case unset
        case single(JSONValue)
        case object([(String, EncodedNode)])
        case array([EncodedNode])
    }

    var kind: Kind = .unset

    var value: JSONValue {
        switch kind {
        case .unset: return .object(JSONObject())
        case .single(let value): return value
        case .object(let members):
            var object = JSONObject()
            for (key, node) in members { object[key] = node.value }
            return .object(object)
        case .array(let nodes): return .array(nodes.map(\.value))
        }
    }

    func member(_ key: String) -> EncodedNode {
        let node = EncodedNode()
        if case .object(var members) = kind {
            kind = .unset  // keep the array uniquely referenced while appending
            members.append((key, node))
            kind = .object(members)
        } else {
            kind = .object([(key, node)])
        }
        return node
    }

    func element() -> EncodedNode {
        let node = EncodedNode()
        if case .array(var nodes) = kind {
            kind = .unset
            nodes.append(node)
            kind = .array(nodes)
        } else {
            kind = .array([node])
        }
        return node
    }

    func makeObject() { if case .object = kind {} else { kind = .object([]) } }
    func makeArray() { if case .array = kind {} else { kind = .array([]) } }
}

// Comparing metatypes is cheap; a failed dynamic cast per candidate type
// cost more than the rest of the encoding of a large result.
nonisolated private func jsonValue<T: Encodable>(of value: T) throws -> JSONValue {
    if T.self == JSONValue.self { return value as! JSONValue }
    if T.self == Int.self { return .int(Int64(value as! Int)) }
    if T.self == Int64.self { return .int(value as! Int64) }
    if T.self == Int32.self { return .int(Int64(value as! Int32)) }
    if T.self == UInt64.self {
        let int = value as! UInt64
        return int <= UInt64(Int64.max) ? .int(Int64(int)) : .uint(int)
    }
    if T.self == UInt32.self { return .int(Int64(value as! UInt32)) }
    if T.self == UInt16.self { return .int(Int64(value as! UInt16)) }
    if T.self == Double.self { return .double(value as! Double) }
    if T.self == Bool.self { return .bool(value as! Bool) }
    if T.self == String.self { return .string(value as! String) }
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

    func encodeNil(forKey key: Key) { node.member(key.stringValue).kind = .single(.null) }
    func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        node.member(key.stringValue).kind = .single(try jsonValue(of: value))
    }
    func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let child = node.member(key.stringValue)
        child.makeObject()
        return KeyedEncodingContainer(ResultKeyedContainer<NestedKey>(node: child))
    }
    func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let child = node.member(key.stringValue)
        child.makeArray()
        return ResultUnkeyedContainer(node: child)
    }
    func superEncoder() -> any Encoder { ResultValueEncoder(storage: node.member("super")) }
    func superEncoder(forKey key: Key) -> any Encoder { ResultValueEncoder(storage: node.member(key.stringValue)) }
}

nonisolated private struct ResultUnkeyedContainer: UnkeyedEncodingContainer {
    let node: EncodedNode
    var codingPath: [any CodingKey] { [] }
    var count: Int {
        if case .array(let nodes) = node.kind { return nodes.count }
        return 0
    }

    func encodeNil() { node.element().kind = .single(.null) }
    func encode<T: Encodable>(_ value: T) throws { node.element().kind = .single(try jsonValue(of: value)) }
    func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let child = node.element()
        child.makeObject()
        return KeyedEncodingContainer(ResultKeyedContainer<NestedKey>(node: child))
    }
    func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let child = node.element()
        child.makeArray()
        return ResultUnkeyedContainer(node: child)
    }
    func superEncoder() -> any Encoder { ResultValueEncoder(storage: node.element()) }
}

nonisolated private struct ResultSingleValueContainer: SingleValueEncodingContainer {
    let node: EncodedNode
    var codingPath: [any CodingKey] { [] }

    func encodeNil() { node.kind = .single(.null) }
    func encode<T: Encodable>(_ value: T) throws { node.kind = .single(try jsonValue(of: value)) }
}

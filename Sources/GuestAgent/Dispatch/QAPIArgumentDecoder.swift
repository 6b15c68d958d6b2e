import QMPJSON

/// A command argument that is an enumeration: QEMU checks it is a string and
/// names the rejected value.
package protocol QAPIEnum: RawRepresentable, Decodable, Sendable where RawValue == String {}

extension QAPIEnum {
    // The argument decoder's checks come through the type itself, not
    // through a cast of the type to `any QAPIEnum.Type` in the decoder: such
    // a cast scans every protocol conformance of the binary the first time
    // each argument type is decoded (a few hundred thousand instructions and
    // hundreds of KiB of metadata pages made resident by the first request).
    // Casting the decoder to our class compares one pointer.
    package nonisolated init(from decoder: any Decoder) throws {
        if let decoder = decoder as? ArgumentValueDecoder {
            self = try decoder.decodeEnum(Self.self)
            return
        }
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let member = Self(rawValue: text) else {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "no member \(text)"))
        }
        self = member
    }
}

/// A command argument that may take one of several JSON types (a QAPI
/// alternate); a value of any other type is rejected with the alternate's name.
/// Conforming types decode their branch in `init(alternateFrom:)`, which is
/// called only with a value of one of the accepted types.
nonisolated package protocol QAPIAlternate: Decodable {
    static var qapiTypeName: String { get }
    static func accepts(_ value: JSONValue) -> Bool
    init(alternateFrom decoder: any Decoder) throws
}

extension QAPIAlternate {
    package nonisolated init(from decoder: any Decoder) throws {
        if let decoder = decoder as? ArgumentValueDecoder, !Self.accepts(decoder.value) {
            throw QMPError.invalidParameterType(decoder.name, expected: Self.qapiTypeName)
        }
        try self.init(alternateFrom: decoder)
    }
}

extension Decoder {
    /// The JSON value being decoded, for an alternate to pick its branch by.
    nonisolated var qapiValue: JSONValue { (self as? ArgumentValueDecoder)?.value ?? .null }
}

/// Decodes command arguments from a JSON object with the checks and error
/// texts of QEMU's QObject input visitor: members are visited in declaration
/// order, the first failure wins, and members nobody asked for are reported
/// only once all declared members were fine.
enum QAPIArgumentDecoder {
    static func decode<T: Decodable>(_ type: T.Type, from arguments: JSONObject) throws(QMPError) -> T {
        // Most requests take no arguments and bring none: nothing to check.
        if T.self == NoArguments.self && arguments.isEmpty { return NoArguments() as! T }
        do {
            return try ArgumentValueDecoder(value: .object(arguments), path: []).decodeChecked(type)
        } catch let error as QMPError {
            throw error
        } catch {
            // Only Decodable conformances outside this module could throw
            // something else; report it in QEMU's generic shape.
            throw QMPError("\(error)")
        }
    }
}

/// Where a value sits in the arguments: member names and list indexes.
private enum PathComponent {
    case member(String)
    case index(Int)
}

/// QEMU's "full name" of a member: `outer.inner`, `list[2]`, `list[2].inner`.
nonisolated private func fullName(_ path: [PathComponent]) -> String {
    var name = ""
    for component in path {
        switch component {
        case .member(let member):
            if !name.isEmpty { name += "." }
            name += member
        case .index(let index):
            name += "[\(index)]"
        }
    }
    return name.isEmpty ? "null" : name
}

/// The members of one object that a decoder has asked for.
private final class VisitedMembers {
    var names = Set<String>()
    // Classes of a MainActor module get an isolated deinit, which asks the
    // concurrency runtime whether it runs on the main executor (code pages
    // of their own, and instructions per request); these two hold only
    // values and die on the main thread anyway.
    nonisolated deinit {}
}

private final class ArgumentValueDecoder: Decoder {
    let value: JSONValue
    let path: [PathComponent]
    /// Set when the value was decoded as a struct, to check for extra members.
    var visited: VisitedMembers?

    init(value: JSONValue, path: [PathComponent]) {
        self.value = value
        self.path = path
    }

    nonisolated deinit {}

    var codingPath: [any CodingKey] {
        path.map {
            switch $0 {
            case .member(let name): AnyCodingKey(stringValue: name)
            case .index(let index): AnyCodingKey(intValue: index)
            }
        }
    }

    var userInfo: [CodingUserInfoKey: Any] { [:] }

    nonisolated var name: String { fullName(path) }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let object) = value else {
            throw QMPError.invalidParameterType(name, expected: "object")
        }
        let visited = self.visited ?? VisitedMembers()
        self.visited = visited
        return KeyedDecodingContainer(ArgumentKeyedContainer<Key>(object: object, path: path, visited: visited))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let elements) = value else {
            throw QMPError.invalidParameterType(name, expected: "array")
        }
        return ArgumentUnkeyedContainer(elements: elements, path: path)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        ArgumentSingleValueContainer(decoder: self)
    }

    /// Decodes `type`, then rejects members of a struct that it did not visit.
    func decodeChecked<T: Decodable>(_ type: T.Type) throws -> T {
        if T.self == JSONValue.self { return value as! T }
        let result = try T(from: self)
        if let visited, case .object(let object) = value,
           let extra = firstUnvisitedMember(of: object, visited: visited.names) {
            throw QMPError.unexpectedParameter(fullName(path + [.member(extra)]))
        }
        return result
    }

    nonisolated func decodeEnum<E: QAPIEnum>(_ type: E.Type) throws -> E {
        let text = try decodeString()
        guard let member = E(rawValue: text) else {
            throw QMPError.enumValueNotAccepted(name, value: text)
        }
        return member
    }

    nonisolated func decodeString() throws -> String {
        guard case .string(let string) = value else {
            throw QMPError.invalidParameterType(name, expected: "string")
        }
        return string
    }

    func decodeBool() throws -> Bool {
        guard case .bool(let bool) = value else {
            throw QMPError.invalidParameterType(name, expected: "boolean")
        }
        return bool
    }

    /// QEMU's `number`: any JSON number.
    func decodeDouble() throws -> Double {
        switch value {
        case .int(let int): return Double(int)
        case .uint(let uint): return Double(uint)
        case .double(let double): return double
        default: throw QMPError.invalidParameterType(name, expected: "number")
        }
    }

    /// QEMU's signed integers accept only values held as int64; the sized ones
    /// then check their range.
    func decodeSigned<I: FixedWidthInteger & SignedInteger>(_ type: I.Type, typeName: String) throws -> I {
        guard case .int(let int) = value else {
            throw QMPError.invalidParameterType(name, expected: "integer")
        }
        guard let result = I(exactly: int) else {
            throw QMPError.invalidParameterValue(name, expects: typeName)
        }
        return result
    }

    /// QEMU's unsigned integers accept a uint64, or an int64 that wraps
    /// (so -1 is 18446744073709551615); anything else "expects uint64".
    func decodeUnsigned<U: FixedWidthInteger & UnsignedInteger>(_ type: U.Type, typeName: String) throws -> U {
        let wide: UInt64
        switch value {
        case .uint(let uint): wide = uint
        case .int(let int): wide = UInt64(bitPattern: int)
        default: throw QMPError.invalidParameterValue(name, expects: "uint64")
        }
        guard let result = U(exactly: wide) else {
            throw QMPError.invalidParameterValue(name, expects: typeName)
        }
        return result
    }
}

/// The member QEMU reports as unexpected when several are: the first one in
/// the iteration order of the GLib hash table the visitor keeps them in.
private func firstUnvisitedMember(of object: JSONObject, visited: Set<String>) -> String? {
    let keys = object.qdictOrderedMembers.map(\.key)
    let unvisited = keys.filter { !visited.contains($0) }
    guard unvisited.count > 1 else { return unvisited.first }
    return glibHashTableOrder(inserting: keys, removing: visited).first
}

private struct ArgumentKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let object: JSONObject
    let path: [PathComponent]
    let visited: VisitedMembers

    var codingPath: [any CodingKey] { ArgumentValueDecoder(value: .null, path: path).codingPath }
    var allKeys: [Key] { object.keys.compactMap(Key.init(stringValue:)) }

    func contains(_ key: Key) -> Bool { object[key.stringValue] != nil }

    private func member(_ key: Key) throws -> ArgumentValueDecoder {
        guard let value = object[key.stringValue] else {
            throw QMPError.missingParameter(fullName(path + [.member(key.stringValue)]))
        }
        visited.names.insert(key.stringValue)
        return ArgumentValueDecoder(value: value, path: path + [.member(key.stringValue)])
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        guard let value = object[key.stringValue] else { return true }
        visited.names.insert(key.stringValue)
        return value == .null
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try member(key).decodeBool() }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try member(key).decodeString() }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try member(key).decodeDouble() }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { Float(try member(key).decodeDouble()) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try member(key).decodeSigned(Int.self, typeName: "int64") }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try member(key).decodeSigned(Int8.self, typeName: "int8") }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try member(key).decodeSigned(Int16.self, typeName: "int16") }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try member(key).decodeSigned(Int32.self, typeName: "int32") }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try member(key).decodeSigned(Int64.self, typeName: "int64") }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try member(key).decodeUnsigned(UInt.self, typeName: "uint64") }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try member(key).decodeUnsigned(UInt8.self, typeName: "uint8") }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try member(key).decodeUnsigned(UInt16.self, typeName: "uint16") }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try member(key).decodeUnsigned(UInt32.self, typeName: "uint32") }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try member(key).decodeUnsigned(UInt64.self, typeName: "uint64") }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try member(key).decodeChecked(type) }

    // An optional member is absent only when its key is; a present `null`
    // is checked against the member's type like any other value, as QEMU does.
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { contains(key) ? try decode(type, forKey: key) : nil }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { contains(key) ? try decode(type, forKey: key) : nil }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { contains(key) ? try decode(type, forKey: key) : nil }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { contains(key) ? try decode(type, forKey: key) : nil }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { contains(key) ? try decode(type, forKey: key) : nil }
    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { contains(key) ? try decode(type, forKey: key) : nil }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? { contains(key) ? try decode(type, forKey: key) : nil }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try member(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try member(key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { ArgumentValueDecoder(value: .object(object), path: path) }
    func superDecoder(forKey key: Key) throws -> any Decoder { try member(key) }
}

private struct ArgumentUnkeyedContainer: UnkeyedDecodingContainer {
    let elements: [JSONValue]
    let path: [PathComponent]
    var currentIndex = 0

    init(elements: [JSONValue], path: [PathComponent]) {
        self.elements = elements
        self.path = path
    }

    var codingPath: [any CodingKey] { ArgumentValueDecoder(value: .null, path: path).codingPath }
    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    private mutating func next() throws -> ArgumentValueDecoder {
        guard !isAtEnd else {
            throw QMPError("Parameter '\(fullName(path + [.index(currentIndex)]))' is missing")
        }
        defer { currentIndex += 1 }
        return ArgumentValueDecoder(value: elements[currentIndex], path: path + [.index(currentIndex)])
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, elements[currentIndex] == .null else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try next().decodeBool() }
    mutating func decode(_ type: String.Type) throws -> String { try next().decodeString() }
    mutating func decode(_ type: Double.Type) throws -> Double { try next().decodeDouble() }
    mutating func decode(_ type: Float.Type) throws -> Float { Float(try next().decodeDouble()) }
    mutating func decode(_ type: Int.Type) throws -> Int { try next().decodeSigned(Int.self, typeName: "int64") }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next().decodeSigned(Int8.self, typeName: "int8") }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next().decodeSigned(Int16.self, typeName: "int16") }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next().decodeSigned(Int32.self, typeName: "int32") }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next().decodeSigned(Int64.self, typeName: "int64") }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next().decodeUnsigned(UInt.self, typeName: "uint64") }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next().decodeUnsigned(UInt8.self, typeName: "uint8") }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next().decodeUnsigned(UInt16.self, typeName: "uint16") }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next().decodeUnsigned(UInt32.self, typeName: "uint32") }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next().decodeUnsigned(UInt64.self, typeName: "uint64") }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().decodeChecked(type) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try next().unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder { try next() }
}

private struct ArgumentSingleValueContainer: SingleValueDecodingContainer {
    let decoder: ArgumentValueDecoder

    var codingPath: [any CodingKey] { decoder.codingPath }

    func decodeNil() -> Bool { decoder.value == .null }
    func decode(_ type: Bool.Type) throws -> Bool { try decoder.decodeBool() }
    func decode(_ type: String.Type) throws -> String { try decoder.decodeString() }
    func decode(_ type: Double.Type) throws -> Double { try decoder.decodeDouble() }
    func decode(_ type: Float.Type) throws -> Float { Float(try decoder.decodeDouble()) }
    func decode(_ type: Int.Type) throws -> Int { try decoder.decodeSigned(Int.self, typeName: "int64") }
    func decode(_ type: Int8.Type) throws -> Int8 { try decoder.decodeSigned(Int8.self, typeName: "int8") }
    func decode(_ type: Int16.Type) throws -> Int16 { try decoder.decodeSigned(Int16.self, typeName: "int16") }
    func decode(_ type: Int32.Type) throws -> Int32 { try decoder.decodeSigned(Int32.self, typeName: "int32") }
    func decode(_ type: Int64.Type) throws -> Int64 { try decoder.decodeSigned(Int64.self, typeName: "int64") }
    func decode(_ type: UInt.Type) throws -> UInt { try decoder.decodeUnsigned(UInt.self, typeName: "uint64") }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try decoder.decodeUnsigned(UInt8.self, typeName: "uint8") }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try decoder.decodeUnsigned(UInt16.self, typeName: "uint16") }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try decoder.decodeUnsigned(UInt32.self, typeName: "uint32") }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try decoder.decodeUnsigned(UInt64.self, typeName: "uint64") }
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try ArgumentValueDecoder(value: decoder.value, path: decoder.path).decodeChecked(type)
    }
}

/// A JSON value as QEMU's JSON dialect holds it.
///
/// Integers keep QEMU's three-way split: a literal that fits in Int64 is `.int`,
/// a non-negative literal that only fits in UInt64 is `.uint`, anything else is
/// `.double`. Strings are valid Unicode; U+0000 is allowed (QEMU stores it as
/// the overlong pair C0 80 and prints it as `\u0000`).
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// A JSON object that remembers the order its members were inserted in.
///
/// QEMU keeps objects in a hash table and prints them in bucket order
/// (see `JSONObject.qdictOrderedMembers`); the insertion order is what that order
/// is derived from, so it is kept here.
public struct JSONObject: Equatable, Sendable {
    public struct Member: Equatable, Sendable {
        public var key: String
        public var value: JSONValue
        public init(key: String, value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    /// Members in insertion order. Keys are unique.
    public private(set) var members: [Member] = []

    public init() {}

    public init(_ pairs: KeyValuePairs<String, JSONValue>) {
        for (key, value) in pairs { self[key] = value }
    }

    public var count: Int { members.count }
    public var isEmpty: Bool { members.isEmpty }
    public var keys: [String] { members.map(\.key) }

    /// Reading finds a member; writing replaces it in place or appends a new one;
    /// writing nil removes it. Keys are compared byte for byte (as QEMU's
    /// `strcmp`), not by Unicode canonical equivalence.
    public subscript(key: String) -> JSONValue? {
        get { members.first { sameBytes($0.key, key) }?.value }
        set {
            let index = members.firstIndex { sameBytes($0.key, key) }
            switch (index, newValue) {
            case let (index?, value?): members[index].value = value
            case let (index?, nil): members.remove(at: index)
            case let (nil, value?): members.append(Member(key: key, value: value))
            case (nil, nil): break
            }
        }
    }

    /// Members the caller knows to have unique keys (the parser, the
    /// agent's result encoder).
    public init(uniqueMembers: [Member]) {
        members = uniqueMembers
    }

    /// Appends a member whose key the caller knows to be new (the parser
    /// checks duplicates itself, in bulk).
    public mutating func appendUnchecked(key: String, value: JSONValue) {
        members.append(Member(key: key, value: value))
    }
}

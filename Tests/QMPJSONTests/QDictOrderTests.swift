import FuzzingSupport
import Testing
import QMPJSON

// QEMU's QDict: its hash buckets and the iteration order they give, which is
// the order of the members in qemu-ga's replies.

@Suite struct QDictOrder {
    @Test(arguments: [
        ("enabled", 33), ("name", 39), ("exec-oob", 162), ("version", 184), ("class", 211),
        ("execute", 299), ("desc", 377), ("return", 401), ("arguments", 447),
        ("success-response", 472), ("supported_commands", 484), ("id", 486), ("error", 489),
    ])
    func bucketTable(key: String, bucket: Int) {
        #expect(JSONObject.qdictBucket(of: key) == bucket)
    }

    @Test func exitedSharesTheBucketOfId() {
        #expect(JSONObject.qdictBucket(of: "exited") == 486)
    }

    @Test func bucketsAreAlwaysInRange() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            let length = Int.random(in: 0...40, using: &rng)
            let key = String((0..<length).map { _ in Character(UnicodeScalar(UInt8.random(in: 0x20...0x7E, using: &rng))) })
            #expect((0..<512).contains(JSONObject.qdictBucket(of: key)))
        }
    }

    @Test func nulIsHashedAsC080() {
        // U+0000 is stored as the two bytes C0 80, so it hashes like them.
        func bucket(_ bytes: [UInt8]) -> Int {
            // The reference hash, written out directly.
            var h: UInt32 = 0x238F_13AF &* UInt32(bytes.count)
            for (i, b) in bytes.enumerated() { h &+= UInt32(b) << UInt32((i * 5) % 24) }
            return Int((1_103_515_243 &* h &+ 12345) % 512)
        }
        #expect(JSONObject.qdictBucket(of: "a\u{0}b") == bucket([0x61, 0xC0, 0x80, 0x62]))
        #expect(JSONObject.qdictBucket(of: "é") == bucket([0xC3, 0xA9]))
        #expect(JSONObject.qdictBucket(of: "a somewhat longer key than usual") == bucket(Array("a somewhat longer key than usual".utf8)))
    }

    @Test func keyWithNulOrdersAsObserved() {
        // observed-7.2: {"a\u0000b":1,"id":2,"exited":3} prints a\u0000b, exited, id.
        let out = parseAll(#"{"a\u0000b":1,"id":2,"exited":3}"#)
        guard case .value(let v)? = out.first else { Issue.record("no value"); return }
        #expect(String(decoding: JSONWriter.encode(v), as: UTF8.self) == #"{"a\u0000b": 1, "exited": 3, "id": 2}"#)
    }

    @Test func subscriptComparesKeysByteForByte() {
        var object = JSONObject()
        object["\u{E9}"] = .int(1)
        object["e\u{301}"] = .int(2)
        #expect(object.count == 2)
        #expect(object["\u{E9}"] == .int(1))
        #expect(object["e\u{301}"] == .int(2))
    }

    @Test func roundTripOrderExample() {
        let out = parseAll(#"{"c":3,"return":4,"b":1,"zz":5,"a":2}"#)
        guard case .value(let v)? = out.first else { Issue.record("no value"); return }
        #expect(String(decoding: JSONWriter.encode(v), as: UTF8.self) == #"{"a": 2, "zz": 5, "b": 1, "return": 4, "c": 3}"#)
        // Whatever the input order, the output order is the same.
        let other = parseAll(#"{"a":2,"b":1,"c":3,"zz":5,"return":4}"#)
        guard case .value(let w)? = other.first else { Issue.record("no value"); return }
        #expect(JSONWriter.encode(w) == JSONWriter.encode(v))
    }

    @Test func responseShapes() {
        var success = JSONObject()
        success["return"] = .object(JSONObject())
        success["id"] = .int(5)
        #expect(String(decoding: JSONWriter.encode(.object(success)), as: UTF8.self) == #"{"return": {}, "id": 5}"#)
        var failure = JSONObject()
        failure["error"] = .object(JSONObject(["desc": .string("d"), "class": .string("GenericError")]))
        failure["id"] = .int(7)
        #expect(String(decoding: JSONWriter.encode(.object(failure)), as: UTF8.self)
                == #"{"id": 7, "error": {"class": "GenericError", "desc": "d"}}"#)
        #expect(JSONObject(["foo": .int(1), "execute": .int(1)]).qdictOrderedMembers.map(\.key) == ["execute", "foo"])
        #expect(JSONObject(["execute": .string("guest-ping"), "exec-oob": .string("x")]).qdictOrderedMembers.map(\.key)
                == ["exec-oob", "execute"])
        #expect(JSONObject(["success-response": .bool(true), "name": .string("n"), "enabled": .bool(true)])
                    .qdictOrderedMembers.map(\.key) == ["enabled", "name", "success-response"])
    }

    @Test func sameBucketMostRecentFirst() {
        var object = JSONObject()
        object["id"] = .int(1)
        object["exited"] = .bool(true)
        #expect(object.qdictOrderedMembers.map(\.key) == ["exited", "id"])
        var reversed = JSONObject()
        reversed["exited"] = .bool(true)
        reversed["id"] = .int(1)
        #expect(reversed.qdictOrderedMembers.map(\.key) == ["id", "exited"])
        // Replacing a value keeps the position; removing and re-adding moves it.
        reversed["exited"] = .bool(false)
        #expect(reversed.qdictOrderedMembers.map(\.key) == ["id", "exited"])
        reversed["exited"] = nil
        reversed["exited"] = .bool(false)
        #expect(reversed.qdictOrderedMembers.map(\.key) == ["exited", "id"])
    }

    @Test func orderIsBucketsThenReverseInsertion() {
        var rng = SplitMix64(seed: 42)
        var object = JSONObject()
        for i in 0..<3000 { object["key\(UInt32.random(in: 0...UInt32.max, using: &rng))-\(i)"] = .int(Int64(i)) }
        let ordered = object.qdictOrderedMembers
        #expect(ordered.count == object.count)
        let position = Dictionary(uniqueKeysWithValues: object.members.enumerated().map { ($1.key, $0) })
        for (a, b) in zip(ordered, ordered.dropFirst()) {
            let ba = JSONObject.qdictBucket(of: a.key), bb = JSONObject.qdictBucket(of: b.key)
            #expect(ba < bb || (ba == bb && position[a.key]! > position[b.key]!))
        }
    }
}

// QEMU keeps JSON objects in a hash table of 512 buckets (QDict) and
// iterates them bucket by bucket; inside a bucket the most recently inserted
// key comes first. Printing members in this order makes our output
// byte-identical to qemu-ga's.

extension JSONObject {
    static let qdictBucketCount = 512

    /// QEMU's hash-bucket index (0..<512) of a key.
    ///
    /// The key is hashed as QEMU stores it: modified UTF-8, so U+0000 counts
    /// as the two bytes C0 80.
    public static func qdictBucket(of key: String) -> Int {
        var key = key
        return key.withUTF8 { bytes -> Int in
            var length = UInt32(truncatingIfNeeded: bytes.count)
            for b in bytes where b == 0 { length &+= 1 }
            var h: UInt32 = 0x238F_13AF &* length
            var index: UInt32 = 0
            @inline(__always) func mix(_ b: UInt8) {
                h &+= UInt32(b) << ((index &* 5) % 24)
                index &+= 1
            }
            for b in bytes {
                if b == 0 {
                    mix(0xC0)
                    mix(0x80)
                } else {
                    mix(b)
                }
            }
            h = 1_103_515_243 &* h &+ 12345
            return Int(h % UInt32(qdictBucketCount))
        }
    }

    /// Member indices in QDict iteration order.
    func qdictOrder() -> [Int] {
        let count = members.count
        if count <= 1 { return count == 0 ? [] : [0] }
        // Sort key: bucket ascending, then insertion index descending.
        var keys = [UInt64]()
        keys.reserveCapacity(count)
        for (index, member) in members.enumerated() {
            let bucket = UInt64(JSONObject.qdictBucket(of: member.key))
            keys.append(bucket << 32 | UInt64(UInt32.max - UInt32(index)))
        }
        keys.sort()
        return keys.map { Int(UInt32.max - UInt32(truncatingIfNeeded: $0)) }
    }

    /// Members in the order QEMU's QDict iterates them: buckets 0→511, and
    /// inside one bucket the most recently inserted first.
    public var qdictOrderedMembers: [Member] {
        qdictOrder().map { members[$0] }
    }
}

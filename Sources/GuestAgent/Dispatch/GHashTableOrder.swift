/// The iteration order of a GLib `GHashTable` keyed by strings with
/// `g_str_hash`, for the few places where QEMU's answer depends on it (which
/// of several unexpected arguments is named).
///
/// GLib tables are open-addressed: 2^shift slots, a key's first slot is
/// `(hash * 11) % prime(shift)`, collisions probe with growing steps, and the
/// table is rebuilt larger when it fills up. Iteration walks the slots in order.
struct GHashTableOrder {
    private static let minimumShift = 3
    /// The prime below 2^shift that GLib reduces hashes modulo.
    private static let primeModulus: [UInt32] = [
        1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749,
        65521, 131071, 262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213,
        33554393, 67108859, 134217689, 268435399, 536870909, 1073741789, 2147483647,
    ]

    private var shift = GHashTableOrder.minimumShift
    private var slots: [(hash: UInt32, key: String)?]

    init() {
        slots = Array(repeating: nil, count: 1 << GHashTableOrder.minimumShift)
    }

    /// GLib's `g_str_hash`: djb2 over the bytes read as *signed* chars.
    static func stringHash(_ key: String) -> UInt32 {
        var hash: UInt32 = 5381
        for byte in key.utf8 {
            hash = hash &* 33 &+ UInt32(bitPattern: Int32(Int8(bitPattern: byte)))
        }
        return hash
    }

    mutating func insert(_ key: String) {
        var hash = GHashTableOrder.stringHash(key)
        if hash < 2 { hash = 2 }  // GLib reserves 0 and 1 for empty and deleted slots
        if slots.contains(where: { $0?.key == key }) { return }
        place(hash: hash, key: key)
        let count = slots.lazy.compactMap { $0 }.count
        if slots.count <= count + count / 16 { grow(count: count) }
    }

    func iterationOrder() -> [String] { slots.compactMap { $0?.key } }

    private mutating func place(hash: UInt32, key: String) {
        let mask = slots.count - 1
        var index = Int((hash &* 11) % GHashTableOrder.primeModulus[shift])
        var step = 0
        while slots[index] != nil {
            step += 1
            index = (index + step) & mask
        }
        slots[index] = (hash, key)
    }

    private mutating func grow(count: Int) {
        var wanted = count + count / 3
        var newShift = 0
        while wanted != 0 {
            wanted >>= 1
            newShift += 1
        }
        shift = max(newShift, GHashTableOrder.minimumShift)
        let old = slots.compactMap { $0 }
        slots = Array(repeating: nil, count: 1 << shift)
        for entry in old { place(hash: entry.hash, key: entry.key) }
    }
}

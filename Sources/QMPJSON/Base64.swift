/// Base64 as qemu-ga handles it: input checked for QEMU's character set, then
/// decoded with GLib's lenient rules; output standard, padded, unwrapped.
///
/// Bulk data goes through here (guest-file-write and -read move up to 64 MiB
/// of text per request), so both directions work eight characters at a time
/// where the input allows and never build intermediate copies: decoding
/// measures first and then fills the caller's buffer piece by piece, and
/// encoding can take its input in the storage of the String it produces.
public enum Base64 {
    /// The one way base64 input is refused.
    public struct InvalidCharacters: Error, Equatable, CustomStringConvertible {
        public init() {}
        public var description: String { "Base64 data contains invalid characters" }
    }

    /// 0...63 for the alphabet; the other characters QEMU lets through are
    /// marked: `=` (which GLib counts as a zero digit) and newline (skipped).
    private static let pad: UInt8 = 0x40
    private static let skip: UInt8 = 0x80
    private static let invalid: UInt8 = 0xFF
    private static let ranks: [UInt8] = {
        var table = [UInt8](repeating: invalid, count: 256)
        for (rank, character) in alphabet.enumerated() {
            table[Int(character)] = UInt8(rank)
        }
        table[Int(UInt8(ascii: "="))] = pad
        table[Int(UInt8(ascii: "\n"))] = skip
        return table
    }()

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    // MARK: Decoding

    /// How decoding goes: significant characters are taken in groups of
    /// four; newlines are skipped; an incomplete last group is dropped; a `=`
    /// counts as a zero digit, and as the third or fourth character of a
    /// group it also drops the byte it would have completed (GLib's
    /// `g_base64_decode`, which qemu-ga calls once QEMU's character check
    /// has passed).

    /// The decoded size of `input`, or `InvalidCharacters` if any character
    /// is outside QEMU's set (alphabet, `=`, newline).
    public static func decodedCount(_ input: UnsafeRawBufferPointer) throws(InvalidCharacters) -> Int {
        guard let p = input.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return 0 }
        let n = input.count
        return try ranks.withUnsafeBufferPointer { ranks throws(InvalidCharacters) in
            let r = ranks.baseAddress!
            var significant = 0
            var drops = 0          // bytes dropped by `=` in completed groups
            var pendingDrops = 0   // in the group not yet complete
            var i = 0
            while true {
                let end = alphabetRunEnd(p, from: i, to: n, ranks: r)
                if end > i {
                    // A run of alphabet characters completes the current
                    // group if it is long enough, and has no `=` in it.
                    let phase = significant & 3
                    if phase != 0 && phase &+ (end &- i) >= 4 {
                        drops &+= pendingDrops
                        pendingDrops = 0
                    }
                    significant &+= end &- i
                    i = end
                }
                guard i < n else { break }
                let rank = r[Int(p[i])]
                i &+= 1
                if rank == skip { continue }
                if rank == invalid { throw InvalidCharacters() }
                if significant & 3 >= 2 { pendingDrops &+= 1 }  // a `=` as third or fourth
                significant &+= 1
                if significant & 3 == 0 {
                    drops &+= pendingDrops
                    pendingDrops = 0
                }
            }
            return significant / 4 * 3 - drops
        }
    }

    /// The end of the run of alphabet characters (no `=`, no newline) that
    /// starts at `from`: eight bytes at a time, each byte classified by
    /// exact per-byte range tests (no carries cross bytes below 0x80).
    private static func alphabetRunEnd(
        _ p: UnsafePointer<UInt8>, from: Int, to: Int, ranks: UnsafePointer<UInt8>
    ) -> Int {
        @inline(__always) func inRange(_ v: UInt64, _ low: UInt8, _ high: UInt8) -> UInt64 {
            (v &+ swarSplat(0x80 &- low)) & ~(v &+ swarSplat(0x7F &- high)) & swarHighs
        }
        var i = from
        while i &+ 8 <= to {
            let v = loadWord(p, i)
            if v & swarHighs != 0 { break }
            let letters = inRange(v | swarSplat(0x20), 0x61, 0x7A)
            let others = inRange(v, 0x30, 0x39) | inRange(v, 0x2B, 0x2B) | inRange(v, 0x2F, 0x2F)
            if letters | others != swarHighs { break }
            i &+= 8
        }
        while i < to && ranks[Int(p[i])] < pad { i &+= 1 }
        return i
    }

    /// Each character's 6 bits already in place for positions 0...3 of a
    /// group (four tables of 256); anything but the alphabet is `special`.
    private static let special: UInt32 = 1 << 24
    private static let placedDigits: [UInt32] = {
        var table = [UInt32](repeating: special, count: 1024)
        for (rank, character) in alphabet.enumerated() {
            for position in 0..<4 {
                table[position << 8 | Int(character)] = UInt32(rank) << (18 - 6 * position)
            }
        }
        return table
    }()

    /// Decodes input that `decodedCount` accepted, `limit` bytes at most,
    /// filling `buffer` (best at least 8 bytes) and handing it to
    /// `consume` each time it is full and once at the end; stops early when
    /// `consume` returns false. Returns the number of bytes decoded.
    @discardableResult
    public static func decodeChecked(
        _ input: UnsafeRawBufferPointer, limit: Int, into buffer: UnsafeMutableRawBufferPointer,
        _ consume: (UnsafeRawBufferPointer) -> Bool
    ) -> Int {
        guard let p = input.baseAddress?.assumingMemoryBound(to: UInt8.self), limit > 0 else { return 0 }
        precondition(buffer.count > 0, "no room for base64 output")
        let n = input.count
        let o = buffer.baseAddress!
        let capacity = buffer.count
        return ranks.withUnsafeBufferPointer { ranks in
            placedDigits.withUnsafeBufferPointer { placed in
                let r = ranks.baseAddress!
                let t = placed.baseAddress!
                var produced = 0   // bytes handed to `consume`
                var w = 0          // bytes in `buffer`
                var i = 0
                // GLib's state within a group of four significant characters.
                var group: UInt32 = 0
                var digits = 0
                var thirdIsPad = false, fourthIsPad = false
                while produced &+ w < limit {
                    if w == capacity {
                        let keepGoing = consume(UnsafeRawBufferPointer(start: o, count: w))
                        produced &+= w
                        w = 0
                        guard keepGoing else { return produced }
                    }
                    if digits == 0 {
                        // Bulk: two groups of plain characters at a time,
                        // stored as one 8-byte word (6 bytes meant, 2 spare).
                        let byRoom = capacity &- w >= 8 ? (capacity &- w &- 2) / 6 : 0
                        var blocks = min((n &- i) / 8, byRoom, (limit &- produced &- w) / 6)
                        while blocks > 0 {
                            let a = t[Int(p[i])] | t[256 | Int(p[i &+ 1])] | t[512 | Int(p[i &+ 2])] | t[768 | Int(p[i &+ 3])]
                            let b = t[Int(p[i &+ 4])] | t[256 | Int(p[i &+ 5])] | t[512 | Int(p[i &+ 6])]
                                | t[768 | Int(p[i &+ 7])]
                            if (a | b) & special != 0 { break }
                            let word = UInt64((a << 8).byteSwapped) | UInt64((b << 8).byteSwapped) << 24
                            (o + w).storeBytes(of: word.littleEndian, as: UInt64.self)
                            w &+= 6
                            i &+= 8
                            blocks &-= 1
                        }
                        if w == capacity { continue }
                    }
                    // One character at a time: newlines, `=`, the tail.
                    guard i < n else { break }
                    let rank = r[Int(p[i])]
                    i &+= 1
                    if rank == skip { continue }
                    group = group << 6 | UInt32(rank & 0x3F)
                    thirdIsPad = fourthIsPad
                    fourthIsPad = rank == pad
                    digits &+= 1
                    guard digits == 4 else { continue }
                    digits = 0
                    let count = 3 - (thirdIsPad ? 1 : 0) - (fourthIsPad ? 1 : 0)
                    for index in 0..<count {
                        if produced &+ w == limit { break }
                        if w == capacity {
                            let keepGoing = consume(UnsafeRawBufferPointer(start: o, count: w))
                            produced &+= w
                            w = 0
                            guard keepGoing else { return produced }
                        }
                        // The first byte, then the second unless the third
                        // character was `=`, then the third.
                        let shift = index == 0 ? 16 : (index == 1 && !thirdIsPad ? 8 : 0)
                        o.storeBytes(of: UInt8(truncatingIfNeeded: group >> UInt32(shift)), toByteOffset: w, as: UInt8.self)
                        w &+= 1
                    }
                    group = 0
                }
                if w > 0 { _ = consume(UnsafeRawBufferPointer(start: o, count: w)) }
                return produced &+ w
            }
        }
    }

    /// Decodes `input` whole, or throws `InvalidCharacters`.
    public static func decode(_ input: UnsafeRawBufferPointer) throws(InvalidCharacters) -> [UInt8] {
        let count = try decodedCount(input)
        guard count > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: count) { output, initialized in
            initialized = decodeChecked(input, limit: count, into: UnsafeMutableRawBufferPointer(output)) { _ in true }
        }
    }

    public static func decode(_ text: String) throws(InvalidCharacters) -> [UInt8] {
        var text = text
        return try text.withUTF8 { bytes in Result { () throws(InvalidCharacters) in try decode(UnsafeRawBufferPointer(bytes)) } }
            .get()
    }

    // MARK: Encoding

    /// The length of the padded encoding of `count` bytes.
    public static func encodedCount(_ count: Int) -> Int { (count + 2) / 3 * 4 }

    public static func encode(_ bytes: UnsafeRawBufferPointer) -> String {
        encode(reading: bytes.count) { storage in
            storage.copyMemory(from: bytes)
            return bytes.count
        }
    }

    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        if let string = bytes.withContiguousStorageIfAvailable({ encode(UnsafeRawBufferPointer($0)) }) {
            return string
        }
        return Array(bytes).withUnsafeBytes { encode($0) }
    }

    /// The two characters of every 12-bit value, the first in the low byte.
    private static let pairTable: [UInt16] = (0..<4096).map { value in
        UInt16(alphabet[value >> 6]) | UInt16(alphabet[value & 63]) << 8
    }

    /// Encodes bytes that `fill` writes into the String's own storage:
    /// `fill` gets room for `count` bytes and returns how many it wrote (at
    /// most `count`); they are then encoded in place, from the last group to
    /// the first, so the data is never copied to a buffer of its own.
    public static func encode(reading count: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Int) -> String {
        String(unsafeUninitializedCapacity: encodedCount(count)) { storage in
            let base = storage.baseAddress!
            let n = fill(UnsafeMutableRawBufferPointer(start: base, count: count))
            precondition(n >= 0 && n <= count, "fill wrote more than it was given")
            alphabet.withUnsafeBufferPointer { alphabet in
                let a = alphabet.baseAddress!
                // Group g reads bytes 3g..<3g+3 and writes characters 4g..<4g+4;
                // going backwards, what it writes only covers bytes already read.
                var g = n / 3
                let tail = n % 3
                if tail != 0 {
                    let s = g &* 3, d = g &* 4
                    let v = UInt32(base[s]) << 16 | (tail == 2 ? UInt32(base[s &+ 1]) << 8 : 0)
                    base[d] = a[Int(v >> 18 & 63)]
                    base[d &+ 1] = a[Int(v >> 12 & 63)]
                    base[d &+ 2] = tail == 2 ? a[Int(v >> 6 & 63)] : UInt8(ascii: "=")
                    base[d &+ 3] = UInt8(ascii: "=")
                }
                // Two groups at a time: six bytes in, one 8-byte word out. The
                // load takes two bytes more than it uses, still inside the
                // storage (whose size is at least 4 × the groups).
                pairTable.withUnsafeBufferPointer { pairs in
                    let t = pairs.baseAddress!
                    while g >= 2 {
                        g &-= 2
                        let s = g &* 3, d = g &* 4
                        let x = UInt64(bigEndian: UnsafeRawPointer(base + s).loadUnaligned(as: UInt64.self))
                        let word = UInt64(t[Int(x >> 52)]) | UInt64(t[Int(x >> 40 & 0xFFF)]) << 16
                            | UInt64(t[Int(x >> 28 & 0xFFF)]) << 32 | UInt64(t[Int(x >> 16 & 0xFFF)]) << 48
                        UnsafeMutableRawPointer(base + d).storeBytes(of: UInt64(littleEndian: word), as: UInt64.self)
                    }
                }
                if g == 1 {
                    let v = UInt32(base[0]) << 16 | UInt32(base[1]) << 8 | UInt32(base[2])
                    base[0] = a[Int(v >> 18 & 63)]
                    base[1] = a[Int(v >> 12 & 63)]
                    base[2] = a[Int(v >> 6 & 63)]
                    base[3] = a[Int(v & 63)]
                }
            }
            return encodedCount(n)
        }
    }
}

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
                // Eight plain alphabet characters at once.
                while i &+ 8 <= n {
                    let any = r[Int(p[i])] | r[Int(p[i &+ 1])] | r[Int(p[i &+ 2])] | r[Int(p[i &+ 3])]
                        | r[Int(p[i &+ 4])] | r[Int(p[i &+ 5])] | r[Int(p[i &+ 6])] | r[Int(p[i &+ 7])]
                    guard any < pad else { break }
                    // They complete the current group, which has no `=` among them.
                    if significant & 3 != 0 {
                        drops &+= pendingDrops
                        pendingDrops = 0
                    }
                    significant &+= 8
                    i &+= 8
                }
                guard i < n else { break }
                // One character at a time until the next eight are plain.
                let end = min(n, i &+ 8)
                while i < end {
                    let rank = r[Int(p[i])]
                    i &+= 1
                    if rank == skip { continue }
                    if rank == invalid { throw InvalidCharacters() }
                    if rank == pad && significant & 3 >= 2 { pendingDrops &+= 1 }
                    significant &+= 1
                    if significant & 3 == 0 {
                        drops &+= pendingDrops
                        pendingDrops = 0
                    }
                }
            }
            return significant / 4 * 3 - drops
        }
    }

    /// Decodes input that `decodedCount` accepted, `limit` bytes at most,
    /// filling `buffer` (at least 6 bytes, or `limit`) and handing it to `consume` each
    /// time it is full and once at the end; stops early when `consume`
    /// returns false. Returns the number of bytes decoded.
    @discardableResult
    public static func decodeChecked(
        _ input: UnsafeRawBufferPointer, limit: Int, into buffer: UnsafeMutableRawBufferPointer,
        _ consume: (UnsafeRawBufferPointer) -> Bool
    ) -> Int {
        precondition(buffer.count >= min(6, limit), "base64 output buffer too small")
        guard let p = input.baseAddress?.assumingMemoryBound(to: UInt8.self), limit > 0 else { return 0 }
        let n = input.count
        let o = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let capacity = buffer.count
        return ranks.withUnsafeBufferPointer { ranks in
            let r = ranks.baseAddress!
            var produced = 0   // bytes handed to `consume`
            var w = 0          // bytes in `buffer`
            var stopped = false

            func flush() {
                if w > 0 && !stopped {
                    stopped = !consume(UnsafeRawBufferPointer(start: o, count: w))
                    produced &+= w
                }
                w = 0
            }
            /// Appends one byte; false once the limit is reached or `consume` said stop.
            func put(_ byte: UInt8) -> Bool {
                if produced &+ w == limit || stopped { return false }
                if w == capacity {
                    flush()
                    if stopped { return false }
                }
                o[w] = byte
                w &+= 1
                return true
            }

            var i = 0
            var group: UInt32 = 0
            var digits = 0
            var thirdIsPad = false, fourthIsPad = false
            decoding: while i < n && !stopped {
                // Fast path: two whole groups of plain characters.
                if digits == 0 && i &+ 8 <= n {
                    let r0 = r[Int(p[i])], r1 = r[Int(p[i &+ 1])], r2 = r[Int(p[i &+ 2])], r3 = r[Int(p[i &+ 3])]
                    let r4 = r[Int(p[i &+ 4])], r5 = r[Int(p[i &+ 5])], r6 = r[Int(p[i &+ 6])], r7 = r[Int(p[i &+ 7])]
                    if (r0 | r1 | r2 | r3 | r4 | r5 | r6 | r7) < pad && produced &+ w &+ 6 <= limit {
                        if w &+ 6 > capacity {
                            flush()
                            if stopped { break decoding }
                        }
                        let a = UInt32(r0) << 18 | UInt32(r1) << 12 | UInt32(r2) << 6 | UInt32(r3)
                        let b = UInt32(r4) << 18 | UInt32(r5) << 12 | UInt32(r6) << 6 | UInt32(r7)
                        o[w] = UInt8(truncatingIfNeeded: a >> 16)
                        o[w &+ 1] = UInt8(truncatingIfNeeded: a >> 8)
                        o[w &+ 2] = UInt8(truncatingIfNeeded: a)
                        o[w &+ 3] = UInt8(truncatingIfNeeded: b >> 16)
                        o[w &+ 4] = UInt8(truncatingIfNeeded: b >> 8)
                        o[w &+ 5] = UInt8(truncatingIfNeeded: b)
                        w &+= 6
                        i &+= 8
                        continue
                    }
                }
                let rank = r[Int(p[i])]
                i &+= 1
                if rank == skip { continue }
                group = group << 6 | UInt32(rank & 0x3F)
                thirdIsPad = fourthIsPad
                fourthIsPad = rank == pad
                digits &+= 1
                if digits == 4 {
                    digits = 0
                    guard put(UInt8(truncatingIfNeeded: group >> 16)) else { break }
                    if !thirdIsPad { guard put(UInt8(truncatingIfNeeded: group >> 8)) else { break } }
                    if !fourthIsPad { guard put(UInt8(truncatingIfNeeded: group)) else { break } }
                    group = 0
                }
            }
            flush()
            return produced
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
                var g = (n + 2) / 3
                var tail = n % 3
                while g > 0 {
                    g &-= 1
                    let s = g &* 3, d = g &* 4
                    let b0 = UInt32(base[s])
                    let b1 = tail == 1 ? 0 : UInt32(base[s &+ 1])
                    let b2 = tail != 0 ? 0 : UInt32(base[s &+ 2])
                    let v = b0 << 16 | b1 << 8 | b2
                    base[d] = a[Int(v >> 18 & 63)]
                    base[d &+ 1] = a[Int(v >> 12 & 63)]
                    base[d &+ 2] = tail == 1 ? UInt8(ascii: "=") : a[Int(v >> 6 & 63)]
                    base[d &+ 3] = tail != 0 ? UInt8(ascii: "=") : a[Int(v & 63)]
                    tail = 0
                }
            }
            return encodedCount(n)
        }
    }
}

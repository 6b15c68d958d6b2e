// QEMU keeps strings in "modified UTF-8": standard UTF-8, except that U+0000
// is the overlong pair C0 80, and noncharacters and surrogates are never
// valid. This file holds the sequence reader both the parser (validation of
// raw bytes in string tokens) and the error-text decoder use.

/// Reads one modified-UTF-8 sequence that starts at `p[i]` (which must be
/// non-zero and `i < end`).
///
/// Returns the code point, or -1 when the sequence is invalid, and the index
/// just past what it consumed: one byte for a stray continuation byte or an
/// impossible byte (0xFE, 0xFF); the lead byte plus the continuation bytes
/// actually present for a truncated sequence; the whole sequence when it is
/// well-formed (even if it then encodes something invalid: out of range,
/// noncharacter, surrogate, or overlong other than C0 80).
@inline(__always)
func readModifiedUTF8(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> (Int32, Int) {
    let lead = p[i]
    if lead < 0x80 { return (Int32(lead), i &+ 1) }
    if lead >= 0xFE || lead & 0x40 == 0 { return (-1, i &+ 1) }
    // Number of bytes announced by the lead byte: 2...6.
    let length = (~lead).leadingZeroBitCount
    var cp = UInt32(lead) & (UInt32(0x7F) >> UInt32(length))
    var j = i &+ 1
    var k = 1
    while k < length {
        guard j < end else { return (-1, j) }
        let c = p[j]
        guard c & 0xC0 == 0x80 else { return (-1, j) }
        cp = (cp << 6) | UInt32(c & 0x3F)
        j &+= 1
        k &+= 1
    }
    if !isValidCodePoint(cp) { return (-1, j) }
    let minimum: UInt32
    switch length {
    case 2: minimum = 0x80
    case 3: minimum = 0x800
    case 4: minimum = 0x10000
    case 5: minimum = 0x200000
    default: minimum = 0x400_0000
    }
    if cp < minimum && !(cp == 0 && length == 2) { return (-1, j) }
    return (Int32(cp), j)
}

/// QEMU's notion of a character it can store: within U+0000...U+10FFFF, not
/// a surrogate, not one of the 66 noncharacters.
@inline(__always)
func isValidCodePoint(_ cp: UInt32) -> Bool {
    if cp > 0x10FFFF { return false }
    if (cp >= 0xFDD0 && cp <= 0xFDEF) || cp & 0xFFFE == 0xFFFE { return false }
    if cp >= 0xD800 && cp <= 0xDFFF { return false }
    return true
}

@inline(__always)
func storeUTF8(_ cp: UInt32, _ out: UnsafeMutablePointer<UInt8>, _ o: Int) -> Int {
    switch cp {
    case 0..<0x80:
        out[o] = UInt8(cp)
        return o &+ 1
    case 0x80..<0x800:
        out[o] = UInt8(0xC0 | (cp >> 6))
        out[o &+ 1] = UInt8(0x80 | (cp & 0x3F))
        return o &+ 2
    case 0x800..<0x10000:
        out[o] = UInt8(0xE0 | (cp >> 12))
        out[o &+ 1] = UInt8(0x80 | ((cp >> 6) & 0x3F))
        out[o &+ 2] = UInt8(0x80 | (cp & 0x3F))
        return o &+ 3
    default:
        out[o] = UInt8(0xF0 | (cp >> 18))
        out[o &+ 1] = UInt8(0x80 | ((cp >> 12) & 0x3F))
        out[o &+ 2] = UInt8(0x80 | ((cp >> 6) & 0x3F))
        out[o &+ 3] = UInt8(0x80 | (cp & 0x3F))
        return o &+ 4
    }
}

public enum ModifiedUTF8 {
    /// Decodes bytes the way QEMU's JSON writer renders a C string: the text
    /// ends at the first NUL byte; C0 80 is U+0000; every invalid sequence
    /// (bad lead byte, truncated sequence, overlong form, surrogate,
    /// noncharacter, beyond U+10FFFF) becomes one U+FFFD.
    ///
    /// This is how the error text of a lexical error (`stray '...'`) is
    /// obtained from the rejected bytes; the daemon can use it for any C
    /// string that QEMU would pass to its writer unchecked.
    public static func decodeLossy(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        guard let p = bytes.baseAddress, bytes.count > 0 else { return "" }
        let end = scanZero(p, from: 0, to: bytes.count)
        // First pass: size of the result; second pass: the result itself.
        var size = 0
        var changed = false
        var i = 0
        while i < end {
            let plain = scanASCIIRun(p, from: i, to: end)
            size &+= plain &- i
            i = plain
            if i == end { break }
            let (cp, next) = readModifiedUTF8(p, i, end)
            if cp <= 0 {
                changed = true
                size &+= cp < 0 ? 3 : 1
            } else {
                size &+= next &- i
            }
            i = next
        }
        if !changed {
            // Nothing to repair, nothing to translate.
            return String(decoding: UnsafeBufferPointer(start: p, count: end), as: UTF8.self)
        }
        return String(unsafeUninitializedCapacity: size) { out in
            let o = out.baseAddress!
            var w = 0
            var i = 0
            while i < end {
                let plain = scanASCIIRun(p, from: i, to: end)
                if plain > i {
                    (o + w).update(from: p + i, count: plain &- i)
                    w &+= plain &- i
                    i = plain
                }
                if i == end { break }
                let (cp, next) = readModifiedUTF8(p, i, end)
                w = storeUTF8(cp < 0 ? 0xFFFD : UInt32(cp), o, w)
                i = next
            }
            return w
        }
    }

    public static func decodeLossy<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        if let s = bytes.withContiguousStorageIfAvailable({ decodeLossy($0) }) { return s }
        return Array(bytes).withUnsafeBufferPointer { decodeLossy($0) }
    }
}

/// Index of the first non-ASCII byte in [from, to), or `to`.
func scanASCIIRun(_ p: UnsafePointer<UInt8>, from: Int, to: Int) -> Int {
    var i = from
    while i &+ 8 <= to {
        if loadWord(p, i) & swarHighs != 0 { break }
        i &+= 8
    }
    while i < to {
        if p[i] >= 0x80 { return i }
        i &+= 1
    }
    return i
}

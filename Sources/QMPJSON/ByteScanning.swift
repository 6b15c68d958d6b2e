// Word-at-a-time helpers shared by the lexer, the string decoder and the
// writer. Each scanner returns the index of the first "interesting" byte in
// [from, to), or `to`; eight bytes are tested per step with the classic
// SWAR tricks (the tests only answer "is there such a byte in this word",
// which they do exactly; the byte itself is then located one at a time).

@usableFromInline let swarOnes: UInt64 = 0x0101_0101_0101_0101
@usableFromInline let swarHighs: UInt64 = 0x8080_8080_8080_8080

@inline(__always)
func swarSplat(_ byte: UInt8) -> UInt64 { UInt64(byte) &* swarOnes }

/// Non-zero iff some byte of `v` is zero.
@inline(__always)
func swarZeroBytes(_ v: UInt64) -> UInt64 { (v &- swarOnes) & ~v & swarHighs }

/// Non-zero iff some byte of `v` is below `n` (n <= 128).
@inline(__always)
func swarBytesBelow(_ v: UInt64, _ n: UInt8) -> UInt64 {
    (v &- swarOnes &* UInt64(n)) & ~v & swarHighs
}

@inline(__always)
func loadWord(_ p: UnsafePointer<UInt8>, _ i: Int) -> UInt64 {
    UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
}

/// Lexer, inside a string body: the closing `quote`, a backslash, a control
/// byte (< 0x20) or one of the impossible bytes 0xFE / 0xFF.
@inline(__always)
func isStringBodyStop(_ b: UInt8, quote: UInt8) -> Bool {
    b == quote || b == 0x5C || b < 0x20 || b >= 0xFE
}

/// The first byte of [from, to) that `isStringBodyStop`s the body; with
/// `plain`, also any byte above 0x7F (which ends a long string's plain run,
/// see LongString.swift).
@inline(__always)
func scanStringBody(_ p: UnsafePointer<UInt8>, from: Int, to: Int, quote: UInt8, plain: Bool = false) -> Int {
    var i = from
    let q = swarSplat(quote)
    let bs = swarSplat(0x5C)
    while i &+ 8 <= to {
        let v = loadWord(p, i)
        let high = plain ? v & swarHighs : swarBytesBelow(~v, 2)
        let hit = swarZeroBytes(v ^ q) | swarZeroBytes(v ^ bs) | swarBytesBelow(v, 0x20) | high
        if hit != 0 { break }
        i &+= 8
    }
    while i < to {
        let b = p[i]
        if isStringBodyStop(b, quote: quote) || (plain && b >= 0x80) { return i }
        i &+= 1
    }
    return i
}

/// String decoder: a backslash or a non-ASCII byte.
func scanPlainASCII(_ p: UnsafePointer<UInt8>, from: Int, to: Int) -> Int {
    var i = from
    let bs = swarSplat(0x5C)
    while i &+ 8 <= to {
        let v = loadWord(p, i)
        if (swarZeroBytes(v ^ bs) | (v & swarHighs)) != 0 { break }
        i &+= 8
    }
    while i < to {
        let b = p[i]
        if b == 0x5C || b >= 0x80 { return i }
        i &+= 1
    }
    return i
}

/// Writer: a byte that cannot be copied verbatim into a JSON string
/// (control bytes, `"`, `\`, DEL and everything non-ASCII).
@inline(__always)
func writerMustEscape(_ b: UInt8) -> Bool {
    b < 0x20 || b == 0x22 || b == 0x5C || b >= 0x7F
}

func scanWriterPlain(_ p: UnsafePointer<UInt8>, from: Int, to: Int) -> Int {
    var i = from
    let dq = swarSplat(0x22)
    let bs = swarSplat(0x5C)
    while i &+ 8 <= to {
        let v = loadWord(p, i)
        let hit = swarZeroBytes(v ^ dq) | swarZeroBytes(v ^ bs)
            | swarBytesBelow(v, 0x20) | (((v &+ swarOnes) | v) & swarHighs)
        if hit != 0 { break }
        i &+= 8
    }
    while i < to {
        if writerMustEscape(p[i]) { return i }
        i &+= 1
    }
    return i
}

/// Index of the first zero byte in [from, to), or `to`.
func scanZero(_ p: UnsafePointer<UInt8>, from: Int, to: Int) -> Int {
    var i = from
    while i &+ 8 <= to {
        if swarZeroBytes(loadWord(p, i)) != 0 { break }
        i &+= 8
    }
    while i < to {
        if p[i] == 0 { return i }
        i &+= 1
    }
    return i
}

// Decoding of a string token (quotes included, as the lexer delivered it)
// into a Swift String, with QEMU's validation rules and error texts.

enum StringDecodeResult {
    case success(String)
    /// The parser error detail, as raw bytes (it may quote raw input).
    case failure([UInt8])
}

@inline(__always)
func hexValue(_ b: UInt8) -> Int32 {
    switch b {
    case 0x30...0x39: return Int32(b &- 0x30)
    case 0x41...0x46: return Int32(b &- 0x41 &+ 10)
    case 0x61...0x66: return Int32(b &- 0x61 &+ 10)
    default: return -1
    }
}

/// Four hex digits at p[i...i+3], all before `end`; -1 otherwise.
@inline(__always)
func fourHex(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Int32 {
    guard i &+ 4 <= end else {
        return -1
    }
    let a = hexValue(p[i]), b = hexValue(p[i &+ 1])
    let c = hexValue(p[i &+ 2]), d = hexValue(p[i &+ 3])
    if a < 0 || b < 0 || c < 0 || d < 0 { return -1 }
    return a << 12 | b << 8 | c << 4 | d
}

let invalidEscapeText = Array("invalid escape sequence in string".utf8)
let invalidUTF8Text = Array("invalid UTF-8 sequence in string".utf8)
let notValidCharacterSuffix = Array(" is not a valid Unicode character".utf8)

/// `token` points at the whole token text: opening quote, body, closing quote.
func decodeStringToken(_ token: UnsafeBufferPointer<UInt8>) -> StringDecodeResult {
    let p = token.baseAddress!
    let tokenEnd = token.count
    let end = tokenEnd &- 1          // index of the closing quote
    let start = 1
    // Fast path: nothing but plain ASCII.
    if scanPlainASCII(p, from: start, to: end) == end {
        let body = UnsafeBufferPointer(start: p + start, count: end &- start)
        if let word = commonWord(body) { return .success(word) }
        return .success(String(decoding: body, as: UTF8.self))
    }
    var failure: [UInt8]? = nil
    // The decoded text is never longer than the body.
    let result = String(unsafeUninitializedCapacity: end &- start) { out in
        let o = out.baseAddress!
        var w = 0
        var i = start
        while i < end {
            let plain = scanPlainASCII(p, from: i, to: end)
            if plain > i {
                (o + w).update(from: p + i, count: plain &- i)
                w &+= plain &- i
                i = plain
                if i == end { break }
            }
            let b = p[i]
            if b != 0x5C {
                let (cp, next) = readModifiedUTF8(p, i, end)
                if cp < 0 {
                    failure = invalidUTF8Text
                    return 0
                }
                if cp == 0 {
                    o[w] = 0
                    w &+= 1
                } else {
                    (o + w).update(from: p + i, count: next &- i)
                    w &+= next &- i
                }
                i = next
                continue
            }
            // Escape. The lexer guarantees a byte after the backslash.
            let escapeStart = i
            let e = p[i &+ 1]
            i &+= 2
            var single: UInt8 = 0
            switch e {
            case 0x22, 0x27, 0x5C, 0x2F: single = e        // " ' \ /
            case 0x62: single = 0x08                       // b
            case 0x66: single = 0x0C                       // f
            case 0x6E: single = 0x0A                       // n
            case 0x72: single = 0x0D                       // r
            case 0x74: single = 0x09                       // t
            case 0x75:                                     // u
                var cp = fourHex(p, i, end)
                i &+= 4
                if cp >= 0xD800 && cp <= 0xDBFF && i &+ 1 < end
                    && p[i] == 0x5C && p[i &+ 1] == 0x75 {
                    let trailing = fourHex(p, i &+ 2, end)
                    if trailing >= 0xDC00 && trailing <= 0xDFFF {
                        cp = 0x10000 + ((cp & 0x3FF) << 10) | (trailing & 0x3FF)
                        i &+= 6
                    } else {
                        cp = -1
                    }
                }
                guard cp >= 0, isValidCodePoint(UInt32(cp)) else {
                    // Quote the escape as written, as far as the token goes.
                    let quoted = UnsafeBufferPointer(start: p + escapeStart,
                                                     count: min(i, tokenEnd) &- escapeStart)
                    failure = Array(quoted) + notValidCharacterSuffix
                    return 0
                }
                w = storeUTF8(UInt32(cp), o, w)
                continue
            default:
                failure = invalidEscapeText
                return 0
            }
            o[w] = single
            w &+= 1
        }
        return w
    }
    if let failure { return .failure(failure) }
    return .success(result)
}

/// Words that occur in nearly every request; returning the literal spares
/// creating (and later destroying) a new String for each.
private let commonWords: [(bytes: [UInt8], string: String)] = [
    "execute", "arguments", "id", "guest-ping", "guest-sync", "guest-sync-delimited",
    "guest-info", "guest-get-osinfo", "guest-get-time", "guest-exec", "guest-exec-status",
    "pid", "path", "arg", "capture-output", "handle", "count", "buf-b64", "mode",
    "guest-file-open", "guest-file-read", "guest-file-write", "guest-file-close",
].map { (Array($0.utf8), $0) }

@inline(__always)
private func commonWord(_ body: UnsafeBufferPointer<UInt8>) -> String? {
    let n = body.count
    guard n >= 2 && n <= 20 else { return nil }
    let first = body[0]
    for entry in commonWords where entry.bytes.count == n && entry.bytes[0] == first {
        if entry.bytes.withUnsafeBufferPointer({ memcmpBytes($0.baseAddress!, body.baseAddress!, n) }) {
            return entry.string
        }
    }
    return nil
}

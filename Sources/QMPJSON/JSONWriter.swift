#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// QEMU's compact JSON text: `{"key": value, ...}`, `[a, b]`, `%.17g`
/// doubles (including the invalid JSON `inf`, `-inf`, `nan`), ASCII-only
/// strings with upper-case `\uXXXX` escapes, object members in QDict order.
public enum JSONWriter {
    /// Appends QEMU's compact text of `value` (no trailing newline).
    public static func append(_ value: JSONValue, to output: inout [UInt8]) {
        switch value {
        case .null:
            output.append(contentsOf: "null".utf8)
        case .bool(let b):
            output.append(contentsOf: b ? "true".utf8 : "false".utf8)
        case .int(let i):
            appendInteger(i.magnitude, negative: i < 0, to: &output)
        case .uint(let u):
            appendInteger(u, negative: false, to: &output)
        case .double(let d):
            appendDouble(d, to: &output)
        case .string(let s):
            appendString(s, to: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            var first = true
            for element in elements {
                if !first {
                    output.append(UInt8(ascii: ","))
                    output.append(UInt8(ascii: " "))
                }
                first = false
                append(element, to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let object):
            output.append(UInt8(ascii: "{"))
            var first = true
            let members = object.members
            for index in object.qdictOrder() {
                if !first {
                    output.append(UInt8(ascii: ","))
                    output.append(UInt8(ascii: " "))
                }
                first = false
                appendString(members[index].key, to: &output)
                output.append(UInt8(ascii: ":"))
                output.append(UInt8(ascii: " "))
                append(members[index].value, to: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    public static func encode(_ value: JSONValue) -> [UInt8] {
        var output: [UInt8] = []
        append(value, to: &output)
        return output
    }

    static func appendInteger(_ magnitude: UInt64, negative: Bool, to output: inout [UInt8]) {
        if negative { output.append(UInt8(ascii: "-")) }
        if magnitude < 10 {
            output.append(UInt8(truncatingIfNeeded: magnitude) &+ 0x30)
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buffer in
            var v = magnitude
            var i = 20
            while v != 0 {
                i &-= 1
                let (q, r) = v.quotientAndRemainder(dividingBy: 10)
                buffer[i] = UInt8(truncatingIfNeeded: r) &+ 0x30
                v = q
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[i..<20]))
        }
    }

    /// C `printf("%.17g")` in the C locale.
    static func appendDouble(_ d: Double, to output: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buffer in
            let written = withVaList([d]) { vsnprintf(buffer.baseAddress, 64, "%.17g", $0) }
            let length = max(0, min(Int(written), 63))
            buffer.baseAddress!.withMemoryRebound(to: UInt8.self, capacity: length) { p in
                appendCLocaleNumber(UnsafeBufferPointer(start: p, count: length), to: &output)
            }
        }
    }

    /// Copies printf output, replacing a locale's radix character (whatever
    /// separates the integer digits from the fraction digits) by '.', so the
    /// result does not depend on LC_NUMERIC.
    static func appendCLocaleNumber(_ text: UnsafeBufferPointer<UInt8>, to output: inout [UInt8]) {
        var i = 0
        let n = text.count
        if i < n && text[i] == UInt8(ascii: "-") {
            output.append(text[i])
            i += 1
        }
        guard i < n && text[i] &- 0x30 < 10 else {
            // inf, nan
            output.append(contentsOf: UnsafeBufferPointer(rebasing: text[i...]))
            return
        }
        while i < n && text[i] &- 0x30 < 10 {
            output.append(text[i])
            i += 1
        }
        if i < n && text[i] != UInt8(ascii: "e") {
            output.append(UInt8(ascii: "."))
            while i < n && text[i] &- 0x30 >= 10 { i += 1 }
        }
        output.append(contentsOf: UnsafeBufferPointer(rebasing: text[i...]))
    }

    static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    @inline(__always)
    static func appendEscapedUnit(_ unit: UInt32, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\\"))
        output.append(UInt8(ascii: "u"))
        output.append(hexDigits[Int((unit >> 12) & 0xF)])
        output.append(hexDigits[Int((unit >> 8) & 0xF)])
        output.append(hexDigits[Int((unit >> 4) & 0xF)])
        output.append(hexDigits[Int(unit & 0xF)])
    }

    /// A quoted string, ASCII only. U+0000 prints as `\u0000`; noncharacters
    /// (which QEMU's writer treats as invalid UTF-8) print as `\uFFFD`.
    public static func appendString(_ string: String, to output: inout [UInt8]) {
        var string = string
        output.append(UInt8(ascii: "\""))
        string.withUTF8 { bytes in
            guard let p = bytes.baseAddress else { return }
            let n = bytes.count
            // Room for a long string and what usually follows it, so that
            // the rest of the reply does not make the array copy it to grow.
            if n > 1 << 16 { output.reserveCapacity(output.count + n + 4096) }
            var i = 0
            while i < n {
                let plain = scanWriterPlain(p, from: i, to: n)
                if plain > i {
                    output.append(contentsOf: UnsafeBufferPointer(start: p + i, count: plain &- i))
                    i = plain
                    if i == n { break }
                }
                let b = p[i]
                if b < 0x80 {
                    i &+= 1
                    let short: UInt8
                    switch b {
                    case 0x22: short = 0x22
                    case 0x5C: short = 0x5C
                    case 0x08: short = UInt8(ascii: "b")
                    case 0x0C: short = UInt8(ascii: "f")
                    case 0x0A: short = UInt8(ascii: "n")
                    case 0x0D: short = UInt8(ascii: "r")
                    case 0x09: short = UInt8(ascii: "t")
                    default:
                        appendEscapedUnit(UInt32(b), to: &output)
                        continue
                    }
                    output.append(UInt8(ascii: "\\"))
                    output.append(short)
                    continue
                }
                // Swift strings hold valid UTF-8.
                var cp: UInt32
                if b < 0xE0 {
                    cp = UInt32(b & 0x1F) << 6 | UInt32(p[i &+ 1] & 0x3F)
                    i &+= 2
                } else if b < 0xF0 {
                    cp = UInt32(b & 0x0F) << 12 | UInt32(p[i &+ 1] & 0x3F) << 6 | UInt32(p[i &+ 2] & 0x3F)
                    i &+= 3
                } else {
                    cp = UInt32(b & 0x07) << 18 | UInt32(p[i &+ 1] & 0x3F) << 12
                        | UInt32(p[i &+ 2] & 0x3F) << 6 | UInt32(p[i &+ 3] & 0x3F)
                    i &+= 4
                }
                if !isValidCodePoint(cp) { cp = 0xFFFD }
                if cp > 0xFFFF {
                    appendEscapedUnit(0xD800 + ((cp - 0x10000) >> 10), to: &output)
                    appendEscapedUnit(0xDC00 + ((cp - 0x10000) & 0x3FF), to: &output)
                } else {
                    appendEscapedUnit(cp, to: &output)
                }
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}

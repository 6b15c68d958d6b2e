/// Base64 as qemu-ga handles it: input checked for QEMU's character set, then
/// decoded with GLib's lenient rules; output standard, padded, unwrapped.
public enum Base64 {
    /// The one way base64 input is refused.
    public struct InvalidCharacters: Error, Equatable, CustomStringConvertible {
        public init() {}
        public var description: String { "Base64 data contains invalid characters" }
    }

    /// 0...63 for the alphabet, 0 for `=` (GLib counts it as a zero digit),
    /// `skip` for newline, `invalid` for everything else.
    private static let skip: UInt8 = 0xFE
    private static let invalid: UInt8 = 0xFF
    private static let ranks: [UInt8] = {
        var table = [UInt8](repeating: invalid, count: 256)
        for (rank, character) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(character)] = UInt8(rank)
        }
        table[Int(UInt8(ascii: "="))] = 0
        table[Int(UInt8(ascii: "\n"))] = skip
        return table
    }()

    public static func decode(_ text: String) throws(InvalidCharacters) -> [UInt8] {
        var text = text
        let result = text.withUTF8 { bytes in Result { () throws(InvalidCharacters) in try decode(bytes) } }
        return try result.get()
    }

    /// Decodes in groups of four significant characters; newlines are
    /// skipped, an incomplete last group is dropped, and a `=` as the third or
    /// fourth character of a group drops the byte it would have completed.
    public static func decode(_ input: UnsafeBufferPointer<UInt8>) throws(InvalidCharacters) -> [UInt8] {
        try ranks.withUnsafeBufferPointer { ranks throws(InvalidCharacters) in
            var output = [UInt8]()
            output.reserveCapacity(input.count / 4 * 3)
            var group: UInt32 = 0
            var digits = 0
            var third: UInt8 = 0, fourth: UInt8 = 0
            for character in input {
                let rank = ranks[Int(character)]
                if rank == skip { continue }
                if rank == invalid { throw InvalidCharacters() }
                group = group << 6 | UInt32(rank)
                third = fourth
                fourth = character
                digits += 1
                if digits == 4 {
                    output.append(UInt8(truncatingIfNeeded: group >> 16))
                    if third != UInt8(ascii: "=") { output.append(UInt8(truncatingIfNeeded: group >> 8)) }
                    if fourth != UInt8(ascii: "=") { output.append(UInt8(truncatingIfNeeded: group)) }
                    digits = 0
                    group = 0
                }
            }
            return output
        }
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let length = (bytes.count + 2) / 3 * 4
        return String(unsafeUninitializedCapacity: length) { output in
            alphabet.withUnsafeBufferPointer { alphabet in
                var written = 0
                var iterator = bytes.makeIterator()
                while let first = iterator.next() {
                    let second = iterator.next()
                    let third = iterator.next()
                    let group = UInt32(first) << 16 | UInt32(second ?? 0) << 8 | UInt32(third ?? 0)
                    output[written] = alphabet[Int(group >> 18 & 63)]
                    output[written + 1] = alphabet[Int(group >> 12 & 63)]
                    output[written + 2] = second == nil ? UInt8(ascii: "=") : alphabet[Int(group >> 6 & 63)]
                    output[written + 3] = third == nil ? UInt8(ascii: "=") : alphabet[Int(group & 63)]
                    written += 4
                }
                return written
            }
        }
    }
}

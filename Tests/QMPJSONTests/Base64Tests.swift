import Testing
import QMPJSON

@Suite struct Base64Tests {
    /// Edge cases of `buf-b64` (padding, short and misplaced groups), as
    /// qemu-ga 7.2 decoded them.
    @Test(arguments: [
        ("aGVsbG8gd29ybGQK", Array("hello world\n".utf8)),
        ("QUJ", []), ("QUJDRA", Array("ABC".utf8)), ("QQ", []),
        ("QQ==QUJD", Array("AABC".utf8)), ("====", [0]),
        ("aGVs\nbG8=\n", Array("hello".utf8)), ("", []), ("\n\n", []),
        ("QQ=B", [0x41, 0x01]),
    ] as [(String, [UInt8])])
    func decodesLikeGLib(text: String, bytes: [UInt8]) throws {
        #expect(try Base64.decode(text) == bytes)
    }

    @Test(arguments: ["aGVs bG8=", "aGVs@", "a-b_", "aGVs\r\n", "a\u{0}b", "é"])
    func refusesCharactersOutsideQemusSet(text: String) {
        #expect(throws: Base64.InvalidCharacters()) { try Base64.decode(text) }
        #expect("\(Base64.InvalidCharacters())" == "Base64 data contains invalid characters")
    }

    @Test func encodesStandardPadded() {
        #expect(Base64.encode(Array("hello".utf8)) == "aGVsbG8=")
        #expect(Base64.encode(Array(" world\n".utf8)) == "IHdvcmxkCg==")
        #expect(Base64.encode([UInt8]()) == "")
        #expect(Base64.encode(Array("abc".utf8)) == "YWJj")
    }

    @Test func roundTripsEveryByteValueAtEveryLength() throws {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }
        for length in [0, 1, 2, 3, 4, 5, 255, 256, 257, 1000] {
            let slice = Array(bytes.prefix(length))
            #expect(try Base64.decode(Base64.encode(slice)) == slice)
        }
    }
}

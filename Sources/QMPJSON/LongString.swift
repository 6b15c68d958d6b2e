// Long strings (the base64 payloads of guest-file-write and guest-exec, up
// to 64 MiB) skip the token text buffer: while the lexer is inside one, its
// body goes into pieces of fixed size that are never copied to grow, and the
// finished body becomes its String with one copy, each piece freed as soon
// as it is copied. Only plain ASCII bodies (no escape, no byte above 0x7F)
// qualify, since for them the String is the body itself; anything else goes
// back to the token text and the ordinary decoding.

/// A string body at least this long (and plain) is lexed as a long string.
let longStringThreshold = 1 << 16

struct LongStringBuilder {
    /// Size of each piece: big enough to keep the piece count low and to be
    /// its own mapping (the agent maps blocks of 2 MiB and more on their
    /// own), so that the memory of each piece is returned as soon as it has
    /// been copied.
    static let pieceSize = 2 << 20

    private(set) var pieces: [[UInt8]] = []
    /// Body bytes held (the quotes are not).
    private(set) var count = 0
    /// A piece kept from an earlier string, so that a stream of writes does
    /// not map fresh pages for every request.
    private var spare: [[UInt8]] = []

    var isActive: Bool { count > 0 }

    /// Appends a run of body bytes, none above 0x7F.
    mutating func append(_ p: UnsafePointer<UInt8>, _ n: Int) {
        var offset = 0
        while offset < n {
            if pieces.isEmpty || pieces[pieces.count &- 1].count == Self.pieceSize {
                var piece = spare.popLast() ?? []
                piece.reserveCapacity(Self.pieceSize)
                pieces.append(piece)
            }
            let last = pieces.count &- 1
            let take = min(n &- offset, Self.pieceSize &- pieces[last].count)
            pieces[last].append(contentsOf: UnsafeBufferPointer(start: p + offset, count: take))
            offset &+= take
        }
        count &+= n
    }

    /// The body as one String; the builder is empty afterwards.
    mutating func finish() -> String {
        let total = count
        var pieces = takePieces()
        let string = String(unsafeUninitializedCapacity: total) { output in
            var written = 0
            for index in pieces.indices {
                pieces[index].withUnsafeBufferPointer { piece in
                    UnsafeMutableRawPointer(output.baseAddress! + written)
                        .copyMemory(from: piece.baseAddress!, byteCount: piece.count)
                    written &+= piece.count
                }
                // Freed at once, except the ones kept as spares below.
                if index >= Self.spareCount { pieces[index] = [] }
            }
            return written
        }
        for index in pieces.indices.prefix(Self.spareCount) {
            var piece: [UInt8] = []
            swap(&piece, &pieces[index])
            recycle(&piece)
        }
        return string
    }

    /// Hands the body back (to be appended to the token text) and empties
    /// the builder.
    mutating func drain(into text: inout [UInt8]) {
        text.reserveCapacity(text.count + count)
        var all = takePieces()
        for index in all.indices {
            var piece: [UInt8] = []
            swap(&piece, &all[index])
            text.append(contentsOf: piece)
            recycle(&piece)
        }
    }

    mutating func discard() {
        var all = takePieces()
        for index in all.indices {
            var piece: [UInt8] = []
            swap(&piece, &all[index])
            recycle(&piece)
        }
    }

    private mutating func takePieces() -> [[UInt8]] {
        var all: [[UInt8]] = []
        swap(&all, &pieces)
        count = 0
        return all
    }

    static let spareCount = 1

    /// Keeps a piece for the next long string; frees the others now.
    private mutating func recycle(_ piece: inout [UInt8]) {
        var taken: [UInt8] = []
        swap(&taken, &piece)
        if spare.count < Self.spareCount {
            taken.removeAll(keepingCapacity: true)
            spare.append(taken)
        }
    }
}

/// Whether some byte of p[0..<n] is above 0x7F.
func containsNonASCII(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    var i = 0
    var bits: UInt64 = 0
    while i &+ 32 <= n {
        bits |= loadWord(p, i) | loadWord(p, i &+ 8) | loadWord(p, i &+ 16) | loadWord(p, i &+ 24)
        i &+= 32
    }
    while i &+ 8 <= n {
        bits |= loadWord(p, i)
        i &+= 8
    }
    while i < n {
        bits |= UInt64(p[i])
        i &+= 1
    }
    return bits & swarHighs != 0
}

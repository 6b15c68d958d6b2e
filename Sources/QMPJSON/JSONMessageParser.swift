/// What the incremental parser produces, in input order.
public enum JSONParserOutput: Equatable, Sendable {
    /// A complete top-level JSON value.
    case value(JSONValue)
    /// The complete QMP error `desc`, e.g. "JSON parse error, stray '@'",
    /// "JSON token size limit exceeded", "JSON parse error, expecting value".
    case error(String)
}

/// The streamer's limits (QEMU: 64 MiB of token text per message, 2 Mi
/// tokens per message, 1024 open brackets/braces).
public struct JSONLimits: Equatable, Sendable {
    /// Maximum size of one token's text, and of all queued token text of
    /// one message (the streamer's check is `size + token + 1 > max`).
    public var maxTokenSize: Int
    public var maxTokenCount: Int
    public var maxNesting: Int

    public init(maxTokenSize: Int = 67_108_864, maxTokenCount: Int = 2_097_152, maxNesting: Int = 1024) {
        precondition(maxTokenSize >= 1 && maxTokenSize < Int(UInt32.max) / 2, "maxTokenSize out of range")
        precondition(maxTokenCount >= 1 && maxNesting >= 0)
        self.maxTokenSize = maxTokenSize
        self.maxTokenCount = maxTokenCount
        self.maxNesting = maxNesting
    }

    public static let qemu = JSONLimits()
}

enum TokenKind: UInt8 {
    case leftBrace, rightBrace, leftBracket, rightBracket, colon, comma
    case integer, float, keyword, string
    /// A string lexed as a long string: its value is
    /// `JSONMessageParser.longStrings[start]`.
    case longString
}

/// One token of the message under construction. Its text (for strings,
/// numbers and keywords) lives in `JSONMessageParser.text`.
struct QueuedToken {
    var kind: TokenKind
    var start: UInt32
    var length: UInt32
}

enum LexerState: UInt8 {
    case start
    case recovery
    case doubleQuoted, doubleQuotedEscape
    case singleQuoted, singleQuotedEscape
    case sign            // after '-'
    case zero            // "0" or "-0"
    case digits          // integer part [1-9][0-9]*
    case fraction        // after '.'
    case fractionDigits
    case exponent        // after 'e' / 'E'
    case exponentSign
    case exponentDigits
    case keyword
}

/// QEMU's JSONMessageParser: lexer -> streamer -> parser, fed in chunks of
/// any size. Complete values and errors come back from `feed` in input order.
///
/// Deliberate difference from qemu-ga 7.2: a 0xFF byte silently discards all
/// partial input (lexer state, partial token, queued tokens, depth counters,
/// error recovery) and restarts the lexer in its start state.
public struct JSONMessageParser: Sendable {
    let limits: JSONLimits

    // Lexer.
    var state: LexerState = .start
    /// Where the token being lexed starts in `text`.
    var tokenStart = 0

    // Streamer: the message under construction.
    /// Text of the queued tokens, followed by the partial token being lexed.
    var text: [UInt8] = []
    var tokens: [QueuedToken] = []
    /// Index in `tokens` of the current message's first token (tokens before
    /// it belong to finished messages and are dropped at the end of a chunk).
    var messageStart = 0
    /// Sum of the queued tokens' text lengths (structural tokens count 1).
    var queuedSize = 0
    var braces = 0
    var brackets = 0

    /// The body of a long plain string being lexed (see LongString.swift);
    /// while it is active the token text holds only the opening quote.
    var longString = LongStringBuilder()
    /// The values of the current message's `.longString` tokens.
    var longStrings: [String] = []

    /// Results of the current `feed` call.
    var outputs: [JSONParserOutput] = []
    /// The parser's working storage, kept between messages.
    var parseScratch = ParseScratch()

    public init() {
        self.init(limits: .qemu)
    }

    public init(limits: JSONLimits) {
        self.limits = limits
    }

    /// Feeds the next chunk of the input stream; returns every value and
    /// error it completed, in order.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [JSONParserOutput] {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return [] }
        base.withMemoryRebound(to: UInt8.self, capacity: bytes.count) { p in
            lex(p, bytes.count)
        }
        var result: [JSONParserOutput] = []
        swap(&result, &outputs)
        if result.count > 4 {
            // Busy stream: start the next batch with room for as many.
            outputs.reserveCapacity(result.count)
        }
        return result
    }

    public mutating func feed<C: Collection>(_ bytes: C) -> [JSONParserOutput] where C.Element == UInt8 {
        if let result = bytes.withContiguousStorageIfAvailable({ feed(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(bytes).withUnsafeBytes { feed($0) }
    }

    /// Forgets all partial input: start state, empty queue.
    public mutating func reset() {
        state = .start
        discardMessage()
    }
}

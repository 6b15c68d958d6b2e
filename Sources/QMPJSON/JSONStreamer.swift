// The streamer: collects the lexer's tokens into messages, enforces the
// limits, and hands a message to the parser when its brackets balance (or a
// depth goes negative).

let tokenSizeLimitText = "JSON token size limit exceeded"
let tokenCountLimitText = "JSON token count limit exceeded"
let nestingLimitText = "JSON nesting depth limit exceeded"
let parseErrorPrefix = Array("JSON parse error, ".utf8)

extension JSONMessageParser {
    /// Drops the message under construction, including the partial token.
    ///
    /// To keep the per-message cost low, the token queue and its text are
    /// not cleared here but at the end of the chunk (`compactQueue`); the
    /// next message's tokens simply start after the old ones. Big leftovers
    /// are released at once.
    mutating func discardMessage() {
        longString.discard()
        if !longStrings.isEmpty { longStrings.removeAll() }
        queuedSize = 0
        braces = 0
        brackets = 0
        if text.count > 1 << 16 || tokens.count > 1 << 12 {
            if text.capacity > 1 << 20 { text = [] } else { text.removeAll(keepingCapacity: true) }
            if tokens.capacity > 1 << 16 { tokens = [] } else { tokens.removeAll(keepingCapacity: true) }
            tokenStart = 0
        }
        messageStart = tokens.count
    }

    /// At the end of a chunk: drop the text and tokens of finished messages,
    /// keeping a partial token (moved to the front) if the lexer is in one.
    mutating func compactQueue(inToken: Bool) {
        guard messageStart == tokens.count else { return }
        if !tokens.isEmpty { tokens.removeAll(keepingCapacity: true) }
        messageStart = 0
        if inToken {
            if tokenStart > 0 {
                text.removeSubrange(0..<tokenStart)
                tokenStart = 0
            }
        } else if !text.isEmpty {
            if text.capacity > 1 << 20 { text = [] } else { text.removeAll(keepingCapacity: true) }
            tokenStart = 0
        }
    }

    /// A lexical error: the partial token plus the offending byte is the
    /// rejected text.
    mutating func lexicalError(_ offending: UInt8) {
        if longString.isActive { longString.drain(into: &text) }
        text.append(offending)
        var message = parseErrorPrefix
        message.append(contentsOf: "stray '".utf8)
        let rejected = text[tokenStart...]
        // The text ends at its first NUL byte, as a C string would.
        if let nul = rejected.firstIndex(of: 0) {
            message.append(contentsOf: rejected[..<nul])
        } else {
            message.append(contentsOf: rejected)
        }
        message.append(UInt8(ascii: "'"))
        // Release the (possibly huge) partial token before decoding.
        discardMessage()
        outputs.append(.error(ModifiedUTF8.decodeLossy(message)))
    }

    /// The partial token grew beyond the cap: the streamer rejects it (its
    /// size check cannot pass) and the lexer restarts in the start state.
    mutating func oversizedToken() {
        discardMessage()
        outputs.append(.error(tokenSizeLimitText))
    }

    @inline(__always)
    mutating func structural(_ kind: TokenKind) {
        process(kind, start: text.count, length: 0, size: 1)
    }

    @inline(__always)
    mutating func textToken(_ kind: TokenKind) {
        let length = text.count &- tokenStart
        process(kind, start: tokenStart, length: length, size: length)
    }

    mutating func process(_ kind: TokenKind, start: Int, length: Int, size: Int) {
        switch kind {
        case .leftBrace: braces &+= 1
        case .rightBrace: braces &-= 1
        case .leftBracket: brackets &+= 1
        case .rightBracket: brackets &-= 1
        default: break
        }
        if queuedSize &+ size &+ 1 > limits.maxTokenSize {
            discardMessage()
            outputs.append(.error(tokenSizeLimitText))
            return
        }
        if tokens.count &- messageStart &+ 1 > limits.maxTokenCount {
            discardMessage()
            outputs.append(.error(tokenCountLimitText))
            return
        }
        if braces &+ brackets > limits.maxNesting {
            discardMessage()
            outputs.append(.error(nestingLimitText))
            return
        }
        tokens.append(QueuedToken(kind: kind, start: UInt32(truncatingIfNeeded: start),
                                  length: UInt32(truncatingIfNeeded: length)))
        queuedSize &+= size
        if (braces > 0 || brackets > 0) && braces >= 0 && brackets >= 0 {
            return
        }
        let result = text.withUnsafeBufferPointer { textBuffer in
            tokens.withUnsafeBufferPointer { tokenBuffer in
                var parser = TokenParser(text: textBuffer,
                                         tokens: UnsafeBufferPointer(rebasing: tokenBuffer[messageStart...]),
                                         longStrings: longStrings)
                return parser.parse(scratch: &parseScratch)
            }
        }
        discardMessage()
        outputs.append(result)
    }
}

// The lexer: QEMU's JSON dialect (single-quoted strings, lexer-level
// recovery after an error, 64 MiB token cap), driven over a byte pointer.
// Runs of bytes that do not change the state (string bodies, digits,
// keyword letters, whitespace, garbage during recovery) are scanned in bulk
// and appended to the partial token in one copy.

extension JSONMessageParser {
    @inline(__always)
    static func isRecoveryStop(_ b: UInt8) -> Bool {
        // Recovery ends at a structural byte, a control byte other than TAB,
        // or an impossible byte (0xFE, 0xFF).
        switch b {
        case 0x09: return false
        case 0x00...0x1F, 0xFE, 0xFF: return true
        case UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "{"), UInt8(ascii: "}"),
             UInt8(ascii: ":"), UInt8(ascii: ","):
            return true
        default: return false
        }
    }

    @inline(__always)
    static func isDigit(_ b: UInt8) -> Bool { b &- 0x30 < 10 }

    /// Appends bytes to the token text; short runs byte by byte (cheaper
    /// than the generic bulk append for the typical 1-10 byte token).
    @inline(__always)
    mutating func appendRun(_ p: UnsafePointer<UInt8>, _ count: Int) {
        if count <= 16 {
            var k = 0
            while k < count {
                text.append(p[k])
                k &+= 1
            }
        } else {
            text.append(contentsOf: UnsafeBufferPointer(start: p, count: count))
        }
    }

    /// The length of the token being lexed, quotes included.
    var partialTokenLength: Int {
        @inline(__always) get { text.count &- tokenStart &+ longString.count }
    }

    /// Appends a run of string body to the token text; a plain body that
    /// grows past the threshold moves to the long string.
    @inline(__always)
    mutating func appendStringRun(_ p: UnsafePointer<UInt8>, _ count: Int) {
        let before = text.count &- tokenStart
        appendRun(p, count)
        // Crossing the threshold (once per token): move the body out of the
        // token text if it is plain so far.
        if before < longStringThreshold && text.count &- tokenStart >= longStringThreshold {
            let bodyStart = tokenStart &+ 1
            let moved = text.withUnsafeBufferPointer { buffer in
                let body = buffer.baseAddress! + bodyStart
                let length = buffer.count &- bodyStart
                guard scanPlainASCII(body, from: 0, to: length) == length else { return false }
                longString.append(body, length)
                return true
            }
            if moved { text.removeSubrange(bodyStart...) }
        }
    }

    /// The closing quote of a long string: its value becomes a token.
    mutating func finishLongString() {
        let size = longString.count &+ 2
        longStrings.append(longString.finish())
        text.removeSubrange(tokenStart...)
        process(.longString, start: longStrings.count &- 1, length: 0, size: size)
    }

    mutating func lex(_ p: UnsafePointer<UInt8>, _ n: Int) {
        var state = self.state
        let maxToken = limits.maxTokenSize
        var i = 0
        while i < n {
            let b = p[i]
            if b == 0xFF {
                // The silent flush.
                discardMessage()
                state = .start
                i &+= 1
                continue
            }
            switch state {
            case .start:
                switch b {
                case 0x20, 0x09, 0x0A, 0x0D:
                    i &+= 1
                    while i < n {
                        let c = p[i]
                        guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { break }
                        i &+= 1
                    }
                    continue
                case UInt8(ascii: "{"): i &+= 1; structural(.leftBrace); continue
                case UInt8(ascii: "}"): i &+= 1; structural(.rightBrace); continue
                case UInt8(ascii: "["): i &+= 1; structural(.leftBracket); continue
                case UInt8(ascii: "]"): i &+= 1; structural(.rightBracket); continue
                case UInt8(ascii: ","): i &+= 1; structural(.comma); continue
                case UInt8(ascii: ":"): i &+= 1; structural(.colon); continue
                case UInt8(ascii: "\""), UInt8(ascii: "'"):
                    // Fast path: the whole string is in this chunk.
                    let bodyEnd = min(n, i &+ maxToken)
                    let stop = scanStringBody(p, from: i &+ 1, to: bodyEnd, quote: b)
                    if stop < bodyEnd && p[stop] == b {
                        let bodyLength = stop &- i &- 1
                        if bodyLength >= longStringThreshold && !containsNonASCII(p + (i &+ 1), bodyLength) {
                            // The String is made straight from the input.
                            longStrings.append(String(decoding: UnsafeBufferPointer(start: p + (i &+ 1), count: bodyLength),
                                                      as: UTF8.self))
                            i = stop &+ 1
                            process(.longString, start: longStrings.count &- 1, length: 0, size: bodyLength &+ 2)
                            continue
                        }
                        tokenStart = text.count
                        appendRun(p + i, stop &+ 1 &- i)
                        i = stop &+ 1
                        textToken(.string)
                        continue
                    }
                    state = b == UInt8(ascii: "\"") ? .doubleQuoted : .singleQuoted
                case UInt8(ascii: "0")...UInt8(ascii: "9"):
                    // Fast path: a plain integer followed, in this chunk, by
                    // a byte that cannot continue it.
                    let runEnd = min(n, i &+ maxToken)
                    var j = i &+ 1
                    if b != UInt8(ascii: "0") {
                        while j < runEnd && Self.isDigit(p[j]) { j &+= 1 }
                    }
                    if j < runEnd {
                        let c = p[j]
                        if !Self.isDigit(c) && c != 0x2E && c != 0x65 && c != 0x45 && c != 0xFF {
                            tokenStart = text.count
                            appendRun(p + i, j &- i)
                            i = j
                            textToken(.integer)
                            continue
                        }
                    }
                    state = b == UInt8(ascii: "0") ? .zero : .digits
                case UInt8(ascii: "-"): state = .sign
                case UInt8(ascii: "a")...UInt8(ascii: "z"):
                    // Fast path: the whole keyword is in this chunk.
                    let runEnd = min(n, i &+ maxToken)
                    var j = i &+ 1
                    while j < runEnd && p[j] &- 0x61 < 26 { j &+= 1 }
                    if j < runEnd && p[j] != 0xFF {
                        tokenStart = text.count
                        appendRun(p + i, j &- i)
                        i = j
                        textToken(.keyword)
                        continue
                    }
                    state = .keyword
                default:
                    tokenStart = text.count
                    i &+= 1
                    lexicalError(b)
                    state = .recovery
                    continue
                }
                tokenStart = text.count
                text.append(b)
                i &+= 1

            case .recovery:
                while i < n && !Self.isRecoveryStop(p[i]) { i &+= 1 }
                // The stop byte is not consumed: it is lexed again.
                if i < n { state = .start }
                continue

            case .doubleQuoted, .singleQuoted:
                let quote: UInt8 = state == .doubleQuoted ? 0x22 : 0x27
                let room = maxToken &+ 1 &- partialTokenLength
                let runEnd = min(n, i &+ room)
                var stop: Int
                if longString.isActive {
                    stop = scanStringBody(p, from: i, to: runEnd, quote: quote, plain: true)
                    if stop > i {
                        longString.append(p + i, stop &- i)
                        i = stop
                    }
                    if stop < runEnd && p[stop] >= 0x80 && p[stop] < 0xFE {
                        // Not plain after all: the rest goes through the token
                        // text, from the next round on.
                        longString.drain(into: &text)
                        stop = runEnd
                    }
                } else {
                    stop = scanStringBody(p, from: i, to: runEnd, quote: quote)
                    if stop > i {
                        appendStringRun(p + i, stop &- i)
                        i = stop
                    }
                }
                if stop < runEnd {
                    let c = p[i]
                    if c == quote {
                        i &+= 1
                        if longString.isActive {
                            finishLongString()
                        } else {
                            text.append(c)
                            textToken(.string)
                        }
                        state = .start
                        continue
                    } else if c == 0x5C {
                        // Escapes are decoded from the token text.
                        if longString.isActive { longString.drain(into: &text) }
                        text.append(c)
                        i &+= 1
                        state = state == .doubleQuoted ? .doubleQuotedEscape : .singleQuotedEscape
                    } else if c == 0xFF {
                        continue
                    } else {
                        i &+= 1
                        lexicalError(c)
                        state = .recovery
                        continue
                    }
                }

            case .doubleQuotedEscape, .singleQuotedEscape:
                guard b >= 0x20 && b <= 0xFD else {
                    i &+= 1
                    lexicalError(b)
                    state = .recovery
                    continue
                }
                text.append(b)
                i &+= 1
                state = state == .doubleQuotedEscape ? .doubleQuoted : .singleQuoted

            case .keyword:
                let room = maxToken &+ 1 &- (text.count &- tokenStart)
                let runEnd = min(n, i &+ room)
                var j = i
                while j < runEnd && p[j] &- 0x61 < 26 { j &+= 1 }
                if j > i {
                    appendRun(p + i, j &- i)
                    i = j
                }
                if j < runEnd {
                    // The byte after the keyword is not consumed (0xFF, the
                    // flush, discards the keyword instead).
                    if p[j] == 0xFF { continue }
                    textToken(.keyword)
                    state = .start
                    continue
                }

            case .digits, .fractionDigits, .exponentDigits:
                let room = maxToken &+ 1 &- (text.count &- tokenStart)
                let runEnd = min(n, i &+ room)
                var j = i
                while j < runEnd && Self.isDigit(p[j]) { j &+= 1 }
                if j > i {
                    appendRun(p + i, j &- i)
                    i = j
                }
                if j < runEnd {
                    let c = p[i]
                    if c == 0xFF { continue }
                    if state != .exponentDigits && (c == 0x65 || c == 0x45) {          // e E
                        text.append(c)
                        i &+= 1
                        state = .exponent
                    } else if state == .digits && c == 0x2E {                        // .
                        text.append(c)
                        i &+= 1
                        state = .fraction
                    } else {
                        // Not consumed: lexed again from the start state.
                        textToken(state == .digits ? .integer : .float)
                        state = .start
                        continue
                    }
                }

            case .zero:
                if b == 0x2E {
                    text.append(b)
                    i &+= 1
                    state = .fraction
                } else if Self.isDigit(b) {
                    i &+= 1
                    lexicalError(b)
                    state = .recovery
                    continue
                } else {
                    textToken(.integer)
                    state = .start
                    continue
                }

            case .sign, .fraction, .exponent, .exponentSign:
                let next: LexerState
                if Self.isDigit(b) {
                    switch state {
                    case .sign: next = b == 0x30 ? .zero : .digits
                    case .fraction: next = .fractionDigits
                    default: next = .exponentDigits
                    }
                } else if state == .exponent && (b == 0x2B || b == 0x2D) {            // + -
                    next = .exponentSign
                } else {
                    i &+= 1
                    lexicalError(b)
                    state = .recovery
                    continue
                }
                text.append(b)
                i &+= 1
                state = next
            }
            // Something was added to the partial token: enforce the cap.
            if partialTokenLength > maxToken {
                oversizedToken()
                state = .start
            }
        }
        self.state = state
        compactQueue(inToken: state != .start && state != .recovery)
    }
}

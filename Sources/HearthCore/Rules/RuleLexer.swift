/// One token of a rule expression.
struct RuleToken: Equatable {
    enum Kind: Equatable {
        case identifier(String)
        case number(Double)
        case string(String)
        case regex(pattern: String, flags: String)
        /// An operator or punctuation: `( ) [ ] , . ? : ! + - * / % == === != !== < <= > >= && ||`.
        case symbol(String)
        case end
    }

    var kind: Kind
    /// Offset of the token's first character in the expression, in Unicode scalars.
    var offset: Int
}

/// Splits a rule expression into tokens. A `/` starts a regular-expression literal where an
/// operand is expected (after `(`, `,` or an operator) and is division elsewhere, as in JavaScript.
struct RuleLexer {
    let scalars: [Unicode.Scalar]
    var index = 0

    init(_ source: String) {
        scalars = Array(source.unicodeScalars)
    }

    static func tokenize(_ source: String) throws(RuleError) -> [RuleToken] {
        var lexer = RuleLexer(source)
        var tokens: [RuleToken] = []
        while true {
            let token = try lexer.next(regexAllowed: RuleLexer.operandExpected(after: tokens.last))
            tokens.append(token)
            if token.kind == .end { return tokens }
        }
    }

    static func operandExpected(after token: RuleToken?) -> Bool {
        guard let token else { return true }
        switch token.kind {
        case .identifier, .number, .string, .regex: return false
        case .symbol(let symbol): return symbol != ")" && symbol != "]"
        case .end: return false
        }
    }

    func error(_ message: String, at offset: Int) -> RuleError {
        RuleError(message, at: SourcePosition(line: 1, column: offset + 1))
    }

    var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }
    func peek(_ ahead: Int) -> Unicode.Scalar? { index + ahead < scalars.count ? scalars[index + ahead] : nil }

    static func isIdentifierStart(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "_", "$": return true
        default: return false
        }
    }

    static func isIdentifierPart(_ scalar: Unicode.Scalar) -> Bool {
        isIdentifierStart(scalar) || ("0"..."9").contains(scalar)
    }

    mutating func next(regexAllowed: Bool) throws(RuleError) -> RuleToken {
        while let scalar = current, scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" { index += 1 }
        let start = index
        guard let scalar = current else { return RuleToken(kind: .end, offset: start) }
        if RuleLexer.isIdentifierStart(scalar) {
            var name = String.UnicodeScalarView()
            while let part = current, RuleLexer.isIdentifierPart(part) {
                name.append(part)
                index += 1
            }
            return RuleToken(kind: .identifier(String(name)), offset: start)
        }
        if ("0"..."9").contains(scalar) || (scalar == "." && peek(1).map { ("0"..."9").contains($0) } == true) {
            return RuleToken(kind: .number(try number()), offset: start)
        }
        if scalar == "'" || scalar == "\"" {
            return RuleToken(kind: .string(try string(quote: scalar)), offset: start)
        }
        if scalar == "/" && regexAllowed {
            return try regex()
        }
        for symbol in RuleLexer.symbols where matches(symbol) {
            index += symbol.unicodeScalars.count
            switch symbol {
            case "**": throw error("The ** operator is not supported in rules.", at: start)
            case "=": throw error("Assignment is not allowed in rules; use == to compare.", at: start)
            case ";": throw error("A rule is a single expression; ';' is not allowed.", at: start)
            case "&", "|": throw error("Bitwise operators are not supported in rules; use && or ||.", at: start)
            default: return RuleToken(kind: .symbol(symbol), offset: start)
            }
        }
        throw error("Unexpected character '\(scalar)'.", at: start)
    }

    /// Longest first, so `===` wins over `==` and `=`.
    static let symbols = [
        "===", "!==", "**", "==", "!=", "<=", ">=", "&&", "||",
        "(", ")", "[", "]", ",", ".", "?", ":", "!", "+", "-", "*", "/", "%", "<", ">", "=", ";", "&", "|",
    ]

    func matches(_ symbol: String) -> Bool {
        var offset = 0
        for expected in symbol.unicodeScalars {
            guard peek(offset) == expected else { return false }
            offset += 1
        }
        return true
    }

    mutating func number() throws(RuleError) -> Double {
        let start = index
        var text = ""
        while let scalar = current, ("0"..."9").contains(scalar) || scalar == "." {
            text.unicodeScalars.append(scalar)
            index += 1
        }
        if let scalar = current, scalar == "e" || scalar == "E" {
            text.unicodeScalars.append(scalar)
            index += 1
            if let sign = current, sign == "+" || sign == "-" {
                text.unicodeScalars.append(sign)
                index += 1
            }
            while let scalar = current, ("0"..."9").contains(scalar) {
                text.unicodeScalars.append(scalar)
                index += 1
            }
        }
        if let scalar = current, RuleLexer.isIdentifierStart(scalar) {
            throw error("Invalid number.", at: start)
        }
        guard let value = Double(text) else { throw error("Invalid number \(text).", at: start) }
        return value
    }

    mutating func string(quote: Unicode.Scalar) throws(RuleError) -> String {
        let start = index
        index += 1
        var text = String.UnicodeScalarView()
        while true {
            guard let scalar = current else { throw error("Unterminated string literal.", at: start) }
            index += 1
            if scalar == quote { return String(text) }
            guard scalar == "\\" else {
                text.append(scalar)
                continue
            }
            guard let escaped = current else { throw error("Unterminated string literal.", at: start) }
            index += 1
            switch escaped {
            case "n": text.append("\n")
            case "t": text.append("\t")
            case "r": text.append("\r")
            case "b": text.append("\u{08}")
            case "f": text.append("\u{0C}")
            case "v": text.append("\u{0B}")
            case "0": text.append("\u{00}")
            case "u":
                var code: UInt32 = 0
                for _ in 0..<4 {
                    guard let digit = current, let value = digit.properties.isASCIIHexDigit ? UInt32(String(digit), radix: 16) : nil else {
                        throw error("Invalid \\u escape.", at: index)
                    }
                    code = code * 16 + value
                    index += 1
                }
                guard let decoded = Unicode.Scalar(code) else { throw error("Invalid \\u escape.", at: index) }
                text.append(decoded)
            default: text.append(escaped)
            }
        }
    }

    mutating func regex() throws(RuleError) -> RuleToken {
        let start = index
        index += 1
        var pattern = String.UnicodeScalarView()
        var inClass = false
        while true {
            guard let scalar = current, scalar != "\n" else { throw error("Unterminated regular expression.", at: start) }
            index += 1
            if scalar == "\\" {
                guard let escaped = current else { throw error("Unterminated regular expression.", at: start) }
                pattern.append(scalar)
                pattern.append(escaped)
                index += 1
                continue
            }
            if scalar == "[" { inClass = true }
            if scalar == "]" { inClass = false }
            if scalar == "/" && !inClass { break }
            pattern.append(scalar)
        }
        var flags = ""
        while let scalar = current, RuleLexer.isIdentifierPart(scalar) {
            flags.unicodeScalars.append(scalar)
            index += 1
        }
        return RuleToken(kind: .regex(pattern: String(pattern), flags: flags), offset: start)
    }
}

/// A place in a rules document: 1-based line and column (columns count Unicode scalars).
public struct SourcePosition: Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public var description: String { "line \(line), column \(column)" }
}

/// Why a rules document (or one expression in it) was refused, and where.
public struct RuleError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    /// Where in the document; nil for an expression compiled on its own.
    public var position: SourcePosition?

    public init(_ message: String, at position: SourcePosition? = nil) {
        self.message = message
        self.position = position
    }

    public var description: String {
        guard let position else { return message }
        return "Line \(position.line), column \(position.column): \(message)"
    }
}

/// A JSON value of a rules document with the place each value starts, as parsed from
/// Firebase's relaxed syntax (JSON plus `//` and `/* */` comments).
indirect enum RulesJSON {
    case object([(key: String, keyPosition: SourcePosition, value: RulesJSON)], SourcePosition)
    case array([RulesJSON], SourcePosition)
    /// A string, with the position of the character after its opening quote and the
    /// document column of each of its Unicode scalars (escapes take several columns).
    case string(String, SourcePosition, columns: [Int])
    case number(Double, SourcePosition)
    case bool(Bool, SourcePosition)
    case null(SourcePosition)

    var position: SourcePosition {
        switch self {
        case .object(_, let position), .array(_, let position), .string(_, let position, _),
            .number(_, let position), .bool(_, let position), .null(let position):
            return position
        }
    }

    var typeName: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }
}

/// Parses rules documents: strict JSON, plus comments, as `database.rules.json` files are.
struct RulesJSONParser {
    let scalars: [Unicode.Scalar]
    var index = 0
    var line = 1
    var column = 1
    var depth = 0

    static func parse(_ text: String) throws(RuleError) -> RulesJSON {
        var parser = RulesJSONParser(scalars: Array(text.unicodeScalars))
        try parser.skipSpace()
        guard parser.index < parser.scalars.count else { throw RuleError("The rules document is empty.", at: parser.position) }
        let value = try parser.value()
        try parser.skipSpace()
        guard parser.index == parser.scalars.count else {
            throw RuleError("Unexpected text after the end of the rules document.", at: parser.position)
        }
        return value
    }

    var position: SourcePosition { SourcePosition(line: line, column: column) }
    var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

    mutating func advance() {
        if scalars[index] == "\n" {
            line += 1
            column = 1
        } else {
            column += 1
        }
        index += 1
    }

    mutating func skipSpace() throws(RuleError) {
        while let scalar = current {
            switch scalar {
            case " ", "\t", "\n", "\r", "\u{FEFF}":
                advance()
            case "/":
                let start = position
                let next = index + 1 < scalars.count ? scalars[index + 1] : nil
                if next == "/" {
                    while let scalar = current, scalar != "\n" { _ = scalar; advance() }
                } else if next == "*" {
                    advance()
                    advance()
                    while true {
                        guard let scalar = current else { throw RuleError("Unterminated /* comment.", at: start) }
                        if scalar == "*", index + 1 < scalars.count, scalars[index + 1] == "/" {
                            advance()
                            advance()
                            break
                        }
                        advance()
                    }
                } else {
                    throw RuleError("Unexpected '/'.", at: start)
                }
            default:
                return
            }
        }
    }

    mutating func expect(_ scalar: Unicode.Scalar, _ what: String) throws(RuleError) {
        try skipSpace()
        guard current == scalar else { throw RuleError("Expected \(what).", at: position) }
        advance()
    }

    mutating func value() throws(RuleError) -> RulesJSON {
        try skipSpace()
        let start = position
        guard let scalar = current else { throw RuleError("Unexpected end of the rules document.", at: start) }
        switch scalar {
        case "{": return try object()
        case "[": return try array()
        case "\"":
            let (text, textStart, columns) = try string()
            return .string(text, textStart, columns: columns)
        case "t": try word("true"); return .bool(true, start)
        case "f": try word("false"); return .bool(false, start)
        case "n": try word("null"); return .null(start)
        case "-", "0"..."9": return try number()
        default: throw RuleError("Unexpected character '\(scalar)'.", at: start)
        }
    }

    mutating func word(_ word: String) throws(RuleError) {
        let start = position
        for expected in word.unicodeScalars {
            guard current == expected else { throw RuleError("Unexpected text; expected \(word).", at: start) }
            advance()
        }
    }

    mutating func number() throws(RuleError) -> RulesJSON {
        let start = position
        var text = ""
        while let scalar = current, "-+.eE0123456789".unicodeScalars.contains(scalar) {
            text.unicodeScalars.append(scalar)
            advance()
        }
        guard let number = Double(text), number.isFinite else { throw RuleError("Invalid number \(text).", at: start) }
        return .number(number, start)
    }

    mutating func string() throws(RuleError) -> (String, SourcePosition, [Int]) {
        let start = position
        advance()  // opening quote
        let textStart = position
        var text = String.UnicodeScalarView()
        var columns: [Int] = []
        while true {
            guard let scalar = current else { throw RuleError("Unterminated string.", at: start) }
            columns.append(column)
            advance()
            switch scalar {
            case "\"":
                columns.removeLast()
                return (String(text), textStart, columns)
            case "\\":
                guard let escaped = current else { throw RuleError("Unterminated string.", at: start) }
                advance()
                switch escaped {
                case "\"": text.append("\"")
                case "\\": text.append("\\")
                case "/": text.append("/")
                case "b": text.append("\u{08}")
                case "f": text.append("\u{0C}")
                case "n": text.append("\n")
                case "r": text.append("\r")
                case "t": text.append("\t")
                case "u":
                    var code: UInt32 = 0
                    for _ in 0..<4 {
                        guard let digit = current, let value = hexValue(digit) else {
                            throw RuleError("Invalid \\u escape in a string.", at: position)
                        }
                        code = code * 16 + value
                        advance()
                    }
                    guard let decoded = Unicode.Scalar(code) else { throw RuleError("Invalid \\u escape in a string.", at: position) }
                    text.append(decoded)
                default:
                    throw RuleError("Invalid escape '\\\(escaped)' in a string.", at: position)
                }
            case "\n":
                throw RuleError("Unterminated string (a line break inside a string).", at: start)
            default:
                text.append(scalar)
            }
        }
    }

    func hexValue(_ scalar: Unicode.Scalar) -> UInt32? {
        switch scalar {
        case "0"..."9": return scalar.value - 48
        case "a"..."f": return scalar.value - 97 + 10
        case "A"..."F": return scalar.value - 65 + 10
        default: return nil
        }
    }

    mutating func object() throws(RuleError) -> RulesJSON {
        let start = position
        depth += 1
        guard depth <= 64 else { throw RuleError("The rules document is nested too deeply.", at: start) }
        defer { depth -= 1 }
        advance()
        var members: [(key: String, keyPosition: SourcePosition, value: RulesJSON)] = []
        var seen: Set<[UInt8]> = []  // bytes: canonically equivalent keys are different keys
        try skipSpace()
        if current == "}" {
            advance()
            return .object(members, start)
        }
        while true {
            try skipSpace()
            let keyPosition = position
            guard current == "\"" else { throw RuleError("Expected a quoted key.", at: keyPosition) }
            let (key, _, _) = try string()
            guard seen.insert(Array(key.utf8)).inserted else { throw RuleError("Duplicate key \"\(key)\".", at: keyPosition) }
            try expect(":", "':' after a key")
            let value = try value()
            members.append((key, keyPosition, value))
            try skipSpace()
            if current == "," {
                advance()
                continue
            }
            try expect("}", "',' or '}'")
            return .object(members, start)
        }
    }

    mutating func array() throws(RuleError) -> RulesJSON {
        let start = position
        advance()
        var elements: [RulesJSON] = []
        try skipSpace()
        if current == "]" {
            advance()
            return .array(elements, start)
        }
        while true {
            elements.append(try value())
            try skipSpace()
            if current == "," {
                advance()
                continue
            }
            try expect("]", "',' or ']'")
            return .array(elements, start)
        }
    }
}

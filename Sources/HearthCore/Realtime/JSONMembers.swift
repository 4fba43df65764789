/// The members of one JSON object, as byte ranges of the text they came from, without building
/// any value: the realtime protocol's envelopes (`{"t":"d","d":{"r":1,"a":"p","b":{...}}}`)
/// are read this way, and only the parts a request needs are parsed, each by the parser that
/// fits it (``JSONParser`` for data, so its Firebase rules apply to the data alone).
///
/// Every byte of the object is checked against JSON's grammar (strings, escapes, numbers,
/// literals, nesting up to ``maxNesting``), so a malformed envelope is refused even where its
/// bad part is never looked at.
public struct JSONMembers: Sendable {
    /// One member: its (unescaped) key and where its value's text lies in the bytes.
    public struct Member: Sendable, Equatable {
        public let key: String
        public let range: Range<Int>
    }

    /// Deepest nesting of objects and arrays accepted anywhere in a message.
    public static let maxNesting = 64

    public let members: [Member]

    /// The range of the value named `key` (the last one, if a key repeats, as JSON parsers do).
    public subscript(key: String) -> Range<Int>? {
        members.last { $0.key == key }?.range
    }

    /// Scans the object that fills `range` of `bytes` (surrounding whitespace allowed).
    public init(_ bytes: UnsafeRawBufferPointer, range: Range<Int>) throws(DataError) {
        var scanner = Scanner(bytes: bytes, position: range.lowerBound, end: range.upperBound)
        scanner.skipWhitespace()
        members = try scanner.object()
        scanner.skipWhitespace()
        guard scanner.position == scanner.end else { throw JSONMembers.malformed }
    }

    /// Checks that `range` of `bytes` holds exactly one JSON value.
    public static func validate(_ bytes: UnsafeRawBufferPointer, range: Range<Int>) throws(DataError) {
        var scanner = Scanner(bytes: bytes, position: range.lowerBound, end: range.upperBound)
        scanner.skipWhitespace()
        try scanner.skipValue(depth: 0)
        scanner.skipWhitespace()
        guard scanner.position == scanner.end else { throw JSONMembers.malformed }
    }

    /// True if `range` holds an object (its first non-blank byte is `{`).
    public static func isObject(_ bytes: UnsafeRawBufferPointer, range: Range<Int>) -> Bool {
        firstByte(bytes, range: range) == UInt8(ascii: "{")
    }

    /// The first byte of the value in `range` that is not whitespace.
    public static func firstByte(_ bytes: UnsafeRawBufferPointer, range: Range<Int>) -> UInt8? {
        var index = range.lowerBound
        while index < range.upperBound, Scanner.isWhitespace(bytes[index]) { index += 1 }
        return index < range.upperBound ? bytes[index] : nil
    }

    static let malformed = DataError("Malformed message: it is not valid JSON.")

    struct Scanner {
        let bytes: UnsafeRawBufferPointer
        var position: Int
        let end: Int

        static func isWhitespace(_ byte: UInt8) -> Bool {
            byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
        }

        mutating func skipWhitespace() {
            while position < end, Scanner.isWhitespace(bytes[position]) { position += 1 }
        }

        func peek() -> UInt8? { position < end ? bytes[position] : nil }

        mutating func expect(_ byte: UInt8) throws(DataError) {
            guard peek() == byte else { throw JSONMembers.malformed }
            position += 1
        }

        mutating func object() throws(DataError) -> [Member] {
            var members: [Member] = []
            try sequence(UInt8(ascii: "{"), UInt8(ascii: "}")) { scanner throws(DataError) in
                let (key, value) = try scanner.member(depth: 1)
                members.append(Member(key: try JSONMembers.string(scanner.bytes, range: key), range: value))
            }
            return members
        }

        /// Reads `open`, then elements separated by commas (each read by `element`), then
        /// `close`.
        mutating func sequence(
            _ open: UInt8, _ close: UInt8, element: (inout Scanner) throws(DataError) -> Void
        ) throws(DataError) {
            try expect(open)
            skipWhitespace()
            if peek() == close {
                position += 1
                return
            }
            while true {
                skipWhitespace()
                try element(&self)
                skipWhitespace()
                if peek() == UInt8(ascii: ",") {
                    position += 1
                    continue
                }
                try expect(close)
                return
            }
        }

        /// One `"key": value` member of an object, its value nested `depth` deep: where the
        /// key (a string literal) and the value are.
        mutating func member(depth: Int) throws(DataError) -> (key: Range<Int>, value: Range<Int>) {
            let keyStart = position
            try skipString()
            let key = keyStart..<position
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            let valueStart = position
            try skipValue(depth: depth)
            return (key, valueStart..<position)
        }

        /// Skips one value, checking its grammar.
        mutating func skipValue(depth: Int) throws(DataError) {
            guard depth <= JSONMembers.maxNesting, let byte = peek() else { throw JSONMembers.malformed }
            switch byte {
            case UInt8(ascii: "\""):
                try skipString()
            case UInt8(ascii: "{"):
                try sequence(UInt8(ascii: "{"), UInt8(ascii: "}")) { scanner throws(DataError) in
                    _ = try scanner.member(depth: depth + 1)
                }
            case UInt8(ascii: "["):
                try sequence(UInt8(ascii: "["), UInt8(ascii: "]")) { scanner throws(DataError) in
                    try scanner.skipValue(depth: depth + 1)
                }
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            default: try skipNumber()
            }
        }

        mutating func literal(_ word: StaticString) throws(DataError) {
            let count = word.utf8CodeUnitCount
            guard end - position >= count else { throw JSONMembers.malformed }
            for offset in 0..<count where bytes[position + offset] != word.utf8Start[offset] { throw JSONMembers.malformed }
            position += count
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
        mutating func skipNumber() throws(DataError) {
            if peek() == UInt8(ascii: "-") { position += 1 }
            guard let first = peek(), Scanner.isDigit(first) else { throw JSONMembers.malformed }
            position += 1
            if first != UInt8(ascii: "0") { skipDigits() }
            if peek() == UInt8(ascii: ".") {
                position += 1
                guard let digit = peek(), Scanner.isDigit(digit) else { throw JSONMembers.malformed }
                skipDigits()
            }
            if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
                position += 1
                if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { position += 1 }
                guard let digit = peek(), Scanner.isDigit(digit) else { throw JSONMembers.malformed }
                skipDigits()
            }
        }

        static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

        mutating func skipDigits() {
            while let byte = peek(), Scanner.isDigit(byte) { position += 1 }
        }

        /// Skips a string, checking its escapes and that it has no raw control characters.
        /// (The bytes are UTF-8 already: WebSocket text frames are checked on arrival.)
        mutating func skipString() throws(DataError) {
            try expect(UInt8(ascii: "\""))
            while position < end {
                let byte = bytes[position]
                position += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return
                case UInt8(ascii: "\\"):
                    guard let escaped = peek() else { throw JSONMembers.malformed }
                    position += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                        UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        break
                    case UInt8(ascii: "u"):
                        guard end - position >= 4 else { throw JSONMembers.malformed }
                        for _ in 0..<4 {
                            guard Scanner.isHexDigit(bytes[position]) else { throw JSONMembers.malformed }
                            position += 1
                        }
                    default:
                        throw JSONMembers.malformed
                    }
                case 0..<0x20:
                    throw JSONMembers.malformed
                default:
                    break
                }
            }
            throw JSONMembers.malformed
        }

        static func isHexDigit(_ byte: UInt8) -> Bool {
            isDigit(byte) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
                || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "F"))
        }
    }

    /// The string value in `range` (a JSON string literal); throws if it is another type.
    public static func string(_ bytes: UnsafeRawBufferPointer, range: Range<Int>) throws(DataError) -> String {
        guard case .string(let text) = try JSONMembers.primitive(bytes, range: range) else {
            throw DataError("Malformed message: a string was expected.")
        }
        return text
    }

    /// The primitive (null, boolean, number or string) in `range`; objects and arrays are
    /// refused.
    public static func primitive(_ bytes: UnsafeRawBufferPointer, range: Range<Int>) throws(DataError) -> Node {
        guard let first = firstByte(bytes, range: range), first != UInt8(ascii: "{"), first != UInt8(ascii: "[") else {
            throw DataError("Malformed message: a JSON primitive was expected.")
        }
        return try JSONParser.parse(UnsafeRawBufferPointer(rebasing: bytes[range])).node
    }
}

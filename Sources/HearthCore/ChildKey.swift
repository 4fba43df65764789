/// The name of one child in the tree, with Firebase's ordering.
///
/// Firebase orders child names so that names that read as 32-bit signed integers come first,
/// ascending numerically (ties between equal integers, such as `"7"` and `"007"`, are broken by
/// length), followed by every other name in UTF-16 code-unit order. The integer reading is
/// computed once, when the key is made, so comparisons never re-parse.
public struct ChildKey: Sendable, Hashable {
    /// The name as written.
    public let string: String
    /// The integer reading (see ``integerValue``); meaningful only with `integerFlag`.
    @usableFromInline let integer: Int32
    /// Facts about the bytes, found once when the key is made: `asciiFlag`, `plainFlag`,
    /// `arrayIndexFlag`, `integerFlag`.
    @usableFromInline let flags: UInt8

    @usableFromInline static let asciiFlag: UInt8 = 1
    @usableFromInline static let plainFlag: UInt8 = 2
    @usableFromInline static let arrayIndexFlag: UInt8 = 4
    @usableFromInline static let integerFlag: UInt8 = 8

    /// The value of the name as a 32-bit integer under Firebase's rule, if it reads as one.
    @inlinable
    public var integerValue: Int32? { flags & ChildKey.integerFlag != 0 ? integer : nil }

    /// A key from its parts, as ``ChildEntry`` stores them.
    @inlinable
    init(string: String, integer: Int32, flags: UInt8) {
        self.string = string
        self.integer = integer
        self.flags = flags
    }

    /// Makes a key without validating it. Use ``KeyValidator`` for untrusted input.
    @inlinable
    public init(_ string: String) {
        var copy = string
        self = copy.withUTF8 { bytes in
            let raw = UnsafeRawBufferPointer(bytes)
            return ChildKey(string: string, utf8: raw, isASCII: ChildKey.isASCII(raw), isPlain: ChildKey.isPlain(raw))
        }
    }

    /// Makes a key from a string and its UTF-8 bytes, with what the caller already knows of them.
    ///
    /// - Parameters:
    ///   - isASCII: no byte is 0x80 or above.
    ///   - isPlain: no byte needs escaping in JSON (control characters, `"` and `\`).
    @inlinable
    init(string: String, utf8 bytes: UnsafeRawBufferPointer, isASCII: Bool, isPlain: Bool) {
        let integer = ChildKey.parseInteger(bytes: bytes.assumingMemoryBound(to: UInt8.self))
        var flags: UInt8 = (isASCII ? ChildKey.asciiFlag : 0) | (isPlain ? ChildKey.plainFlag : 0)
        if let integer {
            flags |= ChildKey.integerFlag
            if integer >= 0, bytes[0] != UInt8(ascii: "-"), bytes.count == 1 || bytes[0] != UInt8(ascii: "0") {
                flags |= ChildKey.arrayIndexFlag
            }
        }
        self.string = string
        self.integer = integer ?? 0
        self.flags = flags
    }

    /// True if the name is all ASCII, so comparing bytes is comparing UTF-16 code units.
    @inlinable
    var isASCII: Bool { flags & ChildKey.asciiFlag != 0 }

    /// True if no byte of the name needs escaping in JSON, so it can be written as it is.
    @inlinable
    var isPlain: Bool { flags & ChildKey.plainFlag != 0 }

    /// True if no byte needs escaping in a JSON string (control characters, `"` and `\`).
    @usableFromInline
    static func isPlain(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for byte in bytes where byte < 0x20 || byte == 0x22 || byte == 0x5C { return false }
        return true
    }

    @usableFromInline
    static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        while index + 8 <= bytes.count {
            if bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { return false }
            index += 8
        }
        while index < bytes.count {
            if bytes[index] >= 0x80 { return false }
            index += 1
        }
        return true
    }

    @usableFromInline
    static func parseInteger(bytes: UnsafeBufferPointer<UInt8>) -> Int32? {
        var index = 0
        let count = bytes.count
        // Most names start with neither a digit nor a minus sign.
        if count == 0 || (bytes[0] &- UInt8(ascii: "0") > 9 && bytes[0] != UInt8(ascii: "-")) { return nil }
        var negative = false
        if bytes[0] == UInt8(ascii: "-") {
            negative = true
            index = 1
        }
        // Skip leading zeros, but keep at least one digit.
        while index < count - 1 && bytes[index] == UInt8(ascii: "0") { index += 1 }
        let digits = count - index
        if digits < 1 || digits > 10 { return nil }
        var value: Int64 = 0
        while index < count {
            let digit = bytes[index] &- UInt8(ascii: "0")
            if digit > 9 { return nil }
            value = value * 10 + Int64(digit)
            index += 1
        }
        if negative { value = -value }
        guard value >= Int64(Int32.min) && value <= Int64(Int32.max) else { return nil }
        return Int32(value)
    }

    /// True if the name is a canonical non-negative array index (`0`, `1`, ... without leading zeros).
    @inlinable
    public var isArrayIndex: Bool { flags & ChildKey.arrayIndexFlag != 0 }
}

extension ChildKey: Comparable {
    /// Firebase's `nameCompare`, made a total order.
    @inlinable
    public static func < (lhs: ChildKey, rhs: ChildKey) -> Bool {
        compare(lhs, rhs) < 0
    }

    /// Byte equality: Firebase keys are compared by code units, so canonically equivalent but
    /// differently encoded names (`é` and `e` + U+0301) are different keys.
    @inlinable
    public static func == (lhs: ChildKey, rhs: ChildKey) -> Bool {
        if lhs.isASCII && rhs.isASCII { return lhs.string == rhs.string }
        return lhs.string.utf8.elementsEqual(rhs.string.utf8)
    }

    @inlinable
    public func hash(into hasher: inout Hasher) {
        hasher.combine(string)
    }

    /// Three-way comparison in Firebase key order: negative, zero or positive.
    @inlinable
    public static func compare(_ lhs: ChildKey, _ rhs: ChildKey) -> Int {
        compare(lhs.string, lhs.integer, lhs.flags, rhs.string, rhs.integer, rhs.flags)
    }

    /// ``compare(_:_:)`` on the parts of two keys, so that entries compare without making keys.
    @inlinable
    static func compare(
        _ lhs: String, _ lhsInteger: Int32, _ lhsFlags: UInt8, _ rhs: String, _ rhsInteger: Int32, _ rhsFlags: UInt8
    ) -> Int {
        let lhsIsInteger = lhsFlags & integerFlag != 0
        let rhsIsInteger = rhsFlags & integerFlag != 0
        if lhsIsInteger != rhsIsInteger { return lhsIsInteger ? -1 : 1 }
        if lhsIsInteger {
            if lhsInteger != rhsInteger { return lhsInteger < rhsInteger ? -1 : 1 }
            let lengthDifference = lhs.utf8.count - rhs.utf8.count
            if lengthDifference != 0 { return lengthDifference }
            return UTF16Order.compare(lhs, rhs)
        }
        guard lhsFlags & rhsFlags & asciiFlag != 0 else { return UTF16Order.compare(lhs, rhs) }
        let (lowA, highA) = StringLayout.words(lhs)
        let (lowB, highB) = StringLayout.words(rhs)
        if StringLayout.isSmall(highA) && StringLayout.isSmall(highB) {
            // Both up to 15 bytes, held in registers: byte order is the order of the
            // big-endian words (zero padding sorts a prefix first).
            let a = lowA.byteSwapped
            let b = lowB.byteSwapped
            if a != b { return a < b ? -1 : 1 }
            let c = StringLayout.payload(highA).byteSwapped
            let d = StringLayout.payload(highB).byteSwapped
            if c != d { return c < d ? -1 : 1 }
            return StringLayout.count(highA) - StringLayout.count(highB)
        }
        if let a = StringLayout.nativeUTF8(low: lowA, high: highA), let b = StringLayout.nativeUTF8(low: lowB, high: highB) {
            return compareBytes(a, b)
        }
        // ASCII strings compare by bytes in the standard library's fast path.
        if lhs == rhs { return 0 }
        return lhs < rhs ? -1 : 1
    }

    /// Byte order of two byte strings, eight bytes at a time (big-endian words), then length.
    @inlinable
    static func compareBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let shared = Swift.min(a.count, b.count)
        var index = 0
        while index + 8 <= shared {
            let x = a.loadUnaligned(fromByteOffset: index, as: UInt64.self).bigEndian
            let y = b.loadUnaligned(fromByteOffset: index, as: UInt64.self).bigEndian
            if x != y { return x < y ? -1 : 1 }
            index += 8
        }
        while index < shared {
            if a[index] != b[index] { return a[index] < b[index] ? -1 : 1 }
            index += 1
        }
        return a.count - b.count
    }
}

extension ChildKey: CustomStringConvertible, ExpressibleByStringLiteral {
    public var description: String { string }
    public init(stringLiteral value: String) { self.init(value) }
}

/// Compares strings by UTF-16 code units, as JavaScript and Java do, working on UTF-8 bytes.
///
/// UTF-8 byte order equals code-point order; it differs from UTF-16 order only between
/// supplementary characters (4-byte UTF-8, surrogate pairs in UTF-16) and U+E000...U+FFFF, which
/// UTF-16 puts after the surrogates. The first differing byte decides, with that one swap.
public enum UTF16Order {
    @inlinable
    public static func compare(_ lhs: String, _ rhs: String) -> Int {
        var a = lhs
        var b = rhs
        return a.withUTF8 { pa in b.withUTF8 { pb in compare(pa, pb) } }
    }

    @inlinable
    public static func compare(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Int {
        let shared = min(a.count, b.count)
        var index = 0
        while index < shared {
            let x = a[index]
            let y = b[index]
            if x != y {
                return Int(rank(x)) - Int(rank(y))
            }
            index += 1
        }
        return a.count - b.count
    }

    /// Maps a byte so that 4-byte lead bytes (0xF0...0xF4) sort before the lead bytes of
    /// U+E000...U+FFFF (0xEE, 0xEF), matching UTF-16 order.
    @inlinable
    static func rank(_ byte: UInt8) -> UInt16 {
        switch byte {
        case 0xEE, 0xEF: return UInt16(byte) + 0x10
        default: return UInt16(byte)
        }
    }
}

/// The name of one child in the tree, with Firebase's ordering.
///
/// Firebase orders child names so that names that read as 32-bit signed integers come first,
/// ascending numerically (ties between equal integers, such as `"7"` and `"007"`, are broken by
/// length), followed by every other name in UTF-16 code-unit order. The integer reading is
/// computed once, when the key is made, so comparisons never re-parse.
public struct ChildKey: Sendable, Hashable {
    /// The name as written.
    public let string: String
    /// The value of the name as a 32-bit integer under Firebase's rule, if it reads as one.
    public let integerValue: Int32?
    /// True if the name is all ASCII, so comparing bytes is comparing UTF-16 code units.
    @usableFromInline let isASCII: Bool

    /// Makes a key without validating it. Use ``KeyValidator`` for untrusted input.
    @inlinable
    public init(_ string: String) {
        var copy = string
        let (integer, ascii) = copy.withUTF8 { bytes in
            (ChildKey.parseInteger(bytes: bytes), ChildKey.isASCII(UnsafeRawBufferPointer(bytes)))
        }
        self.init(string: string, integerValue: integer, isASCII: ascii)
    }

    /// Makes a key from bytes already known to be valid UTF-8.
    @inlinable
    init(string: String, integerValue: Int32?, isASCII: Bool) {
        self.string = string
        self.integerValue = integerValue
        self.isASCII = isASCII
    }

    /// Makes a key from its UTF-8 bytes, which must be valid UTF-8.
    @inlinable
    init(validUTF8 bytes: UnsafeRawBufferPointer, isASCII: Bool) {
        self.init(
            string: String(decoding: bytes, as: UTF8.self),
            integerValue: ChildKey.parseInteger(bytes: bytes.assumingMemoryBound(to: UInt8.self)),
            isASCII: isASCII)
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
        if count == 0 { return nil }
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
    public var isArrayIndex: Bool {
        guard let value = integerValue, value >= 0 else { return false }
        let utf8 = string.utf8
        return utf8.first != UInt8(ascii: "-") && (utf8.count == 1 || utf8.first != UInt8(ascii: "0"))
    }
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
        switch (lhs.integerValue, rhs.integerValue) {
        case let (a?, b?):
            if a != b { return a < b ? -1 : 1 }
            let lengthDifference = lhs.string.utf8.count - rhs.string.utf8.count
            if lengthDifference != 0 { return lengthDifference }
            return UTF16Order.compare(lhs.string, rhs.string)
        case (.some, .none):
            return -1
        case (.none, .some):
            return 1
        case (.none, .none):
            if lhs.isASCII && rhs.isASCII {
                // ASCII strings compare by bytes in the standard library's fast path.
                if lhs.string == rhs.string { return 0 }
                return lhs.string < rhs.string ? -1 : 1
            }
            return UTF16Order.compare(lhs.string, rhs.string)
        }
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

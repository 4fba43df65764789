/// A location in the tree: a sequence of child keys from the root.
public struct Path: Sendable, Hashable, CustomStringConvertible {
    /// Firebase's limit on how deep a path (and so the data below it) may go.
    public static let maxDepth = 32

    public private(set) var keys: [ChildKey]

    /// The root, `/`.
    public static let root = Path(keys: [])

    public init(keys: [ChildKey]) { self.keys = keys }

    /// Number of keys; the root has depth 0.
    public var depth: Int { keys.count }
    public var isRoot: Bool { keys.isEmpty }
    public var lastKey: ChildKey? { keys.last }

    /// The parent path; the root's parent is the root.
    public var parent: Path { Path(keys: Array(keys.dropLast())) }

    public func appending(_ key: ChildKey) -> Path {
        var copy = self
        copy.keys.append(key)
        return copy
    }

    public func appending(_ path: Path) -> Path {
        var copy = self
        copy.keys.append(contentsOf: path.keys)
        return copy
    }

    /// True if `self` is `other` or one of its ancestors.
    public func contains(_ other: Path) -> Bool {
        other.keys.count >= keys.count && other.keys.starts(with: keys)
    }

    /// `other` relative to `self`, if `self` contains it.
    public func relative(_ other: Path) -> Path? {
        contains(other) ? Path(keys: Array(other.keys[keys.count...])) : nil
    }

    /// `a/b`, or `""` for the root: a path relative to somewhere (an update's keys, a child
    /// ordering, the realtime protocol's paths).
    public var relativeText: String { keys.map(\.string).joined(separator: "/") }

    /// `/a/b`, or `/` for the root.
    public var description: String {
        keys.isEmpty ? "/" : keys.reduce(into: "") { $0 += "/" + $1.string }
    }

    /// Parses a slash-separated path of raw (already decoded) keys; empty segments are ignored.
    ///
    /// Used for multi-path `PATCH` keys and other paths given inside data.
    public init(validating string: some StringProtocol) throws(DataError) {
        var keys = [ChildKey]()
        for segment in string.split(separator: "/", omittingEmptySubsequences: true) {
            keys.append(try KeyValidator.validatedKey(String(segment)))
        }
        guard keys.count <= Path.maxDepth else { throw DataError.invalidPath("Path is too deep") }
        self.keys = keys
    }

    /// Parses the path part of a URL: splits on `/`, percent-decodes each segment, ignores
    /// empty segments and validates every key.
    public init(urlPath: some StringProtocol) throws(DataError) {
        try self.init(urlSegments: urlPath.split(separator: "/", omittingEmptySubsequences: true))
    }

    /// Like ``init(urlPath:)`` for a path already split at `/`. (Inlinable, so that the
    /// server's call is specialised for `Substring`: generic, the decoding cost 1.6% of a
    /// small read.)
    @inlinable
    public init<Segment: StringProtocol>(urlSegments: [Segment]) throws(DataError) {
        var keys = [ChildKey]()
        keys.reserveCapacity(urlSegments.count)
        for segment in urlSegments {
            guard let decoded = PercentDecoding.decode(segment, plusAsSpace: false) else {
                throw DataError.invalidPath()
            }
            if decoded.isEmpty { continue }
            keys.append(try KeyValidator.validatedKey(decoded))
        }
        guard keys.count <= Path.maxDepth else { throw DataError.invalidPath("Path is too deep") }
        self.init(keys: keys)
    }
}

/// Firebase's rules for child names.
public enum KeyValidator {
    /// Longest key, in UTF-8 bytes.
    public static let maxKeyBytes = 768

    /// True if `byte` may never appear in a key: `. $ # [ ] /`, 0x00-0x1F and 0x7F.
    @inlinable @inline(__always)
    public static func isForbidden(_ byte: UInt8) -> Bool {
        // One bit per forbidden byte below 128: 0x00-0x1F # $ . / (low word), [ ] DEL (high word).
        let low: UInt64 = 0x0000_C018_FFFF_FFFF
        let high: UInt64 = 0x8000_0000_2800_0000
        if byte >= 128 { return false }
        return byte < 64 ? (low >> UInt64(byte)) & 1 != 0 : (high >> UInt64(byte - 64)) & 1 != 0
    }

    /// True if the UTF-8 bytes form a valid key.
    @inlinable
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !bytes.isEmpty, bytes.count <= maxKeyBytes else { return false }
        var index = 0
        while index + 8 <= bytes.count {
            if wordHasForbidden(bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)) { return false }
            index += 8
        }
        while index < bytes.count {
            if isForbidden(bytes[index]) { return false }
            index += 1
        }
        return true
    }

    /// True if any byte of `word` is forbidden in a key (SWAR: eight bytes without branches).
    @inlinable @inline(__always)
    static func wordHasForbidden(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        @inline(__always) func has(_ byte: UInt64) -> UInt64 {
            let difference = word ^ (ones &* byte)
            return (difference &- ones) & ~difference
        }
        let below20 = (word &- ones &* 0x20) & ~word
        let found = below20 | has(0x7F) | has(0x23) | has(0x24) | has(0x2E) | has(0x2F) | has(0x5B) | has(0x5D)
        return found & highs != 0
    }

    /// True if the string is a valid key.
    public static func isValid(_ key: String) -> Bool {
        var copy = key
        return copy.withUTF8 { isValid(UnsafeRawBufferPointer($0)) }
    }

    /// The key, or `Invalid path: Invalid token in path`.
    public static func validatedKey(_ string: String) throws(DataError) -> ChildKey {
        guard isValid(string) else { throw DataError.invalidPath() }
        return ChildKey(string)
    }
}

/// Percent-decoding for URL paths and query strings.
public enum PercentDecoding {
    /// Decodes `%XX` escapes (and `+` as a space if asked). Nil if an escape is malformed or the
    /// result is not valid UTF-8.
    @inlinable
    public static func decode(_ text: some StringProtocol, plusAsSpace: Bool) -> String? {
        let utf8 = text.utf8
        if !utf8.contains(UInt8(ascii: "%")) && !(plusAsSpace && utf8.contains(UInt8(ascii: "+"))) {
            return String(text)
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(utf8.count)
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue)
                else { return nil }
                bytes.append(high << 4 | low)
            case UInt8(ascii: "+") where plusAsSpace:
                bytes.append(UInt8(ascii: " "))
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    @usableFromInline
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

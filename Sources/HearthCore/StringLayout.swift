/// Direct access to the bytes of Swift strings, for the JSON hot paths.
///
/// The standard library's string layout is frozen (it is part of the ABI). On 64-bit
/// little-endian platforms a `String` is two words:
///
/// - A *small* string (up to 15 UTF-8 bytes) keeps its bytes inside the value: bytes 0...7 in
///   the first word and 8...14 in the low seven bytes of the second, whose top byte is a
///   discriminator (`0xE0` for ASCII, `0xA0` otherwise) plus the byte count. Unused bytes are
///   zero.
/// - A *native* string (made at run time, stored in its own heap object) has its byte count in
///   the low 48 bits of the first word (whose top nibble is `0x3`, or `0xF` for ASCII) and the
///   storage object's address in the second (top nibble `0`); the bytes start 32 bytes into
///   that object.
///
/// Reading the two words in registers avoids what `withUTF8` does for a small string (copy it to
/// the stack) and the store-forwarding stalls of reading that copy back eight bytes at a time,
/// and the closure and checks of `withContiguousStorageIfAvailable` for a native one; making a
/// small string from two words avoids the standard library's generic validating initialiser.
///
/// ``isAvailable`` is false on platforms with another layout; callers then take the standard
/// path. ``checkLayout()`` verifies the layout against strings the standard library made (the
/// tests run it, and `hearth serve` runs it at start-up and refuses to start if it fails).
public enum StringLayout {
    #if _pointerBitWidth(_64) && _endian(little)
    /// True where the layout above holds (64-bit little-endian platforms).
    public static let isAvailable = true
    #else
    public static let isAvailable = false
    #endif

    /// The longest small string, in UTF-8 bytes.
    public static let capacity = 15

    /// The two words of a string's representation (meaningful as bytes only if ``isSmall(_:)``).
    @inlinable @inline(__always)
    public static func words(_ string: String) -> (low: UInt64, high: UInt64) {
        unsafeBitCast(string, to: (UInt64, UInt64).self)
    }

    /// True if the second word belongs to a small string (discriminator bit 61).
    @inlinable @inline(__always)
    public static func isSmall(_ high: UInt64) -> Bool {
        isAvailable && (high >> 61) & 1 == 1
    }

    /// The byte count of a small string, from its second word.
    @inlinable @inline(__always)
    public static func count(_ high: UInt64) -> Int {
        Int(truncatingIfNeeded: (high >> 56) & 0xF)
    }

    /// The second word with its discriminator byte cleared: bytes 8...14, zero-padded.
    @inlinable @inline(__always)
    public static func payload(_ high: UInt64) -> UInt64 {
        high & 0x00FF_FFFF_FFFF_FFFF
    }

    /// The bytes of a native string (see above), or nil for any other kind of string.
    @inlinable @inline(__always)
    public static func nativeUTF8(low: UInt64, high: UInt64) -> UnsafeRawBufferPointer? {
        guard isAvailable && high >> 60 == 0 && (low >> 60) & 0x3 == 0x3 && high != 0 else { return nil }
        return UnsafeRawBufferPointer(
            start: UnsafeRawPointer(bitPattern: UInt(truncatingIfNeeded: high) &+ 32),
            count: Int(truncatingIfNeeded: low & 0x0000_FFFF_FFFF_FFFF))
    }

    /// Makes a small string from its bytes, already known to be valid UTF-8: `low` holds bytes
    /// 0...7 and `high` bytes 8...14, zero beyond `count` (at most 15).
    @inlinable @inline(__always)
    static func make(low: UInt64, high: UInt64, count: Int, isASCII: Bool) -> String {
        unsafeBitCast((low, StringLayout.high(high, count: count, isASCII: isASCII)), to: String.self)
    }

    /// Makes a string from up to 15 valid UTF-8 bytes at `start`. `readable` is how many bytes
    /// from `start` may be read (at least `count`); with 16 or more, the bytes are loaded as
    /// two words, else one at a time.
    @inlinable @inline(__always)
    static func make(_ start: UnsafePointer<UInt8>, count: Int, readable: Int, isASCII: Bool) -> String {
        let (low, high) = load(start, count: count, readable: readable)
        return make(low: low, high: high, count: count, isASCII: isASCII)
    }

    /// Loads up to 15 bytes at `start` as a small string's words without the discriminator
    /// (zero past `count`). `readable` is as for ``make(_:count:readable:isASCII:)``.
    @inlinable @inline(__always)
    static func load(_ start: UnsafePointer<UInt8>, count: Int, readable: Int) -> (low: UInt64, high: UInt64) {
        var low: UInt64 = 0
        var high: UInt64 = 0
        if readable >= 16 {
            let raw = UnsafeRawPointer(start)
            let first = raw.loadUnaligned(as: UInt64.self)
            let second = raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            low = count >= 8 ? first : first & ((1 &<< UInt64(truncatingIfNeeded: count &* 8)) &- 1)
            high = count <= 8 ? 0 : second & ((1 &<< UInt64(truncatingIfNeeded: (count &- 8) &* 8)) &- 1)
        } else {
            for index in 0..<count {
                let byte = UInt64(start[index])
                if index < 8 {
                    low |= byte << UInt64(index * 8)
                } else {
                    high |= byte << UInt64((index - 8) * 8)
                }
            }
        }
        return (low, high)
    }

    /// The second word of a small string with these bytes and count (see ``load``).
    @inlinable @inline(__always)
    static func high(_ payload: UInt64, count: Int, isASCII: Bool) -> UInt64 {
        let discriminator: UInt64 = isASCII ? 0xE0 : 0xA0
        return payload | (discriminator | UInt64(truncatingIfNeeded: count)) << 56
    }

    /// Checks the layout against strings the standard library made, for every length from 0 to
    /// 15, ASCII and not; returns a description of the first mismatch, or nil.
    public static func checkLayout() -> String? {
        guard isAvailable else { return nil }
        for count in 0...capacity {
            for ascii in [true, false] {
                // "é" is two bytes: a non-ASCII string of the exact length needs an even split.
                var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: count)
                if !ascii {
                    guard count >= 2 else { continue }
                    bytes[0] = 0xC3
                    bytes[1] = 0xA9
                }
                for index in bytes.indices where bytes[index] == UInt8(ascii: "a") {
                    bytes[index] = UInt8(ascii: "a") + UInt8(index % 26)
                }
                let made = String(decoding: bytes, as: UTF8.self)
                let (low, high) = words(made)
                guard isSmall(high), self.count(high) == count else {
                    return "a \(count)-byte string is not small as expected"
                }
                var expectedLow: UInt64 = 0
                var expectedHigh: UInt64 = 0
                for (index, byte) in bytes.enumerated() {
                    if index < 8 { expectedLow |= UInt64(byte) << UInt64(index * 8) }
                    else { expectedHigh |= UInt64(byte) << UInt64((index - 8) * 8) }
                }
                guard low == expectedLow, payload(high) == expectedHigh else {
                    return "the bytes of a \(count)-byte string are not where expected"
                }
                let rebuilt = bytes.withUnsafeBufferPointer {
                    make($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, count: count, readable: count, isASCII: ascii)
                }
                guard rebuilt == made, Array(rebuilt.utf8) == bytes, words(rebuilt) == (low, high) else {
                    return "a \(count)-byte string made from its bytes differs"
                }
            }
        }
        // Native strings of several lengths, ASCII and not: their bytes where expected.
        for count in [16, 17, 31, 64, 100, 1000] {
            for ascii in [true, false] {
                var bytes = [UInt8]((0..<count).map { UInt8(ascii: "a") + UInt8($0 % 26) })
                if !ascii {
                    bytes[count / 2] = 0xC3
                    bytes[count / 2 + 1] = 0xA9
                }
                let made = String(decoding: bytes, as: UTF8.self)
                let (low, high) = words(made)
                guard let native = nativeUTF8(low: low, high: high), Array(native) == bytes else {
                    return "the bytes of a \(count)-byte native string are not where expected"
                }
                let fromLiteral = "a string literal longer than fifteen bytes"
                let (literalLow, literalHigh) = words(fromLiteral)
                guard nativeUTF8(low: literalLow, high: literalHigh) == nil else {
                    return "a string literal reads as a native string"
                }
                withExtendedLifetime(made) {}
            }
        }
        return nil
    }
}

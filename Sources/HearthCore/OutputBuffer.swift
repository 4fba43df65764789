/// A growable byte buffer for serialisers.
///
/// Non-copyable, so it is owned in one place and appending costs no reference counting and no
/// exclusivity checks: just a capacity test and a store.
public struct OutputBuffer: ~Copyable {
    @usableFromInline var storage: UnsafeMutablePointer<UInt8>
    @usableFromInline var capacity: Int
    @usableFromInline var written = 0

    /// Bytes written so far.
    @inlinable public var count: Int { written }

    public init(capacity: Int = 4096) {
        self.capacity = Swift.max(capacity, 16)
        storage = .allocate(capacity: self.capacity)
    }

    deinit { storage.deallocate() }

    @usableFromInline
    mutating func grow(toFit extra: Int) {
        var newCapacity = capacity * 2
        while newCapacity < written + extra { newCapacity *= 2 }
        let newStorage = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newStorage.update(from: storage, count: written)
        storage.deallocate()
        storage = newStorage
        capacity = newCapacity
    }

    @inlinable @inline(__always)
    public mutating func reserve(_ extra: Int) {
        if written + extra > capacity { grow(toFit: extra) }
    }

    @inlinable @inline(__always)
    public mutating func append(_ byte: UInt8) {
        if written == capacity { grow(toFit: 1) }
        storage[written] = byte
        written += 1
    }

    @inlinable @inline(__always)
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        (storage + written).update(from: source.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        written += bytes.count
    }

    /// Appends `true` or `false`.
    @inlinable @inline(__always)
    public mutating func append(bool value: Bool) {
        // The ASCII bytes as one little-endian word, stored whole (eight bytes reserved).
        append(word: value ? 0x6575_7274 : 0x65_736C_6166, count: value ? 4 : 5)
    }

    /// Appends `null`.
    @inlinable @inline(__always)
    public mutating func appendNull() {
        append(word: 0x6C6C_756E, count: 4)
    }

    /// Appends the first `count` (at most 8) bytes of `word`, least significant first, with one
    /// eight-byte store.
    @inlinable @inline(__always)
    mutating func append(word: UInt64, count: Int) {
        reserve(8)
        UnsafeMutableRawPointer(storage + written).storeBytes(of: word.littleEndian, as: UInt64.self)
        written += count
    }

    /// Appends bytes: short runs (up to 64 bytes, most strings) as overlapping eight-byte
    /// words, longer ones with `memcpy`.
    @inlinable @inline(__always)
    public mutating func append(copying bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        guard count >= 8 && count <= 64, let source = bytes.baseAddress else { return append(bytes) }
        reserve(count)
        let destination = UnsafeMutableRawPointer(storage + written)
        var index = 0
        while index + 8 < count {
            destination.storeBytes(of: source.loadUnaligned(fromByteOffset: index, as: UInt64.self), toByteOffset: index, as: UInt64.self)
            index += 8
        }
        destination.storeBytes(of: source.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self), toByteOffset: count - 8, as: UInt64.self)
        written += count
    }

    @inlinable
    public mutating func append(_ string: StaticString) {
        append(UnsafeRawBufferPointer(start: string.utf8Start, count: string.utf8CodeUnitCount))
    }

    @inlinable
    public mutating func append(_ string: String) {
        var copy = string
        copy.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    @inlinable
    public mutating func append(repeating byte: UInt8, count repeatCount: Int) {
        reserve(repeatCount)
        (storage + written).update(repeating: byte, count: repeatCount)
        written += repeatCount
    }

    /// Writes a signed integer in decimal: eight digits at a time from the right (four
    /// independent pairs, in 32-bit arithmetic), then two per step.
    @inlinable
    public mutating func append(integer value: Int64) {
        reserve(20)
        var magnitude = value.magnitude
        if value < 0 {
            storage[written] = UInt8(ascii: "-")
            written += 1
        }
        var index = written + OutputBuffer.decimalDigitCount(magnitude)
        written = index
        while magnitude >= 100_000_000 {
            let low = UInt32(truncatingIfNeeded: magnitude % 100_000_000)
            magnitude /= 100_000_000
            let high = low / 10_000
            let rest = low % 10_000
            storePair(high / 100, at: index - 8)
            storePair(high % 100, at: index - 6)
            storePair(rest / 100, at: index - 4)
            storePair(rest % 100, at: index - 2)
            index -= 8
        }
        var rest = UInt32(truncatingIfNeeded: magnitude)
        while rest >= 100 {
            storePair(rest % 100, at: index - 2)
            rest /= 100
            index -= 2
        }
        if rest >= 10 {
            storePair(rest, at: index - 2)
        } else {
            storage[index - 1] = UInt8(truncatingIfNeeded: rest) &+ UInt8(ascii: "0")
        }
    }

    /// Writes `value` in exactly `width` decimal digits (1...9), with leading zeros.
    @inlinable
    mutating func append(digitsOf value: UInt32, width: Int) {
        reserve(width)
        var rest = value
        var index = written + width
        while index - written >= 2 {
            storePair(rest % 100, at: index - 2)
            rest /= 100
            index -= 2
        }
        if index > written { storage[written] = UInt8(truncatingIfNeeded: rest % 10) &+ UInt8(ascii: "0") }
        written += width
    }

    /// Stores the two digits of `pair` (0...99) at `index`.
    @inlinable @inline(__always)
    mutating func storePair(_ pair: UInt32, at index: Int) {
        let pairs = OutputBuffer.digitPairs.utf8Start
        let offset = Int(truncatingIfNeeded: pair) &* 2
        storage[index] = pairs[offset]
        storage[index + 1] = pairs[offset + 1]
    }

    /// "00", "01", ... "99".
    @usableFromInline
    static let digitPairs: StaticString =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

    /// The number of decimal digits of `value` (1 for 0): an estimate from the bit length,
    /// corrected by one comparison.
    @inlinable @inline(__always)
    static func decimalDigitCount(_ value: UInt64) -> Int {
        // bits × 1233 / 4096 (just under log10(2)) is the digit count or one less. `value | 1`
        // makes 0 count as one digit and changes no other count (powers of ten above 1 are even).
        let bits = 64 - (value | 1).leadingZeroBitCount
        let estimate = (bits &* 1233) >> 12
        return estimate &+ ((value | 1) >= powerOfTen(estimate) ? 1 : 0)
    }

    /// 10^exponent for 0...19 (a table the compiler builds from the switch).
    @inlinable @inline(__always)
    static func powerOfTen(_ exponent: Int) -> UInt64 {
        switch exponent {
        case 0: return 1
        case 1: return 10
        case 2: return 100
        case 3: return 1000
        case 4: return 10000
        case 5: return 100000
        case 6: return 1000000
        case 7: return 10000000
        case 8: return 100000000
        case 9: return 1000000000
        case 10: return 10000000000
        case 11: return 100000000000
        case 12: return 1000000000000
        case 13: return 10000000000000
        case 14: return 100000000000000
        case 15: return 1000000000000000
        case 16: return 10000000000000000
        case 17: return 100000000000000000
        case 18: return 1000000000000000000
        default: return 10_000_000_000_000_000_000
        }
    }

    /// The bytes written, valid only inside `body`.
    public func withBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(UnsafeRawBufferPointer(start: storage, count: count))
    }

    /// A copy of the bytes written.
    public var bytes: [UInt8] {
        Array(UnsafeBufferPointer(start: storage, count: count))
    }

    /// The bytes written, decoded as UTF-8.
    public var string: String {
        String(decoding: UnsafeBufferPointer(start: storage, count: count), as: UTF8.self)
    }

    /// Forgets what was written, keeping the memory.
    public mutating func removeAll() { written = 0 }
}

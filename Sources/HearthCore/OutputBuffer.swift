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

    /// Writes a signed integer in decimal.
    @inlinable
    public mutating func append(integer value: Int64) {
        reserve(20)
        var magnitude = value.magnitude
        if value < 0 {
            storage[written] = UInt8(ascii: "-")
            written += 1
        }
        // Count the digits, then write them backwards in place.
        var digits = 1
        var probe = magnitude
        while probe >= 10 {
            probe /= 10
            digits += 1
        }
        var index = written + digits
        written = index
        repeat {
            index -= 1
            storage[index] = UInt8(truncatingIfNeeded: magnitude % 10) &+ UInt8(ascii: "0")
            magnitude /= 10
        } while magnitude > 0
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

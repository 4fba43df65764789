/// A growable byte buffer for serialisers: raw memory, no per-append uniqueness checks.
public final class OutputBuffer {
    @usableFromInline @exclusivity(unchecked) var storage: UnsafeMutablePointer<UInt8>
    @usableFromInline @exclusivity(unchecked) var capacity: Int
    /// Bytes written so far.
    public var count: Int { _count }
    @usableFromInline @exclusivity(unchecked) var _count = 0

    public init(capacity: Int = 4096) {
        self.capacity = max(capacity, 16)
        storage = .allocate(capacity: self.capacity)
    }

    deinit { storage.deallocate() }

    @usableFromInline
    func grow(toFit extra: Int) {
        var newCapacity = capacity * 2
        while newCapacity < _count + extra { newCapacity *= 2 }
        let newStorage = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newStorage.update(from: storage, count: _count)
        storage.deallocate()
        storage = newStorage
        capacity = newCapacity
    }

    @inlinable @inline(__always)
    public func reserve(_ extra: Int) {
        if _count + extra > capacity { grow(toFit: extra) }
    }

    @inlinable @inline(__always)
    public func append(_ byte: UInt8) {
        if _count == capacity { grow(toFit: 1) }
        storage[_count] = byte
        _count += 1
    }

    @inlinable @inline(__always)
    public func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        (storage + _count).update(from: source.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        _count += bytes.count
    }

    @inlinable
    public func append(_ string: StaticString) {
        append(UnsafeRawBufferPointer(start: string.utf8Start, count: string.utf8CodeUnitCount))
    }

    @inlinable
    public func append(_ string: String) {
        var copy = string
        copy.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    @inlinable
    public func append(repeating byte: UInt8, count repeatCount: Int) {
        reserve(repeatCount)
        (storage + _count).update(repeating: byte, count: repeatCount)
        _count += repeatCount
    }

    /// Writes a signed integer in decimal.
    @inlinable
    public func append(integer value: Int64) {
        reserve(20)
        var magnitude = value.magnitude
        if value < 0 {
            storage[_count] = UInt8(ascii: "-")
            _count += 1
        }
        var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 32 bytes of scratch
        let written: Int = withUnsafeMutableBytes(of: &digits) { scratch in
            var index = 32
            repeat {
                index -= 1
                scratch[index] = UInt8(truncatingIfNeeded: magnitude % 10) + UInt8(ascii: "0")
                magnitude /= 10
            } while magnitude > 0
            let length = 32 - index
            (storage + _count).update(from: scratch.baseAddress!.assumingMemoryBound(to: UInt8.self) + index, count: length)
            return length
        }
        _count += written
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
    public func removeAll() { _count = 0 }
}

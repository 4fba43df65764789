import HearthCore

/// Little-endian binary writing for the log and snapshot formats.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }

    mutating func u16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }

    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }

    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }

    mutating func raw(_ data: some Collection<UInt8>) { bytes.append(contentsOf: data) }

    /// A length-prefixed (u32) byte string.
    mutating func blob(_ data: [UInt8]) {
        u32(UInt32(data.count))
        raw(data)
    }

    /// A path: u16 key count, then each key as u16 length + UTF-8.
    mutating func path(_ path: Path) {
        u16(UInt16(path.depth))
        for key in path.keys {
            let utf8 = Array(key.string.utf8)
            u16(UInt16(utf8.count))
            raw(utf8)
        }
    }
}

/// Little-endian binary reading; every read is bounds-checked and throws on truncation.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    struct Truncated: Error {}

    var remaining: Int { bytes.count - offset }

    mutating func take(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0, offset + count <= bytes.count else { throw Truncated() }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count])
    }

    mutating func u8() throws -> UInt8 { try take(1)[0] }

    mutating func u16() throws -> UInt16 { UInt16(littleEndian: try take(2).loadUnaligned(as: UInt16.self)) }

    mutating func u32() throws -> UInt32 { UInt32(littleEndian: try take(4).loadUnaligned(as: UInt32.self)) }

    mutating func u64() throws -> UInt64 { UInt64(littleEndian: try take(8).loadUnaligned(as: UInt64.self)) }

    mutating func blob() throws -> UnsafeRawBufferPointer { try take(Int(try u32())) }

    mutating func path() throws -> Path {
        let count = Int(try u16())
        var keys: [ChildKey] = []
        keys.reserveCapacity(count)
        for _ in 0..<count {
            let utf8 = try take(Int(try u16()))
            keys.append(ChildKey(String(decoding: utf8, as: UTF8.self)))
        }
        return Path(keys: keys)
    }
}

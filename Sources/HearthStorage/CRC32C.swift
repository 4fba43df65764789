import CCRC32C

/// CRC-32C (Castagnoli, polynomial 0x1EDC6F41 reflected as 0x82F63B78), as etcd's WAL and
/// LevelDB's log use: the CPU's instruction where there is one (x86-64 with SSE 4.2, about
/// 20 times faster), else slicing-by-8 tables.
public enum CRC32C {
    /// Whether the CPU's instruction is used.
    static let hardware = hearth_crc32c_hardware() != 0

    /// The checksum of `bytes`, continuing from `crc` (0 to start).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard hardware else { return softwareChecksum(bytes, continuing: crc) }
        return ~hearth_crc32c_update(~crc, bytes.baseAddress, bytes.count)
    }

    static let tables: [[UInt32]] = {
        var tables = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for index in 0..<256 {
            var crc = UInt32(index)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            tables[0][index] = crc
        }
        for index in 0..<256 {
            for slice in 1..<8 {
                let previous = tables[slice - 1][index]
                tables[slice][index] = (previous >> 8) ^ tables[0][Int(previous & 0xFF)]
            }
        }
        return tables
    }()

    /// The checksum by tables (the fallback; tests compare the two).
    static func softwareChecksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        var value = ~crc
        var index = 0
        let count = bytes.count
        let t = tables
        while index + 8 <= count {
            let low = bytes.loadUnaligned(fromByteOffset: index, as: UInt32.self).littleEndian ^ value
            let high = bytes.loadUnaligned(fromByteOffset: index + 4, as: UInt32.self).littleEndian
            value = t[7][Int(low & 0xFF)] ^ t[6][Int((low >> 8) & 0xFF)] ^ t[5][Int((low >> 16) & 0xFF)]
                ^ t[4][Int(low >> 24)] ^ t[3][Int(high & 0xFF)] ^ t[2][Int((high >> 8) & 0xFF)]
                ^ t[1][Int((high >> 16) & 0xFF)] ^ t[0][Int(high >> 24)]
            index += 8
        }
        while index < count {
            value = t[0][Int((value ^ UInt32(bytes[index])) & 0xFF)] ^ (value >> 8)
            index += 1
        }
        return ~value
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}

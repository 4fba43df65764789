import HearthCore

/// Reads the records of one log segment and says how it ends.
public struct LogSegmentReader {
    /// How a segment ended.
    public enum Ending: Equatable, Sendable {
        /// Every byte belongs to a good record.
        case clean
        /// The last record is incomplete (a crash during a write): it starts at `offset`.
        case tornTail(offset: Int)
        /// A record that is not the last one is damaged: the log cannot be trusted past `offset`.
        case corrupt(offset: Int, reason: String)
    }

    public struct Result: Sendable {
        public var firstSequence: UInt64
        public var entries: [LogRecordCodec.Entry]
        /// Byte offset just past the last good record.
        public var goodLength: Int
        public var ending: Ending
    }

    /// A segment whose header is unreadable.
    public struct BadHeader: Error, CustomStringConvertible {
        public let description: String
    }

    /// Reads a whole segment held in memory.
    public static func read(_ bytes: UnsafeRawBufferPointer) throws -> Result {
        var all: [LogRecordCodec.Entry] = []
        var result = try read(bytes, batchSize: 4096) { all += $0 }
        result.entries = all
        return result
    }

    /// The sequence number a segment's header says it starts at; throws ``BadHeader`` if the
    /// header is unreadable.
    public static func firstSequence(of bytes: UnsafeRawBufferPointer) throws -> UInt64 {
        guard bytes.count >= StorageFormat.segmentHeaderSize else {
            throw BadHeader(description: "the file is shorter than a segment header (\(bytes.count) bytes)")
        }
        var header = ByteReader(bytes)
        let magic = Array(try header.take(8))
        guard magic == StorageFormat.segmentMagic else { throw BadHeader(description: "not a Hearth log segment (bad magic)") }
        let version = try header.u32()
        guard version == StorageFormat.version else { throw BadHeader(description: "unsupported format version \(version)") }
        _ = try header.u32()
        return try header.u64()
    }

    /// Reads a whole segment held in memory, handing its records to `deliver` in order, in
    /// batches of `batchSize` (the last may be smaller); the result holds no entries.
    public static func read(
        _ bytes: UnsafeRawBufferPointer, batchSize: Int, deliver: ([LogRecordCodec.Entry]) -> Void
    ) throws -> Result {
        let firstSequence = try firstSequence(of: bytes)
        var entries: [LogRecordCodec.Entry] = []
        entries.reserveCapacity(batchSize)
        /// The result, once the batch being filled is delivered.
        func ending(goodLength: Int, ending: Ending) -> Result {
            if !entries.isEmpty { deliver(entries) }
            return Result(firstSequence: firstSequence, entries: [], goodLength: goodLength, ending: ending)
        }
        var offset = StorageFormat.segmentHeaderSize
        var expected = firstSequence
        while offset < bytes.count {
            let start = offset
            let available = bytes.count - start
            // A record header cut short, or zeros where a record should begin (space allocated
            // but never written): the tail was torn.
            guard available >= StorageFormat.recordHeaderSize else {
                return ending(goodLength: start, ending: .tornTail(offset: start))
            }
            var reader = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[start...]))
            let length = Int(try reader.u32())
            let crc = try reader.u32()
            let type = try reader.u8()
            let end = start + StorageFormat.recordHeaderSize + length
            if length == 0 && crc == 0 && type == 0 {
                let rest = UnsafeRawBufferPointer(rebasing: bytes[start...])
                if rest.allSatisfy({ $0 == 0 }) {
                    return ending(goodLength: start, ending: .tornTail(offset: start))
                }
                return ending(goodLength: start, ending: .corrupt(offset: start, reason: "zeroed record header followed by data"))
            }
            guard length <= StorageFormat.maxRecordPayload, end <= bytes.count else {
                // Runs past the end of the file: a torn write, unless a good record follows
                // (then the length itself was damaged, and records after it would be lost).
                if hasValidRecord(in: bytes, after: start) {
                    return ending(goodLength: start, ending: .corrupt(offset: start, reason: "record length runs past the end of the file, yet good records follow"))
                }
                return ending(goodLength: start, ending: .tornTail(offset: start))
            }
            let body = UnsafeRawBufferPointer(rebasing: bytes[(start + StorageFormat.recordHeaderSize - 1)..<end])
            guard CRC32C.checksum(body) == crc else {
                if end == bytes.count {
                    // The last record, damaged: a write that did not finish.
                    return ending(goodLength: start, ending: .tornTail(offset: start))
                }
                return ending(goodLength: start, ending: .corrupt(offset: start, reason: "checksum mismatch"))
            }
            guard type == StorageFormat.changeRecordType else {
                return ending(goodLength: start, ending: .corrupt(offset: start, reason: "unknown record type \(type)"))
            }
            let entry: LogRecordCodec.Entry
            do {
                entry = try LogRecordCodec.decodePayload(UnsafeRawBufferPointer(rebasing: bytes[(start + StorageFormat.recordHeaderSize)..<end]))
            } catch {
                return ending(goodLength: start, ending: .corrupt(offset: start, reason: "\(error)"))
            }
            guard entry.record.sequence == expected else {
                return ending(goodLength: start, ending: .corrupt(offset: start, reason: "sequence \(entry.record.sequence) where \(expected) was expected"))
            }
            entries.append(entry)
            if entries.count == batchSize {
                deliver(entries)
                entries.removeAll(keepingCapacity: true)
            }
            expected += 1
            offset = end
        }
        return ending(goodLength: offset, ending: .clean)
    }

    /// True if a complete record with a good checksum starts anywhere after `offset`. Used only
    /// on damage, to tell a torn tail from a damaged length field.
    static func hasValidRecord(in bytes: UnsafeRawBufferPointer, after offset: Int) -> Bool {
        var candidate = offset + 1
        while candidate + StorageFormat.recordHeaderSize <= bytes.count {
            defer { candidate += 1 }
            guard bytes[candidate + 8] == StorageFormat.changeRecordType else { continue }
            let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: candidate, as: UInt32.self)))
            let end = candidate + StorageFormat.recordHeaderSize + length
            guard length >= 16, end <= bytes.count else { continue }
            let crc = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: candidate + 4, as: UInt32.self))
            if CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[(candidate + 8)..<end])) == crc { return true }
        }
        return false
    }

    /// The 24-byte header of a new segment.
    public static func header(firstSequence: UInt64) -> [UInt8] {
        var writer = ByteWriter()
        writer.raw(StorageFormat.segmentMagic)
        writer.u32(StorageFormat.version)
        writer.u32(0)
        writer.u64(firstSequence)
        return writer.bytes
    }
}

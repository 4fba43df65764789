import HearthCore

/// Encodes and decodes change records (see Docs/STORAGE_FORMAT.md, "Records").
public enum LogRecordCodec {
    /// A record as stored: the change, and the newest push-ID timestamp issued when it was made.
    public struct Entry: Sendable, Equatable {
        public var record: LogRecord
        public var pushTime: Int64

        public init(record: LogRecord, pushTime: Int64) {
            self.record = record
            self.pushTime = pushTime
        }
    }

    /// The framed bytes of one record: header (length, CRC-32C, type) and payload.
    public static func frame(_ entry: Entry) -> [UInt8] {
        let payload = encodePayload(entry)
        var framed = ByteWriter()
        framed.u32(UInt32(payload.count))
        var crcInput = [StorageFormat.changeRecordType]
        crcInput.append(contentsOf: payload)
        framed.u32(CRC32C.checksum(crcInput))
        framed.u8(StorageFormat.changeRecordType)
        framed.raw(payload)
        return framed.bytes
    }

    /// A record's payload: what `frame` checksums and frames (and what PostgreSQL stores as it is).
    public static func encodePayload(_ entry: Entry) -> [UInt8] {
        var writer = ByteWriter()
        writer.u64(entry.record.sequence)
        writer.u64(UInt64(bitPattern: entry.pushTime))
        let change = entry.record.change
        writer.u8(change.kind.rawValue)
        writer.path(change.path)
        writer.u32(UInt32(change.mutations.count))
        for mutation in change.mutations {
            switch mutation {
            case .set(let path, let value):
                writer.u8(StorageFormat.setMutation)
                writer.path(path)
                writer.blob(JSONWriter.serialize(value, options: .storage))
            case .setPriority(let path, let priority):
                writer.u8(StorageFormat.setPriorityMutation)
                writer.path(path)
                writer.blob(JSONWriter.serialize(priority?.node ?? .null, options: .storage))
            }
        }
        return writer.bytes
    }

    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    /// Decodes a record's payload (after its CRC was checked).
    public static func decodePayload(_ payload: UnsafeRawBufferPointer) throws -> Entry {
        var reader = ByteReader(payload)
        do {
            let sequence = try reader.u64()
            let pushTime = Int64(bitPattern: try reader.u64())
            guard let kind = Change.Kind(rawValue: try reader.u8()) else { throw Malformed(description: "unknown change kind") }
            let location = try reader.path()
            let count = Int(try reader.u32())
            var mutations: [Change.Mutation] = []
            mutations.reserveCapacity(min(count, 1 << 16))
            for _ in 0..<count {
                let tag = try reader.u8()
                let path = try reader.path()
                let value = try JSONParser.parse(try reader.blob(), options: .init(maxDepth: Int.max)).node
                switch tag {
                case StorageFormat.setMutation: mutations.append(.set(path, value))
                case StorageFormat.setPriorityMutation: mutations.append(.setPriority(path, try Priority(node: value)))
                default: throw Malformed(description: "unknown mutation tag \(tag)")
                }
            }
            guard reader.remaining == 0 else { throw Malformed(description: "\(reader.remaining) unexpected trailing bytes") }
            return Entry(record: LogRecord(sequence: sequence, change: Change(kind: kind, path: location, mutations: mutations)),
                pushTime: pushTime)
        } catch is ByteReader.Truncated {
            throw Malformed(description: "payload ends early")
        } catch let error as DataError {
            throw Malformed(description: "bad value: \(error.message)")
        }
    }
}

import HearthCore

/// A snapshot: the whole tree after a sequence number, compressed and checksummed
/// (see Docs/STORAGE_FORMAT.md, "Snapshots").
public struct SnapshotFile: Sendable {
    public var sequence: UInt64
    public var pushTime: Int64
    public var root: Node

    public init(sequence: UInt64, pushTime: Int64, root: Node) {
        self.sequence = sequence
        self.pushTime = pushTime
        self.root = root
    }

    /// Header: magic (8), version (4), flags (4), sequence (8), push time (8), JSON length (8),
    /// stored length (8), CRC-32C of the stored bytes (4).
    static let headerSize = 52
    static let zlibFlag: UInt32 = 1

    public struct Damaged: Error, CustomStringConvertible {
        public let offset: Int
        public let reason: String
        public var description: String { "\(reason) (at byte \(offset))" }
    }

    /// The file's bytes.
    public func encode() throws -> [UInt8] {
        let json = JSONWriter.serialize(root, options: .storage)
        let stored = try Zlib.compress(json)
        var writer = ByteWriter()
        writer.raw(StorageFormat.snapshotMagic)
        writer.u32(StorageFormat.version)
        writer.u32(SnapshotFile.zlibFlag)
        writer.u64(sequence)
        writer.u64(UInt64(bitPattern: pushTime))
        writer.u64(UInt64(json.count))
        writer.u64(UInt64(stored.count))
        writer.u32(CRC32C.checksum(stored))
        writer.raw(stored)
        return writer.bytes
    }

    /// Reads and checks a snapshot.
    public static func decode(_ bytes: [UInt8]) throws -> SnapshotFile {
        try bytes.withUnsafeBytes { raw in
            guard raw.count >= headerSize else { throw Damaged(offset: 0, reason: "shorter than a snapshot header") }
            var reader = ByteReader(raw)
            guard Array(try reader.take(8)) == StorageFormat.snapshotMagic else {
                throw Damaged(offset: 0, reason: "not a Hearth snapshot (bad magic)")
            }
            let version = try reader.u32()
            guard version == StorageFormat.version else { throw Damaged(offset: 8, reason: "unsupported version \(version)") }
            let flags = try reader.u32()
            let sequence = try reader.u64()
            let pushTime = Int64(bitPattern: try reader.u64())
            let jsonLength = Int(try reader.u64())
            let storedLength = Int(try reader.u64())
            let crc = try reader.u32()
            guard storedLength == raw.count - headerSize else {
                throw Damaged(offset: headerSize, reason: "expected \(storedLength) stored bytes, found \(raw.count - headerSize)")
            }
            let stored = UnsafeRawBufferPointer(rebasing: raw[headerSize...])
            guard CRC32C.checksum(stored) == crc else { throw Damaged(offset: headerSize, reason: "checksum mismatch") }
            let json: [UInt8]
            if flags & zlibFlag != 0 {
                do {
                    json = try Zlib.decompress(stored, expectedLength: jsonLength)
                } catch {
                    throw Damaged(offset: headerSize, reason: "\(error)")
                }
            } else {
                json = Array(stored)
            }
            let root: Node
            do {
                root = try JSONParser.parse(json, options: .init(maxDepth: Int.max)).node
            } catch {
                throw Damaged(offset: headerSize, reason: "bad tree: \(error)")
            }
            return SnapshotFile(sequence: sequence, pushTime: pushTime, root: root)
        }
    }
}

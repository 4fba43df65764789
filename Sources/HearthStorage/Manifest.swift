import Foundation

/// The MANIFEST of a namespace: which snapshot is live and which segment replay starts from.
/// A small text file, replaced atomically, with a checksum line (Docs/STORAGE_FORMAT.md).
public struct Manifest: Sendable, Equatable {
    /// The live snapshot's file name, or nil before the first snapshot.
    public var snapshot: String?
    /// The sequence the snapshot holds (0 without one).
    public var snapshotSequence: UInt64
    /// The newest push-ID timestamp in the snapshot.
    public var pushTime: Int64
    /// The first segment to replay.
    public var firstSegment: String

    public struct Damaged: Error, CustomStringConvertible {
        public let description: String
    }

    public func encode() -> [UInt8] {
        var text = "hearth-manifest 1\n"
        text += "snapshot \(snapshot ?? "-")\n"
        text += "snapshot-sequence \(snapshotSequence)\n"
        text += "push-time \(pushTime)\n"
        text += "first-segment \(firstSegment)\n"
        let checksum = CRC32C.checksum(Array(text.utf8))
        text += "checksum \(String(checksum, radix: 16))\n"
        return Array(text.utf8)
    }

    public static func decode(_ bytes: [UInt8]) throws -> Manifest {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let checksumRange = text.range(of: "checksum ") else { throw Damaged(description: "no checksum line") }
        let body = String(text[..<checksumRange.lowerBound])
        let stated = text[checksumRange.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)
        guard UInt32(stated, radix: 16) == CRC32C.checksum(Array(body.utf8)) else {
            throw Damaged(description: "checksum mismatch")
        }
        var fields: [String: String] = [:]
        for line in body.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        guard fields["hearth-manifest"] == "1" else { throw Damaged(description: "unknown manifest version") }
        guard let snapshot = fields["snapshot"], let sequence = fields["snapshot-sequence"].flatMap({ UInt64($0) }),
            let pushTime = fields["push-time"].flatMap({ Int64($0) }), let first = fields["first-segment"]
        else { throw Damaged(description: "missing fields") }
        return Manifest(snapshot: snapshot == "-" ? nil : snapshot, snapshotSequence: sequence, pushTime: pushTime, firstSegment: first)
    }
}

/// Constants of the on-disk format. Docs/STORAGE_FORMAT.md is the specification; this file
/// only names its numbers.
enum StorageFormat {
    /// First 8 bytes of every log segment.
    static let segmentMagic: [UInt8] = Array("HEARTHLG".utf8)
    /// First 8 bytes of every snapshot.
    static let snapshotMagic: [UInt8] = Array("HEARTHSN".utf8)
    /// The format version written in segment and snapshot headers.
    static let version: UInt32 = 1
    /// Segment header: magic (8), version (4), reserved (4), first sequence (8).
    static let segmentHeaderSize = 24
    /// Record header: payload length (4), CRC-32C of type and payload (4), type (1).
    static let recordHeaderSize = 9
    /// The namespace's security rules document, as uploaded (`PUT /.settings/rules.json`).
    static let rulesFileName = "rules.json"
    /// Record type of a change.
    static let changeRecordType: UInt8 = 1
    /// Largest record payload accepted when reading (a write is at most 256 MB of JSON).
    static let maxRecordPayload = 1 << 30

    /// Mutation tags inside a change record.
    static let setMutation: UInt8 = 1
    static let setPriorityMutation: UInt8 = 2

    /// `log-00000000000000000001.hlog`: the segment whose first record has this sequence.
    static func segmentName(firstSequence: UInt64) -> String {
        "log-" + padded(firstSequence) + ".hlog"
    }

    /// `snap-00000000000000000042.hsnap`: the snapshot of the tree after this sequence.
    static func snapshotName(sequence: UInt64) -> String {
        "snap-" + padded(sequence) + ".hsnap"
    }

    static func padded(_ value: UInt64) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    /// The sequence in a segment or snapshot file name, if it is one.
    static func sequence(inName name: String, prefix: String, suffix: String) -> UInt64? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        return UInt64(name.dropFirst(prefix.count).dropLast(suffix.count))
    }
}

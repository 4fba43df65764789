/// Constants of the on-disk format. Docs/STORAGE_FORMAT.md is the specification; this file
/// only names its numbers and its file names: no other file spells a file name of a data
/// directory (paths are built by ``NamespaceFiles``).
public enum StorageFormat {
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
    /// In the data directory: the file a server holds an exclusive lock on.
    static let lockFileName = "LOCK"
    /// In the data directory: the on-disconnect writes of open realtime sessions
    /// (``SessionJournal``).
    static let sessionJournalFileName = "sessions.journal"
    /// The file that names the live snapshot and the first live segment.
    static let manifestFileName = "MANIFEST"
    /// Log segments are `log-<first sequence, 20 digits>.hlog`.
    static let segmentPrefix = "log-"
    static let segmentSuffix = ".hlog"
    /// Snapshots are `snap-<sequence, 20 digits>.hsnap`.
    static let snapshotPrefix = "snap-"
    static let snapshotSuffix = ".hsnap"
    /// A file being replaced (written, synced, then renamed over its target).
    static let temporarySuffix = ".tmp"
    /// What repair cuts away is kept as `<file>.broken` (`.broken.2`, ...).
    static let brokenSuffix = ".broken"
    /// Record type of a change.
    static let changeRecordType: UInt8 = 1
    /// Largest record payload accepted when reading (a write is at most 256 MB of JSON).
    static let maxRecordPayload = 1 << 30

    /// Mutation tags inside a change record.
    static let setMutation: UInt8 = 1
    static let setPriorityMutation: UInt8 = 2

    /// `log-00000000000000000001.hlog`: the segment whose first record has this sequence.
    public static func segmentName(firstSequence: UInt64) -> String {
        segmentPrefix + padded(firstSequence) + segmentSuffix
    }

    /// `snap-00000000000000000042.hsnap`: the snapshot of the tree after this sequence.
    static func snapshotName(sequence: UInt64) -> String {
        snapshotPrefix + padded(sequence) + snapshotSuffix
    }

    /// The first sequence of a segment file's name; nil if the name is not a segment's.
    static func segmentSequence(inName name: String) -> UInt64? {
        sequence(inName: name, prefix: segmentPrefix, suffix: segmentSuffix)
    }

    /// True for a snapshot file's name.
    static func isSnapshot(_ name: String) -> Bool {
        sequence(inName: name, prefix: snapshotPrefix, suffix: snapshotSuffix) != nil
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

/// The paths of one namespace's files, inside its directory of the data directory.
public struct NamespaceFiles: Sendable {
    /// `<data directory>/<namespace>`.
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    public init(dataDirectory: String, namespace: String) {
        directory = dataDirectory + "/" + namespace
    }

    /// A file of the namespace by name.
    func path(_ name: String) -> String { directory + "/" + name }

    var manifest: String { path(StorageFormat.manifestFileName) }
    var rules: String { path(StorageFormat.rulesFileName) }
    func segment(firstSequence: UInt64) -> String { path(StorageFormat.segmentName(firstSequence: firstSequence)) }
    func snapshot(sequence: UInt64) -> String { path(StorageFormat.snapshotName(sequence: sequence)) }
}

import HearthCore
import Logging

/// Why a namespace cannot be opened: which file, where, and what the operator can do.
public struct RecoveryError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let offset: Int?
    public let reason: String

    public var description: String {
        let place = offset.map { "\(file) at byte \($0)" } ?? file
        return """
            cannot recover \(place): \(reason). Nothing was changed. \
            Run `hearth verify --data-dir <dir>` for a report; `hearth repair --data-dir <dir>` truncates \
            the log after the last good record (keeping a .broken copy), losing what follows it.
            """
    }
}

/// Reads a namespace's MANIFEST, snapshot and log segments back into a tree.
enum Recovery {
    struct Segment: Equatable {
        let name: String
        let firstSequence: UInt64
    }

    struct Result {
        var manifest: Manifest
        var root: Node
        var lastSequence: UInt64
        var pushTime: Int64
        /// The segment to continue appending to.
        var lastSegment: String?
        /// The sequence of the last record in that segment (its first sequence - 1 if empty).
        var lastSegmentLastSequence: UInt64 = 0
        var replayedRecords: Int
        /// Problems found (verify) or fixed (open: torn tails; repair: truncations).
        var notes: [String]
    }

    enum Mode {
        /// Normal start: truncate a torn tail of the last segment, refuse anything worse.
        case open
        /// Report only; change nothing.
        case verify
        /// Truncate after the last good record wherever the damage is, keeping `.broken` copies.
        case repair
    }

    /// The log segments in a directory, in order.
    static func segments(in directory: String) throws -> [Segment] {
        try FileIO.list(directory).compactMap { name in
            StorageFormat.segmentSequence(inName: name).map { Segment(name: name, firstSequence: $0) }
        }.sorted { $0.firstSequence < $1.firstSequence }
    }

    static func recover(directory: String, logger: Logger, mode: Mode) throws -> Result {
        let files = NamespaceFiles(directory: directory)
        let manifestPath = files.manifest
        if !FileIO.exists(manifestPath) {
            if try mode == .open && isUnfinishedCreation(directory) {
                return try create(directory: directory)
            }
            throw RecoveryError(file: manifestPath, offset: nil, reason: "the MANIFEST is missing")
        }
        if mode == .open {
            // Leftovers of files being replaced when the server stopped.
            for name in try FileIO.list(directory) where name.hasSuffix(StorageFormat.temporarySuffix) {
                try FileIO.remove(files.path(name))
            }
        }
        let manifest: Manifest
        do {
            manifest = try Manifest.decode(try FileIO.read(manifestPath))
        } catch {
            throw RecoveryError(file: manifestPath, offset: nil, reason: "the MANIFEST is damaged (\(error))")
        }
        var root = Node.null
        var sequence: UInt64 = 0
        var pushTime = manifest.pushTime
        if let name = manifest.snapshot {
            let path = files.path(name)
            guard FileIO.exists(path) else {
                throw RecoveryError(file: path, offset: nil, reason: "the snapshot named by the MANIFEST is missing")
            }
            do {
                let snapshot = try SnapshotFile.decode(try FileIO.read(path))
                root = snapshot.root
                sequence = snapshot.sequence
                pushTime = max(pushTime, snapshot.pushTime)
            } catch let damaged as SnapshotFile.Damaged {
                throw RecoveryError(file: path, offset: damaged.offset, reason: "the snapshot is damaged: \(damaged.reason)")
            }
            guard sequence == manifest.snapshotSequence else {
                throw RecoveryError(file: path, offset: nil, reason: "the snapshot holds sequence \(sequence), the MANIFEST says \(manifest.snapshotSequence)")
            }
        }

        let all = try segments(in: directory)
        guard let startIndex = all.firstIndex(where: { $0.name == manifest.firstSegment }) else {
            throw RecoveryError(file: files.path(manifest.firstSegment), offset: nil,
                reason: "the log segment named by the MANIFEST is missing")
        }
        var live = Array(all[startIndex...])
        var notes: [String] = []
        var replayed = 0
        var lastSegment: String?
        var lastSegmentLastSequence: UInt64 = 0
        var index = 0
        while index < live.count {
            let segment = live[index]
            let path = files.path(segment.name)
            let isLast = index == live.count - 1
            let bytes = try FileIO.read(path)
            let firstSequence: UInt64
            do {
                firstSequence = try bytes.withUnsafeBytes { try LogSegmentReader.firstSequence(of: $0) }
            } catch {
                if mode == .repair || (isLast && mode == .open && bytes.count < StorageFormat.segmentHeaderSize) {
                    // A segment whose header never made it to disk: nothing in it was acknowledged.
                    notes.append("\(segment.name): unreadable header (\(error)); removed")
                    if mode != .verify { try keepBrokenCopy(path, bytes: bytes); try FileIO.remove(path) }
                    live.remove(at: index)
                    continue
                }
                throw RecoveryError(file: path, offset: 0, reason: "\(error)")
            }
            guard firstSequence == segment.firstSequence else {
                throw RecoveryError(file: path, offset: 16,
                    reason: "the header says it starts at sequence \(firstSequence), the name says \(segment.firstSequence)")
            }
            // Decoded on another thread while the records already decoded are applied here.
            let reading = PipelinedSegmentRead(bytes)
            var lastRead: UInt64?
            while let batch = reading.next() {
                // Segments must continue one another without a gap.
                if lastRead == nil, let first = batch.first?.record.sequence, first > sequence + 1 {
                    reading.abandon()
                    throw RecoveryError(file: path, offset: StorageFormat.segmentHeaderSize,
                        reason: "records \(sequence + 1)...\(first - 1) are missing (a segment was removed?)")
                }
                for entry in batch where entry.record.sequence > sequence {
                    entry.record.change.apply(to: &root)
                    sequence = entry.record.sequence
                    pushTime = max(pushTime, entry.pushTime)
                    replayed += 1
                }
                lastRead = batch.last?.record.sequence ?? lastRead
            }
            let result = try reading.result()
            lastSegment = path
            lastSegmentLastSequence = lastRead ?? (firstSequence - 1)
            switch result.ending {
            case .clean:
                break
            case .tornTail(let offset):
                if !isLast && mode != .repair {
                    throw RecoveryError(file: path, offset: offset, reason: "a record is cut short in the middle of the log")
                }
                notes.append("\(segment.name): incomplete record at byte \(offset) (a write interrupted by a crash); "
                    + (mode == .verify ? "start-up truncates it" : "truncated"))
                if mode != .verify {
                    logger.warning("truncating a torn log tail", metadata: ["file": "\(path)", "offset": "\(offset)"])
                    if mode == .repair { try keepBrokenCopy(path, bytes: bytes) }
                    try FileIO.truncate(path: path, to: offset)
                }
                if !isLast { try dropSegments(after: index, of: &live, directory: directory, mode: mode, notes: &notes) }
            case .corrupt(let offset, let reason):
                guard mode != .open else { throw RecoveryError(file: path, offset: offset, reason: reason) }
                notes.append("\(segment.name): \(reason) at byte \(offset); " + (mode == .verify ? "repair would cut the log there" : "the log is cut there"))
                if mode == .repair {
                    try keepBrokenCopy(path, bytes: bytes)
                    try FileIO.truncate(path: path, to: offset)
                    try dropSegments(after: index, of: &live, directory: directory, mode: mode, notes: &notes)
                } else {
                    index = live.count
                    continue
                }
            }
            index += 1
        }
        return Result(
            manifest: manifest, root: root, lastSequence: sequence, pushTime: pushTime, lastSegment: lastSegment,
            lastSegmentLastSequence: lastSegmentLastSequence, replayedRecords: replayed, notes: notes)
    }

    /// A directory with no MANIFEST that holds nothing but what `create` writes before the
    /// MANIFEST (an empty first segment, temporary files): a namespace whose creation was cut
    /// short, safe to start again.
    static func isUnfinishedCreation(_ directory: String) throws -> Bool {
        guard FileIO.exists(directory) else { return true }
        for name in try FileIO.list(directory) {
            if name.hasSuffix(StorageFormat.temporarySuffix) { continue }
            guard StorageFormat.segmentSequence(inName: name) != nil,
                try FileIO.size(NamespaceFiles(directory: directory).path(name)) <= StorageFormat.segmentHeaderSize
            else { return false }
        }
        return true
    }

    /// Removes (repair) or reports the segments after a cut.
    static func dropSegments(after index: Int, of live: inout [Segment], directory: String, mode: Mode, notes: inout [String]) throws {
        for later in live[(index + 1)...] {
            let path = NamespaceFiles(directory: directory).path(later.name)
            notes.append("\(later.name): follows the cut; " + (mode == .verify ? "repair would remove it" : "removed"))
            if mode == .repair {
                try keepBrokenCopy(path, bytes: try FileIO.read(path))
                try FileIO.remove(path)
            }
        }
        live.removeSubrange((index + 1)...)
    }

    /// Keeps what repair cuts, as `<file>.broken` (or `.broken.2`, ... so earlier copies stay).
    static func keepBrokenCopy(_ path: String, bytes: [UInt8]) throws {
        let directory = FileIO.parentDirectory(of: path)
        var target = path + StorageFormat.brokenSuffix
        var number = 2
        while FileIO.exists(target) {
            target = path + StorageFormat.brokenSuffix + ".\(number)"
            number += 1
        }
        try FileIO.writeAtomically(bytes, to: target, directory: directory)
    }

    /// A new, empty namespace: its first segment, then the MANIFEST that names it.
    static func create(directory: String) throws -> Result {
        let files = NamespaceFiles(directory: directory)
        try FileIO.makeDirectory(directory)
        for name in try FileIO.list(directory) { try FileIO.remove(files.path(name)) }
        let first = StorageFormat.segmentName(firstSequence: 1)
        try FileWriteLog.createSegment(files.path(first), firstSequence: 1, directory: directory)
        let manifest = Manifest(snapshot: nil, snapshotSequence: 0, pushTime: -1, firstSegment: first)
        try FileIO.writeAtomically(manifest.encode(), to: files.manifest, directory: directory)
        try FileIO.syncDirectory(FileIO.parentDirectory(of: directory))
        return Result(
            manifest: manifest, root: .null, lastSequence: 0, pushTime: -1, lastSegment: files.path(first),
            lastSegmentLastSequence: 0, replayedRecords: 0, notes: [])
    }
}

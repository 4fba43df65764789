import Foundation
import HearthCore
import Logging

/// One namespace on disk: its log, its snapshots and MANIFEST, and the database recovered
/// from them. Schedules snapshots in the background as the log grows.
final class NamespaceStore: @unchecked Sendable {
    let directory: String
    let options: StorageOptions
    let logger: Logger
    private(set) var database: Database!
    private(set) var log: FileWriteLog!
    /// Guards `schedule`; `close` waits on it for a snapshot under way.
    let lock = NSCondition()
    /// When to snapshot, and what closing waits for.
    var schedule: SnapshotScheduleStateMachine

    init(directory: String, options: StorageOptions, logger: Logger, replayedRecords: Int = 0) {
        self.directory = directory
        self.options = options
        self.logger = logger
        schedule = SnapshotScheduleStateMachine(
            recordsThreshold: options.snapshotAfterRecords, bytesThreshold: options.snapshotAfterBytes,
            replayedRecords: replayedRecords)
    }

    /// Runs an event of the schedule under the lock.
    func withSchedule<Result>(_ event: (inout SnapshotScheduleStateMachine) -> Result) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return event(&schedule)
    }

    var files: NamespaceFiles { NamespaceFiles(directory: directory) }
    var manifestPath: String { files.manifest }

    /// Recovers the namespace: snapshot, then every later record of the log.
    static func open(
        directory: String, namespace: String, options: StorageOptions, logger: Logger, observer: StorageObserver? = nil
    ) throws -> NamespaceStore {
        let recovered = try Recovery.recover(directory: directory, logger: logger, mode: .open)
        let store = NamespaceStore(
            directory: directory, options: options, logger: logger, replayedRecords: recovered.replayedRecords)
        let log = try FileWriteLog(
            directory: directory, policy: options.fsync, segmentLimit: options.segmentBytes,
            lastSequence: recovered.lastSequence,
            // Continue the last segment only if it ends where the data does; after a snapshot
            // that got ahead of an unsynced log (a power failure under `interval`/`none`), the
            // next records start a new segment, so the files never skip a sequence number.
            openSegment: recovered.lastSegmentLastSequence == recovered.lastSequence ? recovered.lastSegment : nil,
            logger: logger, observer: observer)
        let countingLog = CountingLog(inner: log, store: store)
        store.log = log
        store.database = Database(
            name: namespace, root: recovered.root, sequence: recovered.lastSequence, log: countingLog,
            lastPushTime: recovered.pushTime)
        logger.info(
            "namespace recovered",
            metadata: [
                "namespace": "\(namespace)", "sequence": "\(recovered.lastSequence)",
                "replayed": "\(recovered.replayedRecords)", "snapshot": "\(recovered.manifest.snapshot ?? "none")",
            ])
        return store
    }

    /// Called for each appended record: starts a background snapshot past the thresholds.
    func noteAppended(bytes: Int) {
        guard withSchedule({ $0.appended(bytes: bytes) }) else { return }
        // A thread of its own: `close` (called from async code at shutdown) waits for a snapshot
        // under way, which must not need a thread of the concurrency pool to finish.
        let thread = Thread { [self] in
            do {
                try self.writeSnapshot(alreadyClaimed: true)
            } catch {
                self.logger.error("background snapshot failed", metadata: ["error": "\(error)"])
            }
        }
        thread.name = "hearth-snapshot"
        thread.start()
    }

    /// Writes a snapshot of the committed tree, points the MANIFEST at it, then removes the
    /// segments and snapshots it makes unnecessary. Writes continue meanwhile: the tree is
    /// immutable.
    func writeSnapshot(alreadyClaimed: Bool = false) throws {
        if !alreadyClaimed {
            guard withSchedule({ $0.requestSnapshot() }) else { return }
        }
        var succeeded = false
        defer {
            // A failed snapshot's records count again, so the next append retries it.
            lock.lock()
            if schedule.snapshotFinished(succeeded: succeeded) == .wakeClose { lock.broadcast() }
            lock.unlock()
        }
        let (root, sequence) = database.snapshot
        let pushTime = database.lastPushTime
        // Under `interval` or `none` the committed tree may hold writes not yet synced: sync
        // them first, so that the snapshot never gets ahead of the log on disk.
        try log.syncNow()
        try writeSnapshotFiles(root: root, sequence: sequence, pushTime: pushTime)
        succeeded = true
    }

    func writeSnapshotFiles(root: Node, sequence: UInt64, pushTime: Int64) throws {
        let name = StorageFormat.snapshotName(sequence: sequence)
        let bytes = try SnapshotFile(sequence: sequence, pushTime: pushTime, root: root).encode()
        try FileIO.writeAtomically(bytes, to: files.path(name), directory: directory)

        // Replay must start at the segment holding sequence + 1.
        let segments = try Recovery.segments(in: directory)
        let first = segments.last { $0.firstSequence <= sequence + 1 } ?? segments.first
        guard let first else { return }
        let manifest = Manifest(snapshot: name, snapshotSequence: sequence, pushTime: pushTime, firstSegment: first.name)
        try FileIO.writeAtomically(manifest.encode(), to: manifestPath, directory: directory)

        // Only now, with the new snapshot and MANIFEST durable, remove what they replace.
        for segment in segments where segment.firstSequence < first.firstSequence {
            try FileIO.remove(files.path(segment.name))
        }
        for file in try FileIO.list(directory) where file.hasPrefix(StorageFormat.snapshotPrefix) && file != name {
            try FileIO.remove(files.path(file))
        }
        try FileIO.syncDirectory(directory)
        logger.info("snapshot written", metadata: ["file": "\(name)", "bytes": "\(bytes.count)"])
    }

    /// Waits for a snapshot under way (it needs the log), then flushes and closes the log. A
    /// process that exits right after knows no snapshot thread is still writing.
    func close() {
        lock.lock()
        if schedule.close() == .waitForSnapshot {
            while !schedule.isClosed { lock.wait() }
        }
        lock.unlock()
        log.close()
    }
}

/// Forwards to the file log and tells the store how much was appended (for snapshot
/// scheduling). The store owns the database, so this reference is weak.
struct CountingLog: WriteLog {
    let inner: FileWriteLog
    weak var store: NamespaceStore?

    func append(_ record: LogRecord, pushTime: Int64) throws -> UInt64 {
        let (ticket, bytes) = try inner.appendCountingBytes(record, pushTime: pushTime)
        store?.noteAppended(bytes: bytes)
        return ticket
    }

    func waitUntilDurable(_ sequence: UInt64, ticket: UInt64) async throws {
        try await inner.waitUntilDurable(sequence, ticket: ticket)
    }

    func whenDurable(_ sequence: UInt64, ticket: UInt64, notify: @escaping @Sendable (Result<UInt64, any Error>) -> Void) {
        inner.whenDurable(sequence, ticket: ticket, notify: notify)
    }

    func recover(from failure: any Error) -> UInt64? {
        inner.recover(from: failure)
    }
}

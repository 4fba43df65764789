import Foundation
import HearthCore
import Logging

/// The append-only log of one namespace, with group commit.
///
/// `append` (called by the namespace's single writer, under its lock) only frames the record
/// into a pending buffer. A dedicated flusher thread takes everything pending, writes it with
/// one `write`, makes it durable with one `fdatasync` (policy `always`), and wakes every writer
/// whose record it covered: many concurrent writers share one sync. Segments rotate at a size
/// limit, so snapshots can retire old ones.
///
/// If a write or sync fails (disk full, I/O error), the file is truncated back to the last
/// durable record, every waiting writer is told, and appends are refused until the namespace
/// rolls back (``recover(from:)``); then writing resumes.
public final class FileWriteLog: WriteLog, @unchecked Sendable {
    /// A failure of the log; carries which failure it is, so that one is handled once.
    public struct Failure: Error, CustomStringConvertible {
        public let epoch: Int
        public let underlying: any Error
        public var description: String { "\(underlying)" }
    }

    /// Sequences and sizes the flusher and writers share, guarded by `condition`.
    struct State {
        var pending: [UInt8] = []
        var pendingLastSequence: UInt64 = 0
        var appendedSequence: UInt64
        var durableSequence: UInt64
        var waiters: [(sequence: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
        var failure: Failure?
        var failureEpoch = 0
        var stopping = false
        var stopped = false
        /// The open segment.
        var segmentPath: String
        var segmentDescriptor: Int32
        var segmentLength: Int
        var durableSegmentLength: Int
        /// The durable sequence when each failure happened (index: the epoch it ended).
        var durableAtFailure: [UInt64] = []
        /// How many times the data was synced (a measure of group commit).
        var syncCount = 0
        /// Someone waits in `syncNow()`.
        var syncRequested = false
        /// Tests: fail the next writes with this errno, this many times.
        var injectedFailures = 0
        var injectedErrno: Int32 = 0
    }

    public let directory: String
    let policy: FsyncPolicy
    let segmentLimit: Int
    let logger: Logger
    let condition = NSCondition()
    var state: State
    /// Told the duration of every sync.
    let observer: StorageObserver?
    var flusher: Thread?

    /// Opens the log for appending after `lastSequence`, continuing the segment at `segmentPath`
    /// (already truncated to its good length) or starting a new one.
    init(
        directory: String, policy: FsyncPolicy, segmentLimit: Int, lastSequence: UInt64, openSegment: String?,
        logger: Logger, observer: StorageObserver? = nil
    ) throws {
        self.observer = observer
        self.directory = directory
        self.policy = policy
        self.segmentLimit = segmentLimit
        self.logger = logger
        let path: String
        if let openSegment {
            path = openSegment
        } else {
            path = directory + "/" + StorageFormat.segmentName(firstSequence: lastSequence + 1)
            try FileWriteLog.createSegment(path, firstSequence: lastSequence + 1, directory: directory)
        }
        let descriptor = try FileIO.openForAppend(path)
        let length = try FileIO.size(path)
        state = State(
            appendedSequence: lastSequence, durableSequence: lastSequence, segmentPath: path,
            segmentDescriptor: descriptor, segmentLength: length, durableSegmentLength: length)
        // The flusher keeps the log alive until `close()` ends it.
        let thread = Thread { self.flushLoop() }
        thread.name = "hearth-log-flusher"
        flusher = thread
        thread.start()
    }

    /// Writes a new segment's header durably.
    static func createSegment(_ path: String, firstSequence: UInt64, directory: String) throws {
        try FileIO.writeAtomically(LogSegmentReader.header(firstSequence: firstSequence), to: path, directory: directory)
    }

    // MARK: WriteLog

    public func append(_ record: LogRecord, pushTime: Int64) throws -> UInt64 {
        try appendCountingBytes(record, pushTime: pushTime).ticket
    }

    /// Appends; returns the ticket (the failure epoch the record belongs to) and its size on disk.
    func appendCountingBytes(_ record: LogRecord, pushTime: Int64) throws -> (ticket: UInt64, bytes: Int) {
        let framed = LogRecordCodec.frame(LogRecordCodec.Entry(record: record, pushTime: pushTime))
        guard framed.count - StorageFormat.recordHeaderSize <= StorageFormat.maxRecordPayload else {
            throw RecordTooLarge(bytes: framed.count)
        }
        condition.lock()
        defer { condition.unlock() }
        if let failure = state.failure { throw failure }
        guard !state.stopping else { throw StorageClosed() }
        precondition(record.sequence == state.appendedSequence + 1, "log records must be appended in sequence")
        state.pending.append(contentsOf: framed)
        state.pendingLastSequence = record.sequence
        state.appendedSequence = record.sequence
        condition.signal()
        return (UInt64(state.failureEpoch), framed.count)
    }

    public func waitUntilDurable(_ sequence: UInt64, ticket: UInt64) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            condition.lock()
            if Int(ticket) != state.failureEpoch {
                // A failure came after this record was appended: it survived only if it was
                // durable before that failure (later records may reuse its sequence number).
                let durableThen = state.durableAtFailure[Int(ticket)]
                condition.unlock()
                if sequence <= durableThen {
                    continuation.resume()
                } else {
                    continuation.resume(throwing: Failure(epoch: Int(ticket) + 1, underlying: RecordDiscarded()))
                }
            } else if state.durableSequence >= sequence {
                condition.unlock()
                continuation.resume()
            } else if let failure = state.failure {
                condition.unlock()
                continuation.resume(throwing: failure)
            } else {
                state.waiters.append((sequence, continuation))
                condition.unlock()
            }
        }
    }

    public func recover(from failure: any Error) -> UInt64? {
        guard let failure = failure as? Failure else { return nil }
        condition.lock()
        defer { condition.unlock() }
        guard let current = state.failure, current.epoch == failure.epoch else { return nil }
        state.failure = nil
        state.appendedSequence = state.durableSequence
        logger.notice("log writes resume after failure", metadata: ["durable_sequence": "\(state.durableSequence)"])
        return state.durableSequence
    }

    /// The last sequence known durable.
    public var durableSequence: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return state.durableSequence
    }

    /// How many `fdatasync` calls the log has made.
    public var syncCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return state.syncCount
    }

    /// Makes the next `count` batch writes fail with `code` (for tests of disk trouble).
    func injectWriteFailures(_ count: Int, errno code: Int32) {
        condition.lock()
        state.injectedFailures = count
        state.injectedErrno = code
        condition.unlock()
    }

    /// Flushes what is pending, syncs, and stops the flusher. Later appends are refused.
    public func close() {
        condition.lock()
        state.stopping = true
        condition.broadcast()
        while !state.stopped { condition.wait() }
        condition.unlock()
    }

    // MARK: Flusher

    func flushLoop() {
        // Under `interval`, when the oldest unsynced write was made.
        var firstUnsynced: ContinuousClock.Instant?
        var unsyncedBytes = false
        while true {
            condition.lock()
            while state.pending.isEmpty && !state.stopping && !state.syncRequested {
                if case .interval(let milliseconds) = policy, let first = firstUnsynced {
                    let remaining = first + .milliseconds(milliseconds) - ContinuousClock.now
                    if remaining <= .zero { break }
                    let seconds = Double(remaining.components.seconds) + Double(remaining.components.attoseconds) / 1e18
                    _ = condition.wait(until: Date(timeIntervalSinceNow: seconds))
                } else {
                    condition.wait()
                }
            }
            let batch = state.pending
            let last = state.pendingLastSequence
            state.pending = []
            let descriptor = state.segmentDescriptor
            let path = state.segmentPath
            let stopping = state.stopping
            let syncRequested = state.syncRequested
            var injected: StorageIOError?
            if state.injectedFailures > 0 && !batch.isEmpty {
                state.injectedFailures -= 1
                injected = StorageIOError(operation: "write", path: path, code: state.injectedErrno)
            }
            condition.unlock()

            do {
                if let injected {
                    // Half the batch reaches the file, as a real failure might leave it.
                    try batch.withUnsafeBytes {
                        try FileIO.writeAll(descriptor, UnsafeRawBufferPointer(rebasing: $0[..<($0.count / 2)]), path: path)
                    }
                    throw injected
                }
                if !batch.isEmpty {
                    try batch.withUnsafeBytes { try FileIO.writeAll(descriptor, $0, path: path) }
                    unsyncedBytes = true
                    if firstUnsynced == nil { firstUnsynced = .now }
                }
                let due: Bool
                switch policy {
                case .always: due = true
                case .interval(let milliseconds):
                    due = firstUnsynced.map { ContinuousClock.now - $0 >= .milliseconds(milliseconds) } ?? false
                case .none: due = false
                }
                if unsyncedBytes && (due || stopping || syncRequested) {
                    let syncStart = ContinuousClock.now
                    try FileIO.syncData(descriptor, path: path)
                    observer?.recordSync(ContinuousClock.now - syncStart)
                    unsyncedBytes = false
                    firstUnsynced = nil
                    countSync()
                }
                if !batch.isEmpty { completeBatch(through: last, bytes: batch.count) }
                if syncRequested { finishSyncRequest() }
                if stopping {
                    finishStopping()
                    return
                }
                try rotateIfNeeded()
            } catch {
                fail(error)
                if syncRequested { finishSyncRequest() }
                if stopping {
                    finishStopping()
                    return
                }
            }
        }
    }

    /// Writes and syncs everything appended so far, whatever the policy (before a snapshot, so
    /// that a snapshot never holds writes the log could still lose).
    public func syncNow() throws {
        condition.lock()
        defer { condition.unlock() }
        state.syncRequested = true
        condition.broadcast()
        while state.syncRequested && !state.stopped { condition.wait() }
        if let failure = state.failure { throw failure }
    }

    func finishSyncRequest() {
        condition.lock()
        state.syncRequested = false
        condition.broadcast()
        condition.unlock()
    }

    func countSync() {
        condition.lock()
        state.syncCount += 1
        condition.unlock()
    }

    /// Records a written batch as durable and wakes the writers it covered.
    func completeBatch(through last: UInt64, bytes: Int) {
        condition.lock()
        state.durableSequence = last
        state.segmentLength += bytes
        state.durableSegmentLength = state.segmentLength
        var ready: [CheckedContinuation<Void, any Error>] = []
        state.waiters.removeAll { waiter in
            guard waiter.sequence <= last else { return false }
            ready.append(waiter.continuation)
            return true
        }
        condition.unlock()
        for continuation in ready { continuation.resume() }
    }

    /// Starts a new segment once the open one passes the size limit.
    func rotateIfNeeded() throws {
        condition.lock()
        guard state.segmentLength >= segmentLimit, state.failure == nil else {
            condition.unlock()
            return
        }
        // Records appended but not yet written go to the new segment, which starts after the
        // last written record.
        let first = state.durableSequence + 1
        let oldDescriptor = state.segmentDescriptor
        condition.unlock()

        // The old segment is complete: make it durable before moving on, whatever the policy.
        try FileIO.syncData(oldDescriptor, path: state.segmentPath)
        let path = directory + "/" + StorageFormat.segmentName(firstSequence: first)
        try FileWriteLog.createSegment(path, firstSequence: first, directory: directory)
        let descriptor = try FileIO.openForAppend(path)
        condition.lock()
        state.segmentDescriptor = descriptor
        state.segmentPath = path
        state.segmentLength = StorageFormat.segmentHeaderSize
        state.durableSegmentLength = StorageFormat.segmentHeaderSize
        condition.unlock()
        FileIO.closeDescriptor(oldDescriptor)
    }

    /// A write or sync failed: cut the file back to its last durable record, fail every waiter
    /// and refuse appends until the namespace rolls back.
    func fail(_ error: any Error) {
        condition.lock()
        state.durableAtFailure.append(state.durableSequence)
        state.failureEpoch += 1
        let failure = Failure(epoch: state.failureEpoch, underlying: error)
        state.failure = failure
        state.pending = []
        state.segmentLength = state.durableSegmentLength
        let waiters = state.waiters
        state.waiters = []
        let descriptor = state.segmentDescriptor
        let path = state.segmentPath
        let length = state.durableSegmentLength
        condition.unlock()
        logger.error("log write failed; writes are refused until it recovers", metadata: ["error": "\(error)"])
        do {
            try FileIO.truncate(descriptor, to: length, path: path)
        } catch {
            logger.error("could not truncate the log after a failed write", metadata: ["error": "\(error)"])
        }
        for waiter in waiters { waiter.continuation.resume(throwing: failure) }
    }

    func finishStopping() {
        condition.lock()
        let waiters = state.waiters
        state.waiters = []
        FileIO.closeDescriptor(state.segmentDescriptor)
        state.stopped = true
        condition.broadcast()
        condition.unlock()
        for waiter in waiters { waiter.continuation.resume(throwing: StorageClosed()) }
    }
}

/// The log is closed (the server is shutting down).
public struct StorageClosed: Error, CustomStringConvertible {
    public var description: String { "storage is closed" }
}

/// A record was appended, then dropped by a log failure before it became durable.
struct RecordDiscarded: Error, CustomStringConvertible {
    var description: String { "the log failed before this write was durable" }
}

/// A record larger than the format allows (Docs/STORAGE_FORMAT.md).
public struct RecordTooLarge: Error, CustomStringConvertible {
    public let bytes: Int
    public var description: String { "a write of \(bytes) bytes is larger than the log accepts" }
}

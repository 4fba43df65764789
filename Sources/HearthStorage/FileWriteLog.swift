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
        /// How many times the data was synced (a measure of group commit).
        var syncCount = 0
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
    var flusher: Thread?
    /// Called after each segment rotation with the new segment's first sequence.
    let onRotate: @Sendable (UInt64) -> Void

    /// Opens the log for appending after `lastSequence`, continuing the segment at `segmentPath`
    /// (already truncated to its good length) or starting a new one.
    init(
        directory: String, policy: FsyncPolicy, segmentLimit: Int, lastSequence: UInt64, openSegment: String?,
        logger: Logger, onRotate: @escaping @Sendable (UInt64) -> Void = { _ in }
    ) throws {
        self.directory = directory
        self.policy = policy
        self.segmentLimit = segmentLimit
        self.logger = logger
        self.onRotate = onRotate
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

    public func append(_ record: LogRecord, pushTime: Int64) throws {
        _ = try appendCountingBytes(record, pushTime: pushTime)
    }

    /// Appends and returns the record's size on disk.
    func appendCountingBytes(_ record: LogRecord, pushTime: Int64) throws -> Int {
        let framed = LogRecordCodec.frame(LogRecordCodec.Entry(record: record, pushTime: pushTime))
        condition.lock()
        defer { condition.unlock() }
        if let failure = state.failure { throw failure }
        guard !state.stopping else { throw StorageClosed() }
        precondition(record.sequence == state.appendedSequence + 1, "log records must be appended in sequence")
        state.pending.append(contentsOf: framed)
        state.pendingLastSequence = record.sequence
        state.appendedSequence = record.sequence
        condition.signal()
        return framed.count
    }

    public func waitUntilDurable(_ sequence: UInt64) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            condition.lock()
            if state.durableSequence >= sequence {
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
        var lastSync = ContinuousClock.now
        var unsyncedBytes = false
        while true {
            condition.lock()
            while state.pending.isEmpty && !state.stopping {
                if case .interval(let milliseconds) = policy, unsyncedBytes {
                    _ = condition.wait(until: Date(timeIntervalSinceNow: Double(milliseconds) / 1000))
                    if state.pending.isEmpty { break }
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
                }
                switch policy {
                case .always:
                    if unsyncedBytes {
                        try FileIO.syncData(descriptor, path: path)
                        unsyncedBytes = false
                        countSync()
                    }
                case .interval(let milliseconds):
                    if unsyncedBytes && (stopping || ContinuousClock.now - lastSync >= .milliseconds(milliseconds)) {
                        try FileIO.syncData(descriptor, path: path)
                        unsyncedBytes = false
                        lastSync = .now
                        countSync()
                    }
                case .none:
                    if stopping && unsyncedBytes {
                        try FileIO.syncData(descriptor, path: path)
                        unsyncedBytes = false
                    }
                }
                if !batch.isEmpty { completeBatch(through: last, bytes: batch.count) }
                if stopping {
                    finishStopping()
                    return
                }
                try rotateIfNeeded()
            } catch {
                fail(error)
                if stopping {
                    finishStopping()
                    return
                }
            }
        }
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
        onRotate(first)
    }

    /// A write or sync failed: cut the file back to its last durable record, fail every waiter
    /// and refuse appends until the namespace rolls back.
    func fail(_ error: any Error) {
        condition.lock()
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

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
///
/// The decisions (what a batch holds, whether it is synced, who is woken, when appends are
/// refused, when the log rotates or closes) are made by ``WriteLogStateMachine``, which this
/// class holds under `condition`; the class performs what the machine says: the I/O, the
/// waiting and the waking.
public final class FileWriteLog: WriteLog, @unchecked Sendable {
    /// A failure of the log; carries which failure it is, so that one is handled once.
    public struct Failure: Error, CustomStringConvertible {
        public let epoch: Int
        public let underlying: any Error
        public var description: String { "\(underlying)" }
    }

    /// A writer waiting for its record to be durable: a task's continuation, or a callback.
    struct Waiter: Sendable {
        let notify: @Sendable (Result<UInt64, any Error>) -> Void

        /// Every record through `durable` is durable.
        func resume(durableThrough durable: UInt64) { notify(.success(durable)) }
        func resume(throwing error: any Error) { notify(.failure(error)) }
    }
    typealias StateMachine = WriteLogStateMachine<Waiter>

    public let directory: String
    let logger: Logger
    /// Guards `machine`. The flusher waits on it for work, `close()` for the end of the flusher,
    /// `syncNow()` for its sync.
    let condition = NSCondition()
    /// The log's state; read and changed only under `condition`.
    var machine: StateMachine
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
        self.logger = logger
        let path: String
        if let openSegment {
            path = openSegment
        } else {
            path = NamespaceFiles(directory: directory).segment(firstSequence: lastSequence + 1)
            try FileWriteLog.createSegment(path, firstSequence: lastSequence + 1, directory: directory)
        }
        let descriptor = try FileIO.openForAppend(path)
        let length = try FileIO.size(path)
        machine = StateMachine(
            policy: policy, segmentLimit: segmentLimit, lastSequence: lastSequence,
            segment: StateMachine.Segment(path: path, descriptor: descriptor), segmentLength: length)
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

    /// Runs `body` on the machine under `condition`.
    func withMachine<T>(_ body: (inout StateMachine) throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body(&machine)
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
        switch machine.append(framed: framed, sequence: record.sequence) {
        case .appended(let ticket):
            condition.signal()
            return (ticket, framed.count)
        case .refuse(let error):
            throw error
        }
    }

    public func waitUntilDurable(_ sequence: UInt64, ticket: UInt64) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            whenDurable(sequence, ticket: ticket) { continuation.resume(with: $0.map { _ in }) }
        }
    }

    /// Calls `notify` on the flusher's thread once the record is durable, or at once (on this
    /// thread) if it is already, or if the log failed before that.
    public func whenDurable(_ sequence: UInt64, ticket: UInt64, notify: @escaping @Sendable (Result<UInt64, any Error>) -> Void) {
        let action = withMachine { $0.waitUntilDurable(sequence, ticket: ticket, waiter: Waiter(notify: notify)) }
        switch action {
        case .resume(let waiter): waiter.resume(durableThrough: sequence)
        case .fail(let waiter, let error): waiter.resume(throwing: error)
        case .suspend: break
        }
    }

    public func recover(from failure: any Error) -> UInt64? {
        guard let failure = failure as? Failure else { return nil }
        condition.lock()
        defer { condition.unlock() }
        guard let durable = machine.recover(from: failure) else { return nil }
        logger.notice("log writes resume after failure", metadata: ["durable_sequence": "\(durable)"])
        return durable
    }

    /// The last sequence known durable.
    public var durableSequence: UInt64 {
        withMachine { $0.durableSequence }
    }

    /// How many `fdatasync` calls the log has made.
    public var syncCount: Int {
        withMachine { $0.syncCount }
    }

    /// Makes the next `count` batch writes fail with `code` (for tests of disk trouble).
    func injectWriteFailures(_ count: Int, errno code: Int32) {
        withMachine { $0.injectWriteFailures(count, errno: code) }
    }

    /// Flushes what is pending, syncs, and stops the flusher. Later appends are refused.
    public func close() {
        condition.lock()
        if machine.stop() == .wakeFlusher { condition.broadcast() }
        while !machine.isClosed { condition.wait() }
        condition.unlock()
    }

    /// Writes and syncs everything appended so far, whatever the policy (before a snapshot, so
    /// that a snapshot never holds writes the log could still lose).
    public func syncNow() throws {
        condition.lock()
        defer { condition.unlock() }
        if machine.requestSync() == .wakeFlusher { condition.broadcast() }
        while true {
            switch machine.syncRequestState {
            case .pending: condition.wait()
            case .done: return
            case .failed(let failure): throw failure
            }
        }
    }

    // MARK: Flusher

    func flushLoop() {
        while let batch = nextBatch() {
            flush(batch)
        }
    }

    /// Waits until the machine has a pass for the flusher; nil once the log is closed.
    func nextBatch() -> StateMachine.Batch? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            switch machine.nextFlush(now: .now) {
            case .write(let batch):
                return batch
            case .exit:
                return nil
            case .wait(let deadline):
                if let deadline {
                    // An `interval` sync falls due then.
                    let remaining = deadline - ContinuousClock.now
                    let seconds = Double(remaining.components.seconds) + Double(remaining.components.attoseconds) / 1e18
                    _ = condition.wait(until: Date(timeIntervalSinceNow: seconds))
                } else {
                    condition.wait()
                }
            }
        }
    }

    /// One pass: writes the batch, syncs if the machine says so, wakes the writers it made
    /// durable, then rotates or closes if that is next. Any failure goes to `fail`.
    func flush(_ batch: StateMachine.Batch) {
        let segment = batch.segment
        do {
            if let code = batch.injectedErrno {
                // Half the batch reaches the file, as a real failure might leave it.
                try batch.bytes.withUnsafeBytes {
                    try FileIO.writeAll(segment.descriptor, UnsafeRawBufferPointer(rebasing: $0[..<($0.count / 2)]), path: segment.path)
                }
                throw StorageIOError(operation: "write", path: segment.path, code: code)
            }
            if !batch.bytes.isEmpty {
                try batch.bytes.withUnsafeBytes { try FileIO.writeAll(segment.descriptor, $0, path: segment.path) }
            }
            let completion: StateMachine.Completion
            // What is durable once the pass completes: its waiters all learn the batch's last
            // record, so the first of them publishes the whole batch.
            let durable: UInt64
            switch withMachine({ ($0.batchWritten(now: .now), $0.durableSequence) }) {
            case (.complete(let done), let through):
                completion = done
                durable = through
            case (.sync(let syncing), _):
                observer?.willSync()
                let syncStart = ContinuousClock.now
                try FileIO.syncData(syncing.descriptor, path: syncing.path)
                observer?.recordSync(ContinuousClock.now - syncStart)
                (completion, durable) = withMachine { ($0.batchSynced(), $0.durableSequence) }
            }
            for waiter in completion.resume { waiter.resume(durableThrough: durable) }
            if completion.wakeSyncRequesters { withMachine { _ in condition.broadcast() } }
            switch completion.next {
            case .idle:
                break
            case .rotate(let from, let firstSequence):
                try rotate(from: from, firstSequence: firstSequence)
            case .close:
                finishClosing()
            }
        } catch {
            fail(error)
        }
    }

    /// Starts a new segment at `firstSequence` once `old` passed the size limit.
    func rotate(from old: StateMachine.Segment, firstSequence: UInt64) throws {
        // The old segment is complete: make it durable before moving on, whatever the policy.
        try FileIO.syncData(old.descriptor, path: old.path)
        let path = NamespaceFiles(directory: directory).segment(firstSequence: firstSequence)
        let descriptor: Int32
        do {
            try FileWriteLog.createSegment(path, firstSequence: firstSequence, directory: directory)
            descriptor = try FileIO.openForAppend(path)
        } catch {
            // Nothing was written to the new segment: remove it, so the old one stays the last.
            // Left behind, the empty segment would be taken by the next snapshot as the one to
            // replay from, and the old one (which goes on taking records) removed with its
            // acknowledged writes.
            try? FileIO.remove(path)
            try? FileIO.syncDirectory(directory)
            throw error
        }
        let oldDescriptor = withMachine { $0.rotated(to: StateMachine.Segment(path: path, descriptor: descriptor)) }
        FileIO.closeDescriptor(oldDescriptor)
    }

    /// A write, sync or rotation failed: cut the file back to its last durable record, fail every
    /// waiter and refuse appends until the namespace rolls back.
    func fail(_ error: any Error) {
        let action = withMachine { $0.flushFailed(error) }
        logger.error("log write failed; writes are refused until it recovers", metadata: ["error": "\(error)"])
        do {
            try FileIO.truncate(action.segment.descriptor, to: action.length, path: action.segment.path)
        } catch {
            logger.error("could not truncate the log after a failed write", metadata: ["error": "\(error)"])
        }
        for waiter in action.waiters { waiter.resume(throwing: action.failure) }
        let after = withMachine { machine in
            let after = machine.failureHandled()
            if after.wakeSyncRequesters { condition.broadcast() }
            return after
        }
        if after.close { finishClosing() }
    }

    /// After the final pass: closes the segment, ends the log and fails writers still waiting.
    func finishClosing() {
        condition.lock()
        let action = machine.finishClosing()
        FileIO.closeDescriptor(action.descriptor)
        condition.broadcast()
        condition.unlock()
        for waiter in action.waiters { waiter.resume(throwing: StorageClosed()) }
    }
}

/// The log is closed (the server is shutting down).
public struct StorageClosed: Error, CustomStringConvertible {
    public var description: String { "storage is closed" }
}

/// A record larger than the format allows (Docs/STORAGE_FORMAT.md).
public struct RecordTooLarge: Error, CustomStringConvertible {
    public let bytes: Int
    public var description: String { "a write of \(bytes) bytes is larger than the log accepts" }
}

import Foundation
import HearthCore
import HearthStorage
import Logging
import NIOCore
import PostgresNIO

/// A namespace's write log in PostgreSQL: one row per record in `hearth_log`, keyed by
/// namespace and sequence.
///
/// Appends are queued in memory (the namespace's writer never waits on the network); a
/// flusher thread commits everything queued since its last commit in one transaction (group
/// commit, as the file log shares one `fdatasync`) and then answers the writes it held, so a
/// write is acknowledged only once its transaction has committed (`synchronous_commit` as the
/// server has it: on by default). The primary key fences the sequence: a record can never be
/// committed twice at one sequence number.
///
/// When a commit fails (PostgreSQL unreachable, restarting, a conflict), the writes it held
/// fail, later appends are refused, and ``recover(from:)`` asks PostgreSQL what is durable
/// before appends resume.
final class PostgresWriteLog: WriteLog, @unchecked Sendable {
    let namespace: String
    let connection: BlockingConnection
    let observer: StorageObserver
    let logger: Logger
    /// Called on the flusher thread after each commit with the records and payload bytes it
    /// committed (the namespace counts them towards its next snapshot).
    let committed: @Sendable (_ records: Int, _ bytes: Int) -> Void

    /// The state below, under `condition`.
    let condition = NSCondition()
    var pending: [(sequence: UInt64, pushTime: Int64, payload: [UInt8])] = []
    var durable: UInt64
    var waiters: [(sequence: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    var epoch: UInt64 = 0
    var failure: Failure?
    /// For each failed epoch, the last sequence PostgreSQL held when the log recovered: a
    /// record of that epoch is durable if and only if it is at or before it.
    var durableAtRecovery: [UInt64: UInt64] = [:]
    /// The batch whose commit failed and its commit id, kept until the recovery has asked
    /// PostgreSQL about it.
    var failedBatch: [(sequence: UInt64, pushTime: Int64, payload: [UInt8])] = []
    var failedCommit = UUID()
    var closing = false
    var flusherDone = false

    /// Why a record was not made durable: the commit of epoch `epoch` failed.
    struct Failure: Error, CustomStringConvertible {
        let epoch: UInt64
        let underlying: String
        var description: String { underlying }
    }

    /// An append after ``close()``.
    struct Closed: Error, CustomStringConvertible {
        var description: String { "the PostgreSQL log is closed (the server is stopping)" }
    }

    /// A record appended before a failure that the recovery found was not committed.
    struct RecordDiscarded: Error, CustomStringConvertible {
        var description: String { "the write was not committed before PostgreSQL failed" }
    }

    init(
        namespace: String, durable: UInt64, connection: BlockingConnection, observer: StorageObserver,
        logger: Logger, committed: @escaping @Sendable (Int, Int) -> Void
    ) {
        self.namespace = namespace
        self.durable = durable
        self.connection = connection
        self.observer = observer
        self.logger = logger
        self.committed = committed
        let thread = Thread { [unowned self] in self.flushLoop() }
        thread.name = "hearth-pg-log"
        thread.start()
    }

    // MARK: WriteLog

    func append(_ record: LogRecord, pushTime: Int64) throws -> UInt64 {
        let payload = LogRecordCodec.encodePayload(LogRecordCodec.Entry(record: record, pushTime: pushTime))
        condition.lock()
        defer { condition.unlock() }
        if let failure { throw failure }
        guard !closing else { throw Closed() }
        pending.append((record.sequence, pushTime, payload))
        condition.signal()
        return epoch
    }

    func waitUntilDurable(_ sequence: UInt64, ticket: UInt64) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            condition.lock()
            defer { condition.unlock() }
            // A record of an epoch that failed: durable only if PostgreSQL held it at recovery
            // (a later record reusing its sequence number is another write).
            if ticket < epoch {
                if let held = durableAtRecovery[ticket], sequence <= held { return continuation.resume() }
                return continuation.resume(throwing: RecordDiscarded())
            }
            if let failure, failure.epoch == ticket { return continuation.resume(throwing: failure) }
            if sequence <= durable { return continuation.resume() }
            waiters.append((sequence, continuation))
        }
    }

    /// Asks PostgreSQL which of this log's records it holds. Only records that are this log's
    /// own count (a commit whose answer was lost may have happened): the failed batch, if rows
    /// with its commit id are there. Otherwise another writer may have got there first; the
    /// log then reports the records before that batch (the caller takes the other writer's).
    func recover(from error: any Error) -> UInt64? {
        condition.lock()
        defer { condition.unlock() }
        guard let failure, let failed = error as? Failure, failed.epoch == failure.epoch else { return nil }
        // The failed commit's statement may still be running on a session whose connection
        // broke: it is ended first, so that what PostgreSQL shows is final.
        guard (try? connection.endDroppedSessions()) != nil, let held = try? ownRecordsHeld() else { return nil }
        durable = held
        durableAtRecovery[epoch] = held
        // Tickets of epochs long past are held by no waiter any more.
        if durableAtRecovery.count > 1024 { durableAtRecovery = durableAtRecovery.filter { $0.key + 1024 > epoch } }
        epoch += 1
        self.failure = nil
        failedBatch = []
        logger.notice("PostgreSQL writes resume", metadata: ["namespace": "\(namespace)", "sequence": "\(held)"])
        return held
    }

    /// Other nodes write the namespace too.
    var isShared: Bool { true }

    /// The records other nodes committed after `sequence` (see
    /// ``WriteLog/recordsWrittenElsewhere(after:)``); they are durable.
    func recordsWrittenElsewhere(after sequence: UInt64) throws -> [LogRecord] {
        let records = try connection.records(of: namespace, after: sequence)
        if let last = records.last {
            condition.lock()
            durable = max(durable, last.sequence)
            condition.unlock()
        }
        return records
    }

    /// The last of this log's records that PostgreSQL holds (see ``recover(from:)``): the
    /// failed batch's, if its commit happened (a batch is one statement: all its rows or none,
    /// found by the commit's id; the snapshot trims rows only after ``PostgresNamespace/trimAge``).
    func ownRecordsHeld() throws -> UInt64 {
        guard let first = failedBatch.first, let last = failedBatch.last else { return min(durable, try lastCommittedSequence()) }
        let rows = try connection.query("""
            SELECT count(*) FROM hearth_log WHERE namespace = \(namespace) AND commit_id = \(failedCommit)
            """)
        let held = try rows.first?.decode(Int64.self) ?? 0
        return held == Int64(failedBatch.count) ? last.sequence : first.sequence - 1
    }

    /// The last sequence PostgreSQL holds for the namespace (its snapshot's when the log rows
    /// after it were trimmed).
    func lastCommittedSequence() throws -> UInt64 {
        let rows = try connection.query("""
            SELECT greatest(
                (SELECT coalesce(max(sequence), 0) FROM hearth_log WHERE namespace = \(namespace)),
                (SELECT coalesce(max(sequence), 0) FROM hearth_snapshots WHERE namespace = \(namespace)))
            """)
        guard let row = rows.first else { return 0 }
        return UInt64(try row.decode(Int64.self))
    }

    // MARK: The flusher

    func flushLoop() {
        while true {
            condition.lock()
            while pending.isEmpty && !closing { condition.wait() }
            if pending.isEmpty {
                flusherDone = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let batch = pending
            pending = []
            let batchEpoch = epoch
            condition.unlock()

            let started = ContinuousClock.now
            let commitID = UUID()
            do {
                try commit(batch, id: commitID)
                observer.recordSync(ContinuousClock.now - started)
                let resumed: [CheckedContinuation<Void, any Error>] = {
                    condition.lock()
                    defer { condition.unlock() }
                    durable = max(durable, batch.last!.sequence)
                    let ready = waiters.filter { $0.sequence <= durable }.map(\.continuation)
                    waiters.removeAll { $0.sequence <= durable }
                    return ready
                }()
                for waiter in resumed { waiter.resume() }
                committed(batch.count, batch.reduce(0) { $0 + $1.payload.count })
            } catch {
                logger.error("PostgreSQL write failed; writes are refused until it recovers",
                    metadata: ["namespace": "\(namespace)", "error": "\(String(reflecting: error))"])
                let failed = Failure(epoch: batchEpoch, underlying: PostgresWriteLog.explain(error))
                let failedWaiters: [CheckedContinuation<Void, any Error>] = {
                    condition.lock()
                    defer { condition.unlock() }
                    failure = failed
                    failedBatch = batch
                    failedCommit = commitID
                    // What was queued after the batch is discarded with it (it follows it).
                    pending = []
                    defer { waiters = [] }
                    return waiters.map(\.continuation)
                }()
                for waiter in failedWaiters { waiter.resume(throwing: failed) }
            }
        }
    }

    /// What a client is told: PostgreSQL's own words when it refused, else that it could not be
    /// reached (the details are in the server log).
    static func explain(_ error: any Error) -> String {
        if let error = error as? Stale { return "\(error)" }
        if let error = error as? PSQLError, let message = error.serverInfo?[.message] { return "PostgreSQL refused the commit: \(message)" }
        return "PostgreSQL could not be reached, or the connection to it broke"
    }

    /// One statement (so one transaction and one round trip): the batch's rows are inserted
    /// only if PostgreSQL's last record for the namespace is the one before the batch. The
    /// check and the primary key together fence the sequence: a node whose memory is behind
    /// PostgreSQL (rows written by another node, even rows a snapshot has since trimmed)
    /// cannot commit.
    func commit(_ batch: [(sequence: UInt64, pushTime: Int64, payload: [UInt8])], id: UUID) throws {
        let sequences = batch.map { Int64($0.sequence) }
        let pushTimes = batch.map(\.pushTime)
        let payloads = batch.map { ByteBuffer(bytes: $0.payload) }
        let expected = Int64(batch[0].sequence) - 1
        let inserted = try connection.query("""
            INSERT INTO hearth_log (namespace, sequence, push_time, record, commit_id)
            SELECT \(namespace), s, p, r, \(id) FROM unnest(\(sequences)::int8[], \(pushTimes)::int8[], \(payloads)::bytea[]) AS t(s, p, r)
            WHERE greatest(
                (SELECT coalesce(max(sequence), 0) FROM hearth_log WHERE namespace = \(namespace)),
                (SELECT coalesce(max(sequence), 0) FROM hearth_snapshots WHERE namespace = \(namespace))) = \(expected)
            """)
        guard inserted.metadata.rows == batch.count else {
            throw Stale(namespace: namespace, expected: expected, found: Int64((try? lastCommittedSequence()) ?? 0))
        }
    }

    /// PostgreSQL holds records this node does not: it must not commit on a stale state.
    struct Stale: Error, CustomStringConvertible {
        let namespace: String
        let expected: Int64
        let found: Int64
        var description: String {
            "namespace \(namespace) in PostgreSQL is at \(found), this node at \(expected): another node wrote to it first"
        }
    }

    /// Commits what is queued, then stops the flusher (graceful shutdown).
    func close() {
        condition.lock()
        closing = true
        condition.broadcast()
        while !flusherDone { condition.wait() }
        condition.unlock()
    }
}

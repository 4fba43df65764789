/// The lifecycle of a ``FileWriteLog``, without I/O, threads or locks.
///
/// The log is driven from several threads: the namespace's writer (``append(framed:sequence:)``,
/// ``recover(from:)``), the writers waiting for their records
/// (``waitUntilDurable(_:ticket:waiter:)``), callers of `syncNow()` and `close()`, and the log's
/// one flusher thread, which takes batches, writes them, syncs them, rotates segments and
/// handles failures. Each of them tells this machine what happened (an event, a
/// `mutating func`) and gets back what to do (an action); ``FileWriteLog`` performs the actions
/// (`write`, `fdatasync`, `ftruncate`, opening and closing segments, waking threads and resuming
/// writers) while holding its lock only around the calls into this machine.
///
/// The machine is generic over what a waiting writer is (`Waiter`), so that it only keeps them
/// and hands them back: the log uses continuations, tests use plain values.
///
/// The log's admission of appends:
///
/// ```
///                init
///                 │
///                 ▼        flushFailed              flushFailed of an empty pass
///            ┌─────────┐ ──────────────▶ ┌────────┐ ───┐ (interval or syncNow): a new
///            │  open   │                 │ failed │    │ epoch replaces the failure
///            └─────────┘ ◀────────────── └────────┘ ◀──┘
///                 │      recover(epoch)       │
///            stop │                           │ stop
///                 ▼                           ▼
///            ┌──────────────────────────────────────┐ ───┐ flushFailed (sets the failure),
///            │ stopping (with or without a failure) │    │ recover (clears it)
///            └──────────────────────────────────────┘ ◀──┘
///                 │ finishClosing, after the flusher's final pass
///                 ▼
///            ┌────────┐ ───┐ recover (clears a failure)
///            │ closed │    │
///            └────────┘ ◀──┘
/// ```
///
/// - `open`: appends are framed into the pending buffer (the next batch).
/// - `failed`: a write, sync or rotation failed; appends are refused with the failure until the
///   namespace rolls back with ``recover(from:)`` for that failure's epoch.
/// - `stopping`: `close()` was called; appends are refused; the flusher's next pass takes what is
///   pending, syncs it whatever the policy, and is its last.
/// - `closed`: the flusher has ended and the segment is closed.
///
/// Within `open`, `failed` and `stopping`, the flusher goes through one pass at a time
/// (``Flusher``):
///
/// ```
///   idle ──nextFlush──▶ writing ──batchWritten (.sync)──▶ syncing ──batchSynced──┐
///                          └──── batchWritten (.complete: no sync needed) ───────┤
///                                                                                ▼
///                                                             completion, next: .idle   ──▶ idle
///                                                                               .rotate ──▶ rotating ──rotated──▶ idle
///                                                                               .close  ──▶ closing (final pass)
///   writing, syncing, rotating ──flushFailed──▶ failing ──failureHandled──▶ idle, or closing (final pass)
///   closing ──finishClosing──▶ the log is closed; nextFlush says .exit
/// ```
///
/// Appends made while a pass is under way go to the pending buffer and form the next batch
/// (group commit). Events that cannot happen in a state (the flusher reporting a sync it was not
/// asked for, or asking for work while a pass is under way) are programming errors and stop the
/// process.
struct WriteLogStateMachine<Waiter> {
    typealias Failure = FileWriteLog.Failure
    typealias Instant = ContinuousClock.Instant

    /// The open segment, where batches are written.
    struct Segment: Equatable, Sendable {
        var path: String
        var descriptor: Int32
    }

    /// Records framed by `append` that the flusher has not taken yet.
    struct Pending {
        var bytes: [UInt8] = []
        /// The sequence of the last record in `bytes` (meaningless while it is empty).
        var lastSequence: UInt64 = 0
    }

    /// One pass of the flusher: the batch it took, and what the pass is for.
    struct Pass: Equatable, Sendable {
        /// The last sequence in the batch; nil if the batch is empty (the pass may only sync).
        var lastSequence: UInt64?
        var byteCount: Int
        /// Taken after `stop()`: it syncs whatever the policy, and the log closes after it.
        var isFinal: Bool
        /// Taken while a `syncNow()` caller waited: it syncs whatever the policy, and wakes that
        /// caller.
        var servesSyncRequest: Bool
    }

    /// What the flusher is doing.
    enum Flusher: Equatable, Sendable {
        /// Waiting for work (``nextFlush(now:)``).
        case idle
        /// Writing the batch of this pass.
        case writing(Pass)
        /// Syncing the segment after writing the batch of this pass.
        case syncing(Pass)
        /// Syncing the full segment and starting the next one.
        case rotating
        /// Cutting the segment back after a failure of this pass (nil: of a rotation), and
        /// failing the waiting writers.
        case failing(Pass?)
        /// The final pass is over: the segment is to be closed and the log marked closed.
        case closing
    }

    enum State {
        /// Appends are accepted.
        case open(Open)
        /// A write, sync or rotation failed: appends are refused until ``recover(from:)``.
        case failed(Failed)
        /// `close()` was called: appends are refused; the flusher makes a final pass.
        case stopping(Stopping)
        /// The flusher has ended.
        case closed(Closed)
        /// Only while an event changes a payload in place (it avoids copying the pending bytes).
        case _modifying

        struct Open {
            var pending = Pending()
            var flusher: Flusher
        }

        struct Failed {
            var failure: Failure
            /// Idle, failing, or taking an empty pass (an interval sync or a `syncNow()`).
            var flusher: Flusher
        }

        struct Stopping {
            /// Records appended before `stop()`: the final pass writes them. Empty with a failure.
            var pending: Pending
            /// A failure not yet recovered from: appends are refused with it rather than with
            /// ``StorageClosed``.
            var failure: Failure?
            var flusher: Flusher
        }

        struct Closed {
            var failure: Failure?
        }
    }

    private(set) var state: State
    let policy: FsyncPolicy
    /// A segment at least this long is synced and replaced by a new one after a batch.
    let segmentLimit: Int

    /// The last sequence appended (taken by `append`).
    private(set) var appendedSequence: UInt64
    /// The last sequence written and, under the policy, made durable; writers waiting for a
    /// sequence up to it are released.
    private(set) var durableSequence: UInt64
    private(set) var segment: Segment
    /// The open segment's length after the last completed batch: what rotation compares with
    /// the limit, and what the segment is cut back to after a failure. (A batch being written
    /// is not counted until it completes.)
    private(set) var segmentLength: Int
    /// Writers waiting for a sequence beyond `durableSequence`, in the order they came.
    private var waiters: [(sequence: UInt64, waiter: Waiter)] = []
    /// How many failures there were; appends carry it as their ticket.
    private(set) var failureEpoch = 0
    /// Each failure (index: the epoch it ended): the durable sequence when it happened, and
    /// what failed.
    private var failures: [(durable: UInt64, cause: any Error)] = []
    /// How many times a batch was synced (a measure of group commit).
    private(set) var syncCount = 0
    /// Someone waits in `syncNow()`.
    private(set) var syncRequested = false
    /// When the oldest write not yet synced was made; nil once everything written is synced.
    private(set) var unsyncedSince: Instant?
    /// Under `interval`, while failed: no timed retry of the sync before this instant, one
    /// interval after the last, so a sync that keeps failing is not retried in a spin (each
    /// failure starting a new epoch).
    private(set) var failedSyncRetryAt: Instant?
    /// Tests: fail the next non-empty batch writes with `injectedErrno`, this many times.
    private var injectedFailures = 0
    private var injectedErrno: Int32 = 0

    /// A log appending after `lastSequence` to `segment`, which is `segmentLength` bytes long.
    init(policy: FsyncPolicy, segmentLimit: Int, lastSequence: UInt64, segment: Segment, segmentLength: Int) {
        self.state = .open(State.Open(flusher: .idle))
        self.policy = policy
        self.segmentLimit = segmentLimit
        self.appendedSequence = lastSequence
        self.durableSequence = lastSequence
        self.segment = segment
        self.segmentLength = segmentLength
    }

    // MARK: Queries

    /// What the flusher is doing; nil once the log is closed.
    var flusher: Flusher? {
        switch state {
        case .open(let open): open.flusher
        case .failed(let failed): failed.flusher
        case .stopping(let stopping): stopping.flusher
        case .closed: nil
        case ._modifying: preconditionFailure("invalid state")
        }
    }

    /// The failure appends are refused with, until it is recovered from.
    var failure: Failure? {
        switch state {
        case .open: nil
        case .failed(let failed): failed.failure
        case .stopping(let stopping): stopping.failure
        case .closed(let closed): closed.failure
        case ._modifying: preconditionFailure("invalid state")
        }
    }

    /// The flusher has ended and the segment is closed.
    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// The bytes appended and not yet taken by the flusher.
    var pendingByteCount: Int {
        switch state {
        case .open(let open): open.pending.bytes.count
        case .stopping(let stopping): stopping.pending.bytes.count
        case .failed, .closed: 0
        case ._modifying: preconditionFailure("invalid state")
        }
    }

    // MARK: Writers

    enum AppendAction {
        /// The record is pending: wake the flusher. The writer waits with this ticket (the failure
        /// epoch the record belongs to).
        case appended(ticket: UInt64)
        /// The record was not appended: throw this.
        case refuse(any Error)
    }

    /// The namespace's writer appends the record `sequence`, already framed.
    mutating func append(framed: [UInt8], sequence: UInt64) -> AppendAction {
        switch state {
        case .open(var open):
            precondition(sequence == appendedSequence + 1, "log records must be appended in sequence")
            state = ._modifying
            open.pending.bytes.append(contentsOf: framed)
            open.pending.lastSequence = sequence
            appendedSequence = sequence
            state = .open(open)
            return .appended(ticket: UInt64(failureEpoch))

        case .failed(let failed):
            return .refuse(failed.failure)

        case .stopping(let stopping):
            return .refuse(stopping.failure ?? StorageClosed())

        case .closed(let closed):
            return .refuse(closed.failure ?? StorageClosed())

        case ._modifying:
            preconditionFailure("invalid state")
        }
    }

    enum WaitAction {
        /// The record is durable: resume the writer.
        case resume(Waiter)
        /// The record is lost (or the log closed without it): fail the writer with this.
        case fail(Waiter, any Error)
        /// The machine keeps the writer until a pass makes its record durable or fails.
        case suspend
    }

    /// A writer waits until its record `sequence`, appended with `ticket`, is durable.
    mutating func waitUntilDurable(_ sequence: UInt64, ticket: UInt64, waiter: Waiter) -> WaitAction {
        if Int(ticket) != failureEpoch {
            // A failure came after this record was appended: it survived only if it was durable
            // before that failure (later records may reuse its sequence number).
            let failure = failures[Int(ticket)]
            if sequence <= failure.durable {
                return .resume(waiter)
            }
            // Lost in that failure: the writer learns what failed, as those waiting then did.
            return .fail(waiter, Failure(epoch: Int(ticket) + 1, underlying: failure.cause))
        }
        if durableSequence >= sequence {
            return .resume(waiter)
        }
        switch state {
        case .open:
            waiters.append((sequence, waiter))
            return .suspend

        case .failed(let failed):
            return .fail(waiter, failed.failure)

        case .stopping(let stopping):
            if let failure = stopping.failure {
                return .fail(waiter, failure)
            }
            // The final pass will write it, or fail.
            waiters.append((sequence, waiter))
            return .suspend

        case .closed(let closed):
            // Unreachable through FileWriteLog (a clean final pass makes every record of the
            // current epoch durable); the old code would have kept such a waiter forever.
            return .fail(waiter, closed.failure ?? StorageClosed())

        case ._modifying:
            preconditionFailure("invalid state")
        }
    }

    /// After a writer was told `failure`: if it is the failure the log is in, drop every record
    /// after the last durable one, accept appends again, and return that sequence (the caller
    /// rolls its tree back to it). Nil if the failure was already handled (or is not the current
    /// one).
    mutating func recover(from failure: Failure) -> UInt64? {
        switch state {
        case .failed(let failed) where failed.failure.epoch == failure.epoch:
            state = .open(State.Open(flusher: failed.flusher))
            failedSyncRetryAt = nil

        case .stopping(var stopping) where stopping.failure?.epoch == failure.epoch:
            // Appends stay refused (the log is closing), now with ``StorageClosed``.
            stopping.failure = nil
            state = .stopping(stopping)

        case .closed(var closed) where closed.failure?.epoch == failure.epoch:
            closed.failure = nil
            state = .closed(closed)

        case .open, .failed, .stopping, .closed:
            return nil

        case ._modifying:
            preconditionFailure("invalid state")
        }
        appendedSequence = durableSequence
        return durableSequence
    }

    /// Tests of disk trouble: the next `count` non-empty batch writes fail with `code`.
    mutating func injectWriteFailures(_ count: Int, errno code: Int32) {
        injectedFailures = count
        injectedErrno = code
    }

    // MARK: syncNow and close

    enum RequestSyncAction: Equatable {
        /// Wake the flusher, then wait until ``syncRequestState`` is no longer pending.
        case wakeFlusher
        /// The log is closed (its final pass synced everything): do not wait.
        case alreadyClosed
    }

    /// A caller of `syncNow()` wants everything written so far synced, whatever the policy.
    mutating func requestSync() -> RequestSyncAction {
        if isClosed { return .alreadyClosed }
        syncRequested = true
        return .wakeFlusher
    }

    enum SyncRequestState {
        /// No pass has served the request yet: keep waiting.
        case pending
        /// Served (or the log closed): return.
        case done
        /// The log is in this failure: throw it.
        case failed(Failure)
    }

    /// Where a `syncNow()` caller stands.
    var syncRequestState: SyncRequestState {
        if syncRequested && !isClosed { return .pending }
        if let failure = self.failure { return .failed(failure) }
        return .done
    }

    enum StopAction: Equatable {
        /// The log starts stopping: wake the flusher, then wait until ``isClosed``.
        case wakeFlusher
        /// Already stopping or closed: wait until ``isClosed``.
        case alreadyStopping
    }

    /// `close()`: refuse appends from now on, and let the flusher make its final pass.
    mutating func stop() -> StopAction {
        switch state {
        case .open(let open):
            state = .stopping(State.Stopping(pending: open.pending, failure: nil, flusher: open.flusher))
            return .wakeFlusher

        case .failed(let failed):
            state = .stopping(State.Stopping(pending: Pending(), failure: failed.failure, flusher: failed.flusher))
            return .wakeFlusher

        case .stopping, .closed:
            return .alreadyStopping

        case ._modifying:
            preconditionFailure("invalid state")
        }
    }

    // MARK: The flusher

    /// A batch for the flusher to write.
    struct Batch: Equatable, Sendable {
        /// Every record pending when the pass began, framed; may be empty.
        var bytes: [UInt8]
        var segment: Segment
        var pass: Pass
        /// Tests: write half the batch, then fail with this errno.
        var injectedErrno: Int32?
    }

    enum FlushAction: Equatable {
        /// Nothing to do: wait until woken, or at the latest until this instant (an `interval`
        /// sync falls due then), and ask again.
        case wait(until: Instant?)
        /// Write this batch (even if empty), then report ``batchWritten(now:)`` or
        /// ``flushFailed(_:)``.
        case write(Batch)
        /// The log is closed: the flusher ends.
        case exit
    }

    /// The idle flusher asks for its next pass. There is one when records are pending, a
    /// `syncNow()` waits, the log is stopping, or an `interval` sync is due at `now`.
    mutating func nextFlush(now: Instant) -> FlushAction {
        switch state {
        case .open(var open):
            precondition(open.flusher == .idle, "the flusher is not idle")
            guard !open.pending.bytes.isEmpty || syncRequested || intervalSyncDue(at: now) else {
                return .wait(until: intervalSyncDeadline)
            }
            state = ._modifying
            let batch = takeBatch(&open.pending, isFinal: false)
            open.flusher = .writing(batch.pass)
            state = .open(open)
            return .write(batch)

        case .failed(var failed):
            precondition(failed.flusher == .idle, "the flusher is not idle")
            // Appends are refused, so nothing is pending; a pass may still sync.
            let timedRetryDue = intervalSyncDue(at: now) && failedSyncRetryAt.map { now >= $0 } ?? true
            guard syncRequested || timedRetryDue else {
                let deadlines = [intervalSyncDeadline, failedSyncRetryAt].compactMap { $0 }
                return .wait(until: deadlines.max())
            }
            if timedRetryDue, case .interval(let milliseconds) = policy {
                failedSyncRetryAt = now + .milliseconds(milliseconds)
            }
            var nothing = Pending()
            let batch = takeBatch(&nothing, isFinal: false)
            failed.flusher = .writing(batch.pass)
            state = .failed(failed)
            return .write(batch)

        case .stopping(var stopping):
            precondition(stopping.flusher == .idle, "the flusher is not idle")
            state = ._modifying
            let batch = takeBatch(&stopping.pending, isFinal: true)
            stopping.flusher = .writing(batch.pass)
            state = .stopping(stopping)
            return .write(batch)

        case .closed:
            return .exit

        case ._modifying:
            preconditionFailure("invalid state")
        }
    }

    /// Under `interval`, when the oldest unsynced write falls due for a sync.
    var intervalSyncDeadline: Instant? {
        guard case .interval(let milliseconds) = policy, let since = unsyncedSince else { return nil }
        return since + .milliseconds(milliseconds)
    }

    private func intervalSyncDue(at now: Instant) -> Bool {
        intervalSyncDeadline.map { now >= $0 } ?? false
    }

    private mutating func takeBatch(_ pending: inout Pending, isFinal: Bool) -> Batch {
        let bytes = pending.bytes
        let lastSequence = pending.lastSequence
        pending = Pending()
        var injected: Int32?
        if injectedFailures > 0 && !bytes.isEmpty {
            injectedFailures -= 1
            injected = injectedErrno
        }
        let pass = Pass(
            lastSequence: bytes.isEmpty ? nil : lastSequence, byteCount: bytes.count, isFinal: isFinal,
            servesSyncRequest: syncRequested)
        return Batch(bytes: bytes, segment: segment, pass: pass, injectedErrno: injected)
    }

    /// What to do after a batch: see ``batchWritten(now:)`` and ``batchSynced()``.
    struct Completion {
        /// Writers whose records are now durable: resume them.
        var resume: [Waiter]
        /// A `syncNow()` request was served: wake its caller.
        var wakeSyncRequesters: Bool
        var next: Next

        enum Next: Equatable {
            /// Back to idle.
            case idle
            /// Sync `from` (whatever the policy), create the segment starting at `firstSequence`,
            /// open it, then report ``rotated(to:)`` or ``flushFailed(_:)``.
            case rotate(from: Segment, firstSequence: UInt64)
            /// The final pass is over: call ``finishClosing()`` (after resuming `resume`).
            case close
        }
    }

    enum WrittenAction {
        /// `fdatasync` the segment, then report ``batchSynced()`` or ``flushFailed(_:)``.
        case sync(Segment)
        /// The batch needs no sync now: it is complete.
        case complete(Completion)
    }

    /// The flusher wrote the batch of its pass (at `now`). The segment is synced if something
    /// written is unsynced and the policy says so (`always`; `interval` once the oldest unsynced
    /// write is old enough), or the pass is final or serves a `syncNow()`.
    mutating func batchWritten(now: Instant) -> WrittenAction {
        guard case .writing(let pass)? = flusher else { preconditionFailure("no batch is being written") }
        if pass.byteCount > 0 && unsyncedSince == nil {
            unsyncedSince = now
        }
        let due: Bool
        switch policy {
        case .always: due = true
        case .interval(let milliseconds): due = unsyncedSince.map { now - $0 >= .milliseconds(milliseconds) } ?? false
        case .none: due = false
        }
        if unsyncedSince != nil && (due || pass.isFinal || pass.servesSyncRequest) {
            setFlusher(.syncing(pass))
            return .sync(segment)
        }
        return .complete(complete(pass))
    }

    /// The flusher synced the segment after writing the batch of its pass.
    mutating func batchSynced() -> Completion {
        guard case .syncing(let pass)? = flusher else { preconditionFailure("no batch is being synced") }
        syncCount += 1
        unsyncedSince = nil
        return complete(pass)
    }

    /// Records the batch of `pass` as durable, releases its writers, and says what comes next.
    private mutating func complete(_ pass: Pass) -> Completion {
        var ready: [Waiter] = []
        if let last = pass.lastSequence {
            durableSequence = last
            segmentLength += pass.byteCount
            waiters.removeAll { entry in
                guard entry.sequence <= last else { return false }
                ready.append(entry.waiter)
                return true
            }
        }
        if pass.servesSyncRequest {
            syncRequested = false
        }
        let next: Completion.Next
        if pass.isFinal {
            next = .close
            setFlusher(.closing)
        } else if failure == nil && segmentLength >= segmentLimit {
            // Records appended but not yet written go to the new segment, which starts after the
            // last written record.
            next = .rotate(from: segment, firstSequence: durableSequence + 1)
            setFlusher(.rotating)
        } else {
            next = .idle
            setFlusher(.idle)
        }
        return Completion(resume: ready, wakeSyncRequesters: pass.servesSyncRequest, next: next)
    }

    /// The flusher started a new segment; returns the old one's descriptor, to close.
    mutating func rotated(to newSegment: Segment) -> Int32 {
        guard case .rotating? = flusher else { preconditionFailure("no rotation is under way") }
        let old = segment.descriptor
        segment = newSegment
        segmentLength = StorageFormat.segmentHeaderSize
        setFlusher(.idle)
        return old
    }

    /// What to do after a failed write, sync or rotation.
    struct FailAction {
        /// Fail every waiting writer with it.
        var failure: Failure
        var waiters: [Waiter]
        /// Cut this segment back to `length` (after the last completed batch) first.
        var segment: Segment
        var length: Int
    }

    /// The write, the sync or the rotation of the flusher's pass failed with `error`: a new
    /// failure epoch begins, the pending records are dropped, every waiting writer is to be
    /// failed and appends are refused until ``recover(from:)``. The flusher reports
    /// ``failureHandled()`` once it has cut the segment back and failed the writers.
    mutating func flushFailed(_ error: any Error) -> FailAction {
        let pass: Pass?
        switch flusher {
        case .writing(let failedPass)?, .syncing(let failedPass)?: pass = failedPass
        case .rotating?: pass = nil
        default: preconditionFailure("no write, sync or rotation is under way")
        }
        failures.append((durable: durableSequence, cause: error))
        failureEpoch += 1
        let failure = Failure(epoch: failureEpoch, underlying: error)
        switch state {
        case .open, .failed:
            state = .failed(State.Failed(failure: failure, flusher: .failing(pass)))
        case .stopping:
            state = .stopping(State.Stopping(pending: Pending(), failure: failure, flusher: .failing(pass)))
        case .closed, ._modifying:
            preconditionFailure("invalid state")
        }
        let failed = waiters.map(\.waiter)
        waiters = []
        return FailAction(failure: failure, waiters: failed, segment: segment, length: segmentLength)
    }

    struct AfterFailure: Equatable {
        /// The failed pass served a `syncNow()`: wake its caller (it will throw the failure).
        var wakeSyncRequesters: Bool
        /// The failed pass was the final one: call ``finishClosing()``.
        var close: Bool
    }

    /// The flusher cut the segment back and failed the writers.
    mutating func failureHandled() -> AfterFailure {
        guard case .failing(let pass)? = flusher else { preconditionFailure("no failure is being handled") }
        let servedSyncRequest = pass?.servesSyncRequest ?? false
        if servedSyncRequest {
            syncRequested = false
        }
        let isFinal = pass?.isFinal ?? false
        setFlusher(isFinal ? .closing : .idle)
        return AfterFailure(wakeSyncRequesters: servedSyncRequest, close: isFinal)
    }

    struct CloseAction {
        /// Close it.
        var descriptor: Int32
        /// Writers still waiting: fail them with ``StorageClosed``.
        var waiters: [Waiter]
    }

    /// The final pass is over: the log is closed.
    mutating func finishClosing() -> CloseAction {
        guard case .stopping(let stopping) = state, stopping.flusher == .closing else {
            preconditionFailure("the log is not closing")
        }
        state = .closed(State.Closed(failure: stopping.failure))
        let remaining = waiters.map(\.waiter)
        waiters = []
        return CloseAction(descriptor: segment.descriptor, waiters: remaining)
    }

    private mutating func setFlusher(_ flusher: Flusher) {
        switch state {
        case .open(var open):
            state = ._modifying
            open.flusher = flusher
            state = .open(open)
        case .failed(var failed):
            failed.flusher = flusher
            state = .failed(failed)
        case .stopping(var stopping):
            state = ._modifying
            stopping.flusher = flusher
            state = .stopping(stopping)
        case .closed, ._modifying:
            preconditionFailure("the flusher has ended")
        }
    }
}

extension WriteLogStateMachine.Completion: Equatable where Waiter: Equatable {}
extension WriteLogStateMachine.WrittenAction: Equatable where Waiter: Equatable {}

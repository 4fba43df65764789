import Foundation
@testable import HearthStorage
import Testing

/// The machine with writers named by strings, so that a test sees who is woken.
private typealias LogMachine = WriteLogStateMachine<String>

/// The machine only compares instants: every test counts from this one.
private let t0 = ContinuousClock.now
private let header = StorageFormat.segmentHeaderSize
private let firstSegment = LogMachine.Segment(path: "/data/ns/log-1.hlog", descriptor: 7)
private let secondSegment = LogMachine.Segment(path: "/data/ns/log-next.hlog", descriptor: 8)

private struct DiskError: Error {}

private func machine(_ policy: FsyncPolicy = .always, segmentLimit: Int = 1 << 20, lastSequence: UInt64 = 0) -> LogMachine {
    LogMachine(policy: policy, segmentLimit: segmentLimit, lastSequence: lastSequence, segment: firstSegment, segmentLength: header)
}

/// A framed record: ten bytes (what they hold does not matter to the machine).
private func framed(_ sequence: UInt64) -> [UInt8] {
    Array(repeating: UInt8(truncatingIfNeeded: sequence), count: 10)
}

private func pass(_ lastSequence: UInt64?, bytes: Int, isFinal: Bool = false, servesSyncRequest: Bool = false) -> LogMachine.Pass {
    LogMachine.Pass(lastSequence: lastSequence, byteCount: bytes, isFinal: isFinal, servesSyncRequest: servesSyncRequest)
}

private func completion(_ resume: [String], wakeSyncRequesters: Bool = false, next: LogMachine.Completion.Next = .idle) -> LogMachine.Completion {
    LogMachine.Completion(resume: resume, wakeSyncRequesters: wakeSyncRequesters, next: next)
}

/// The epoch of a log failure; nil for any other error.
private func epoch(_ error: (any Error)?) -> Int? {
    (error as? LogMachine.Failure)?.epoch
}

private extension WriteLogStateMachine {
    var stateName: String {
        switch state {
        case .open: return "open"
        case .failed: return "failed"
        case .stopping: return "stopping"
        case .closed: return "closed"
        case ._modifying: return "modifying"
        }
    }

    /// Appends `sequence` and expects it accepted; returns the ticket.
    mutating func expectAppend(_ sequence: UInt64) throws -> UInt64 {
        let action = append(framed: framed(sequence), sequence: sequence)
        return try #require(action.ticket)
    }

    /// Expects the flusher to get a pass now; returns its batch.
    mutating func expectBatch(now: Instant) throws -> Batch {
        let action = nextFlush(now: now)
        return try #require(action.batch)
    }

    /// Reports the pass's batch written and, if the machine asks for it, synced.
    mutating func finishPass(now: Instant) -> (completion: Completion, synced: Bool) {
        switch batchWritten(now: now) {
        case .complete(let completion):
            return (completion, false)
        case .sync:
            return (batchSynced(), true)
        }
    }
}

private extension WriteLogStateMachine.AppendAction {
    var ticket: UInt64? {
        if case .appended(let ticket) = self { return ticket }
        return nil
    }

    var refusal: (any Error)? {
        if case .refuse(let error) = self { return error }
        return nil
    }
}

private extension WriteLogStateMachine.WaitAction {
    var resumed: Waiter? {
        if case .resume(let waiter) = self { return waiter }
        return nil
    }

    var failed: Waiter? {
        if case .fail(let waiter, _) = self { return waiter }
        return nil
    }

    var error: (any Error)? {
        if case .fail(_, let error) = self { return error }
        return nil
    }

    var isSuspended: Bool {
        if case .suspend = self { return true }
        return false
    }
}

private extension WriteLogStateMachine.FlushAction {
    var batch: WriteLogStateMachine<Waiter>.Batch? {
        if case .write(let batch) = self { return batch }
        return nil
    }
}

private extension WriteLogStateMachine.SyncRequestState {
    var isPending: Bool {
        if case .pending = self { return true }
        return false
    }

    var isDone: Bool {
        if case .done = self { return true }
        return false
    }

    var failure: FileWriteLog.Failure? {
        if case .failed(let failure) = self { return failure }
        return nil
    }
}

@Suite("Write log state machine")
struct WriteLogStateMachineTests {
    // MARK: open

    @Test func aNewLogIsOpenAndItsFlusherWaits() throws {
        var log = machine(lastSequence: 41)
        #expect(log.stateName == "open")
        #expect(log.flusher == .idle)
        #expect(log.durableSequence == 41)
        #expect(log.appendedSequence == 41)
        let action = log.nextFlush(now: t0 + .seconds(3600))
        #expect(action == .wait(until: nil))
        #expect(log.flusher == .idle)
        #expect(log.syncRequestState.isDone)
        #expect(log.failure == nil)
        let ticket = try log.expectAppend(42)
        #expect(ticket == 0)
        #expect(log.appendedSequence == 42)
        #expect(log.durableSequence == 41)
    }

    @Test func writersShareOnePassAndAppendsDuringItFormTheNextBatch() throws {
        var log = machine()
        for sequence: UInt64 in 1...3 {
            #expect(try log.expectAppend(sequence) == 0)
            let wait = log.waitUntilDurable(sequence, ticket: 0, waiter: "w\(sequence)")
            #expect(wait.isSuspended)
        }
        #expect(log.pendingByteCount == 30)

        let batch = try log.expectBatch(now: t0)
        #expect(batch == LogMachine.Batch(bytes: framed(1) + framed(2) + framed(3), segment: firstSegment, pass: pass(3, bytes: 30), injectedErrno: nil))
        #expect(log.flusher == .writing(batch.pass))
        #expect(log.pendingByteCount == 0)

        // Appends while the batch is written go to the next batch.
        _ = try log.expectAppend(4)
        _ = try log.expectAppend(5)
        let wait4 = log.waitUntilDurable(4, ticket: 0, waiter: "w4")
        #expect(wait4.isSuspended)

        let written = log.batchWritten(now: t0)
        #expect(written == .sync(firstSegment))
        #expect(log.flusher == .syncing(batch.pass))
        // Under `always`, written is not yet durable.
        #expect(log.durableSequence == 0)
        let early = log.waitUntilDurable(2, ticket: 0, waiter: "early")
        #expect(early.isSuspended)

        let done = log.batchSynced()
        #expect(done == completion(["w1", "w2", "w3", "early"]))
        #expect(log.flusher == .idle)
        #expect(log.durableSequence == 3)
        #expect(log.syncCount == 1)
        #expect(log.segmentLength == header + 30)
        #expect(log.unsyncedSince == nil)

        // A record already durable does not wait.
        let late = log.waitUntilDurable(3, ticket: 0, waiter: "late")
        #expect(late.resumed == "late")

        let next = try log.expectBatch(now: t0)
        #expect(next.bytes == framed(4) + framed(5))
        #expect(next.pass == pass(5, bytes: 20))
        let (nextDone, synced) = log.finishPass(now: t0)
        #expect(synced)
        #expect(nextDone == completion(["w4"]))
        #expect(log.durableSequence == 5)
        #expect(log.syncCount == 2)
    }

    @Test func underNoneARecordIsAcknowledgedOnceWrittenAndNeverSyncedByTheFlusherAlone() throws {
        var log = machine(.none)
        _ = try log.expectAppend(1)
        #expect(log.waitUntilDurable(1, ticket: 0, waiter: "w1").isSuspended)
        _ = try log.expectBatch(now: t0)
        let written = log.batchWritten(now: t0)
        #expect(written == .complete(completion(["w1"])))
        #expect(log.durableSequence == 1)
        #expect(log.syncCount == 0)
        #expect(log.unsyncedSince == t0)
        // No timer: the flusher waits until woken.
        let action = log.nextFlush(now: t0 + .seconds(3600))
        #expect(action == .wait(until: nil))
    }

    @Test func underIntervalTheOldestUnsyncedWriteSetsTheDeadline() throws {
        var log = machine(.interval(milliseconds: 1000))
        _ = try log.expectAppend(1)
        #expect(log.waitUntilDurable(1, ticket: 0, waiter: "w1").isSuspended)
        _ = try log.expectBatch(now: t0)
        // Acknowledged once written.
        let first = log.batchWritten(now: t0)
        #expect(first == .complete(completion(["w1"])))
        #expect(log.unsyncedSince == t0)
        let idle = log.nextFlush(now: t0 + .milliseconds(400))
        #expect(idle == .wait(until: t0 + .milliseconds(1000)))

        // A later write does not move the deadline.
        _ = try log.expectAppend(2)
        _ = try log.expectBatch(now: t0 + .milliseconds(600))
        let second = log.batchWritten(now: t0 + .milliseconds(600))
        #expect(second == .complete(completion([])))
        #expect(log.unsyncedSince == t0)
        let stillIdle = log.nextFlush(now: t0 + .milliseconds(999))
        #expect(stillIdle == .wait(until: t0 + .milliseconds(1000)))

        // At the deadline an empty pass syncs.
        let due = try log.expectBatch(now: t0 + .milliseconds(1000))
        #expect(due.bytes.isEmpty)
        #expect(due.pass == pass(nil, bytes: 0))
        let sync = log.batchWritten(now: t0 + .milliseconds(1000))
        #expect(sync == .sync(firstSegment))
        let done = log.batchSynced()
        #expect(done == completion([]))
        #expect(log.syncCount == 1)
        #expect(log.unsyncedSince == nil)
        #expect(log.durableSequence == 2)
        let quiet = log.nextFlush(now: t0 + .seconds(10))
        #expect(quiet == .wait(until: nil))
    }

    @Test func underIntervalABatchWrittenAfterTheDeadlineIsSyncedAtOnce() throws {
        var log = machine(.interval(milliseconds: 1000))
        _ = try log.expectAppend(1)
        _ = try log.expectBatch(now: t0)
        #expect(log.batchWritten(now: t0) == .complete(completion([])))
        _ = try log.expectAppend(2)
        #expect(log.waitUntilDurable(2, ticket: 0, waiter: "w2").isSuspended)
        let batch = try log.expectBatch(now: t0 + .milliseconds(1500))
        #expect(batch.pass == pass(2, bytes: 10))
        let written = log.batchWritten(now: t0 + .milliseconds(1500))
        #expect(written == .sync(firstSegment))
        let done = log.batchSynced()
        #expect(done == completion(["w2"]))
        #expect(log.unsyncedSince == nil)
    }

    // MARK: syncNow

    @Test func aSyncRequestIsServedByTheNextPassWhateverThePolicy() throws {
        var log = machine(.none)
        _ = try log.expectAppend(1)
        _ = try log.expectBatch(now: t0)
        #expect(log.batchWritten(now: t0) == .complete(completion([])))

        #expect(log.requestSync() == .wakeFlusher)
        #expect(log.syncRequestState.isPending)
        let batch = try log.expectBatch(now: t0)
        #expect(batch.pass == pass(nil, bytes: 0, servesSyncRequest: true))
        let written = log.batchWritten(now: t0)
        #expect(written == .sync(firstSegment))
        #expect(log.syncRequestState.isPending)
        let done = log.batchSynced()
        #expect(done == completion([], wakeSyncRequesters: true))
        #expect(log.syncRequestState.isDone)
        #expect(log.syncCount == 1)

        // Nothing is unsynced now: the next request is served without a sync.
        #expect(log.requestSync() == .wakeFlusher)
        _ = try log.expectBatch(now: t0)
        let again = log.batchWritten(now: t0)
        #expect(again == .complete(completion([], wakeSyncRequesters: true)))
        #expect(log.syncRequestState.isDone)
        #expect(log.syncCount == 1)
    }

    @Test func aSyncRequestMadeDuringAPassWaitsForTheNextOne() throws {
        var log = machine(.none)
        _ = try log.expectAppend(1)
        let first = try log.expectBatch(now: t0)
        #expect(first.pass.servesSyncRequest == false)
        #expect(log.requestSync() == .wakeFlusher)
        let written = log.batchWritten(now: t0)
        #expect(written == .complete(completion([])))
        #expect(log.syncRequestState.isPending)

        let second = try log.expectBatch(now: t0)
        #expect(second.pass.servesSyncRequest)
        let (done, synced) = log.finishPass(now: t0)
        #expect(synced)
        #expect(done.wakeSyncRequesters)
        #expect(log.syncRequestState.isDone)
    }

    // MARK: failure and recovery

    @Test func aFailedWriteFailsEveryWaiterAndRefusesAppends() throws {
        var log = machine()
        _ = try log.expectAppend(1)
        _ = try log.expectBatch(now: t0)
        _ = log.finishPass(now: t0)
        #expect(log.durableSequence == 1)

        _ = try log.expectAppend(2)
        _ = try log.expectAppend(3)
        #expect(log.waitUntilDurable(2, ticket: 0, waiter: "w2").isSuspended)
        #expect(log.waitUntilDurable(3, ticket: 0, waiter: "w3").isSuspended)
        let batch = try log.expectBatch(now: t0)
        // Appended during the failing write: dropped with it.
        _ = try log.expectAppend(4)
        #expect(log.waitUntilDurable(4, ticket: 0, waiter: "w4").isSuspended)

        let action = log.flushFailed(DiskError())
        #expect(action.failure.epoch == 1)
        #expect(action.failure.underlying is DiskError)
        #expect(action.waiters == ["w2", "w3", "w4"])
        #expect(action.segment == firstSegment)
        #expect(action.length == header + 10)
        #expect(log.stateName == "failed")
        #expect(log.flusher == .failing(batch.pass))
        #expect(log.failureEpoch == 1)
        #expect(log.pendingByteCount == 0)
        #expect(log.segmentLength == header + 10)
        #expect(log.durableSequence == 1)

        // Appends are refused with the failure.
        let refused = log.append(framed: framed(5), sequence: 5)
        #expect(epoch(refused.refusal) == 1)
        // A writer who waits only now learns it too (what failed); one whose record was
        // durable does not.
        let lateLost = log.waitUntilDurable(2, ticket: 0, waiter: "late2")
        #expect(lateLost.failed == "late2")
        #expect(epoch(lateLost.error) == 1)
        #expect((lateLost.error as? LogMachine.Failure)?.underlying is DiskError)
        let lateKept = log.waitUntilDurable(1, ticket: 0, waiter: "late1")
        #expect(lateKept.resumed == "late1")

        let after = log.failureHandled()
        #expect(after == LogMachine.AfterFailure(wakeSyncRequesters: false, close: false))
        #expect(log.flusher == .idle)
        #expect(log.stateName == "failed")
        // Nothing to write while failed, and nothing unsynced.
        let idle = log.nextFlush(now: t0 + .seconds(3600))
        #expect(idle == .wait(until: nil))
    }

    @Test func aFailedSyncIsNeverAcknowledgedAndTheNextBatchReusesTheSequence() throws {
        var log = machine()
        _ = try log.expectAppend(1)
        #expect(log.waitUntilDurable(1, ticket: 0, waiter: "w1").isSuspended)
        let batch = try log.expectBatch(now: t0)
        #expect(log.batchWritten(now: t0) == .sync(firstSegment))
        let action = log.flushFailed(DiskError())
        #expect(action.waiters == ["w1"])
        // Cut back to before the batch: nothing of it stays.
        #expect(action.length == header)
        #expect(log.segmentLength == header)
        #expect(log.durableSequence == 0)
        #expect(log.syncCount == 0)
        #expect(log.flusher == .failing(batch.pass))
        // What was written stays counted as unsynced.
        #expect(log.unsyncedSince == t0)
        #expect(log.failureHandled() == LogMachine.AfterFailure(wakeSyncRequesters: false, close: false))

        #expect(log.recover(from: action.failure) == 0)
        #expect(log.stateName == "open")
        #expect(log.appendedSequence == 0)
        #expect(try log.expectAppend(1) == 1)
        #expect(log.waitUntilDurable(1, ticket: 1, waiter: "again").isSuspended)
        _ = try log.expectBatch(now: t0)
        let (done, synced) = log.finishPass(now: t0)
        #expect(synced)
        #expect(done == completion(["again"]))
        #expect(log.durableSequence == 1)
        #expect(log.segmentLength == header + 10)
    }

    @Test func onlyTheCurrentFailureRecovers() throws {
        var log = machine()
        #expect(log.recover(from: LogMachine.Failure(epoch: 0, underlying: DiskError())) == nil)
        _ = try log.expectAppend(1)
        _ = try log.expectBatch(now: t0)
        _ = log.finishPass(now: t0)
        _ = try log.expectAppend(2)
        _ = try log.expectBatch(now: t0)
        let action = log.flushFailed(DiskError())
        _ = log.failureHandled()

        #expect(log.recover(from: LogMachine.Failure(epoch: 2, underlying: DiskError())) == nil)
        #expect(log.stateName == "failed")
        #expect(log.recover(from: action.failure) == 1)
        #expect(log.stateName == "open")
        #expect(log.appendedSequence == 1)
        // Handled once: the other writers who got the same failure change nothing.
        #expect(log.recover(from: action.failure) == nil)
        #expect(try log.expectAppend(2) == 1)
    }

    @Test func recoveringWhileTheFlusherStillHandlesTheFailure() throws {
        var log = machine()
        _ = try log.expectAppend(1)
        _ = try log.expectBatch(now: t0)
        let action = log.flushFailed(DiskError())
        #expect(log.recover(from: action.failure) == 0)
        #expect(log.stateName == "open")
        #expect(log.flusher == .failing(pass(1, bytes: 10)))
        // Accepted, but written only once the failure is handled (after the truncation).
        _ = try log.expectAppend(1)
        #expect(log.failureHandled() == LogMachine.AfterFailure(wakeSyncRequesters: false, close: false))
        let batch = try log.expectBatch(now: t0)
        #expect(batch.bytes == framed(1))
        #expect(batch.pass.lastSequence == 1)
    }

    @Test func aRecordDroppedByAFailureIsNeverAcknowledgedLater() throws {
        var log = machine()
        log.injectWriteFailures(1, errno: EIO)
        let lost = try log.expectAppend(1)
        let batch = try log.expectBatch(now: t0)
        #expect(batch.injectedErrno == EIO)
        let action = log.flushFailed(StorageIOError(operation: "write", path: firstSegment.path, code: EIO))
        #expect(action.waiters.isEmpty)
        _ = log.failureHandled()
        #expect(log.recover(from: action.failure) == 0)

        // Sequence 1 is reused by a new record, which becomes durable...
        let kept = try log.expectAppend(1)
        #expect(kept != lost)
        let next = try log.expectBatch(now: t0)
        #expect(next.injectedErrno == nil)
        _ = log.finishPass(now: t0)
        #expect(log.waitUntilDurable(1, ticket: kept, waiter: "kept").resumed == "kept")
        // ...but the first writer must still learn that its record was lost.
        let late = log.waitUntilDurable(1, ticket: lost, waiter: "lost")
        #expect(late.failed == "lost")
        #expect(epoch(late.error) == 1)
    }

    @Test func eachFailureRemembersWhatWasDurableWhenItHappened() throws {
        var log = machine()
        _ = try log.expectAppend(1)
        _ = try log.expectBatch(now: t0)
        _ = log.finishPass(now: t0)
        _ = try log.expectAppend(2)
        _ = try log.expectBatch(now: t0)
        let first = log.flushFailed(DiskError())
        _ = log.failureHandled()
        #expect(log.recover(from: first.failure) == 1)

        #expect(try log.expectAppend(2) == 1)
        _ = try log.expectBatch(now: t0)
        _ = log.finishPass(now: t0)
        #expect(try log.expectAppend(3) == 1)
        _ = try log.expectBatch(now: t0)
        let second = log.flushFailed(DiskError())
        #expect(second.failure.epoch == 2)
        _ = log.failureHandled()

        // Epoch 0 ended with 1 durable, epoch 1 with 2.
        #expect(log.waitUntilDurable(1, ticket: 0, waiter: "a").resumed == "a")
        #expect(epoch(log.waitUntilDurable(2, ticket: 0, waiter: "b").error) == 1)
        #expect(log.waitUntilDurable(2, ticket: 1, waiter: "c").resumed == "c")
        #expect(epoch(log.waitUntilDurable(3, ticket: 1, waiter: "d").error) == 2)
        // The current epoch: not durable, and the log is failed.
        #expect(epoch(log.waitUntilDurable(3, ticket: 2, waiter: "e").error) == 2)
    }

    @Test func whileFailedTheIntervalTimerStillSyncsAndItsFailureStartsANewEpoch() throws {
        var log = machine(.interval(milliseconds: 1000))
        _ = try log.expectAppend(1)
        _ = try log.expectBatch(now: t0)
        #expect(log.batchWritten(now: t0) == .complete(completion([])))
        _ = try log.expectAppend(2)
        _ = try log.expectBatch(now: t0 + .milliseconds(100))
        let first = log.flushFailed(DiskError())
        _ = log.failureHandled()
        // No writer came to recover; appends are refused...
        #expect(epoch(log.append(framed: framed(2), sequence: 2).refusal) == 1)
        // ...but what was written before is still synced on time.
        let waiting = log.nextFlush(now: t0 + .milliseconds(500))
        #expect(waiting == .wait(until: t0 + .milliseconds(1000)))
        let idleSync = try log.expectBatch(now: t0 + .milliseconds(1000))
        #expect(idleSync.pass == pass(nil, bytes: 0))
        #expect(log.batchWritten(now: t0 + .milliseconds(1000)) == .sync(firstSegment))
        let second = log.flushFailed(DiskError())
        #expect(second.failure.epoch == 2)
        #expect(log.stateName == "failed")
        #expect(epoch(log.failure) == 2)
        _ = log.failureHandled()
        // A sync that keeps failing is retried one interval later, not at once.
        #expect(log.nextFlush(now: t0 + .milliseconds(1001)) == .wait(until: t0 + .milliseconds(2000)))
        #expect(log.nextFlush(now: t0 + .milliseconds(1999)) == .wait(until: t0 + .milliseconds(2000)))
        _ = try log.expectBatch(now: t0 + .milliseconds(2000))
        #expect(log.batchWritten(now: t0 + .milliseconds(2000)) == .sync(firstSegment))
        let third = log.flushFailed(DiskError())
        #expect(third.failure.epoch == 3)
        _ = log.failureHandled()
        #expect(log.nextFlush(now: t0 + .milliseconds(2000)) == .wait(until: t0 + .milliseconds(3000)))

        #expect(log.recover(from: first.failure) == nil)
        #expect(log.recover(from: second.failure) == nil)
        #expect(log.recover(from: third.failure) == 1)
        #expect(log.stateName == "open")
    }

    @Test func aRecoveredLogSyncsOnTimeAgain() throws {
        var log = machine(.interval(milliseconds: 1000))
        _ = try log.expectAppend(1)
        _ = try log.expectBatch(now: t0)
        _ = log.batchWritten(now: t0)
        _ = try log.expectAppend(2)
        _ = try log.expectBatch(now: t0 + .milliseconds(100))
        let first = log.flushFailed(DiskError())
        _ = log.failureHandled()
        _ = try log.expectBatch(now: t0 + .milliseconds(1000))
        _ = log.batchWritten(now: t0 + .milliseconds(1000))
        let second = log.flushFailed(DiskError())
        _ = log.failureHandled()
        #expect(log.recover(from: first.failure) == nil)
        #expect(log.recover(from: second.failure) == 1)
        #expect(log.stateName == "open")
        // The back-off of the failed state is gone: the next write is written and synced at
        // once (its data has waited over an interval already).
        _ = try log.expectAppend(2)
        _ = try log.expectBatch(now: t0 + .milliseconds(1001))
        #expect(log.batchWritten(now: t0 + .milliseconds(1001)) == .sync(firstSegment))
    }

    @Test func whileFailedASuccessfulSyncLeavesTheLogFailed() throws {
        var log = machine(.interval(milliseconds: 1000))
        _ = try log.expectAppend(1)
        _ = try log.expectBatch(now: t0)
        _ = log.batchWritten(now: t0)
        _ = try log.expectAppend(2)
        _ = try log.expectBatch(now: t0)
        let failed = log.flushFailed(DiskError())
        _ = log.failureHandled()
        _ = try log.expectBatch(now: t0 + .milliseconds(1000))
        let (done, synced) = log.finishPass(now: t0 + .milliseconds(1000))
        #expect(synced)
        #expect(done == completion([]))
        #expect(log.stateName == "failed")
        #expect(log.failure?.epoch == failed.failure.epoch)
        #expect(log.syncCount == 1)
    }

    @Test func aSyncRequestWhileFailedIsServedAndThrowsTheFailure() throws {
        var log = machine()
        _ = try log.expectAppend(1)
        _ = try log.expectBatch(now: t0)
        #expect(log.batchWritten(now: t0) == .sync(firstSegment))
        let action = log.flushFailed(DiskError())
        _ = log.failureHandled()
        #expect(log.requestSync() == .wakeFlusher)
        #expect(log.syncRequestState.isPending)
        let batch = try log.expectBatch(now: t0)
        #expect(batch.pass == pass(nil, bytes: 0, servesSyncRequest: true))
        // The failed sync left the written bytes counted as unsynced: the pass syncs again.
        let written = log.batchWritten(now: t0)
        #expect(written == .sync(firstSegment))
        let done = log.batchSynced()
        #expect(done == completion([], wakeSyncRequesters: true))
        #expect(log.syncRequestState.failure?.epoch == action.failure.epoch)
    }

    @Test func aSyncRequestServedByAFailingPassIsWokenWithTheFailure() throws {
        var log = machine()
        _ = try log.expectAppend(1)
        #expect(log.requestSync() == .wakeFlusher)
        let batch = try log.expectBatch(now: t0)
        #expect(batch.pass.servesSyncRequest)
        let action = log.flushFailed(DiskError())
        #expect(log.syncRequestState.isPending)
        let after = log.failureHandled()
        #expect(after == LogMachine.AfterFailure(wakeSyncRequesters: true, close: false))
        #expect(log.syncRequestState.failure?.epoch == action.failure.epoch)
    }

    @Test func injectedFailuresHitNonEmptyBatchesOnly() throws {
        var log = machine(.none)
        log.injectWriteFailures(2, errno: ENOSPC)
        #expect(log.requestSync() == .wakeFlusher)
        let empty = try log.expectBatch(now: t0)
        #expect(empty.injectedErrno == nil)
        _ = log.finishPass(now: t0)
        for _ in 0..<2 {
            _ = try log.expectAppend(1)
            let batch = try log.expectBatch(now: t0)
            #expect(batch.injectedErrno == ENOSPC)
            let action = log.flushFailed(StorageIOError(operation: "write", path: batch.segment.path, code: ENOSPC))
            _ = log.failureHandled()
            #expect(log.recover(from: action.failure) == 0)
        }
        _ = try log.expectAppend(1)
        let clean = try log.expectBatch(now: t0)
        #expect(clean.injectedErrno == nil)
    }

    // MARK: rotation

    @Test func aFullSegmentIsRotatedAfterTheBatchThatFilledIt() throws {
        var log = machine(segmentLimit: header + 25)
        _ = try log.expectAppend(1)
        _ = try log.expectAppend(2)
        _ = try log.expectBatch(now: t0)
        #expect(log.finishPass(now: t0).completion == completion([]))

        _ = try log.expectAppend(3)
        #expect(log.waitUntilDurable(3, ticket: 0, waiter: "w3").isSuspended)
        _ = try log.expectBatch(now: t0)
        _ = try log.expectAppend(4)
        #expect(log.waitUntilDurable(4, ticket: 0, waiter: "w4").isSuspended)
        let (done, _) = log.finishPass(now: t0)
        #expect(done == completion(["w3"], next: .rotate(from: firstSegment, firstSequence: 4)))
        #expect(log.flusher == .rotating)
        // Appends go on during the rotation.
        _ = try log.expectAppend(5)

        let old = log.rotated(to: secondSegment)
        #expect(old == firstSegment.descriptor)
        #expect(log.segment == secondSegment)
        #expect(log.segmentLength == header)
        #expect(log.flusher == .idle)

        let batch = try log.expectBatch(now: t0)
        #expect(batch.segment == secondSegment)
        #expect(batch.bytes == framed(4) + framed(5))
        #expect(log.finishPass(now: t0).completion == completion(["w4"]))
        #expect(log.segmentLength == header + 20)
    }

    @Test func aFailedRotationFailsTheNextBatchAndIsRetriedAfterRecovery() throws {
        var log = machine(segmentLimit: header + 10)
        _ = try log.expectAppend(1)
        #expect(log.waitUntilDurable(1, ticket: 0, waiter: "w1").isSuspended)
        #expect(log.requestSync() == .wakeFlusher)
        _ = try log.expectBatch(now: t0)
        let (done, _) = log.finishPass(now: t0)
        #expect(done == completion(["w1"], wakeSyncRequesters: true, next: .rotate(from: firstSegment, firstSequence: 2)))

        // During the rotation: a record, and another sync request.
        _ = try log.expectAppend(2)
        #expect(log.waitUntilDurable(2, ticket: 0, waiter: "w2").isSuspended)
        #expect(log.requestSync() == .wakeFlusher)

        let action = log.flushFailed(DiskError())
        #expect(action.waiters == ["w2"])
        #expect(action.segment == firstSegment)
        #expect(action.length == header + 10)
        #expect(log.flusher == .failing(nil))
        #expect(log.failureHandled() == LogMachine.AfterFailure(wakeSyncRequesters: false, close: false))
        // The request made during the rotation is still to be served.
        #expect(log.syncRequestState.isPending)

        // While failed the segment, although full, is not rotated.
        _ = try log.expectBatch(now: t0)
        let (failedDone, _) = log.finishPass(now: t0)
        #expect(failedDone == completion([], wakeSyncRequesters: true, next: .idle))
        #expect(log.syncRequestState.failure?.epoch == 1)

        #expect(log.recover(from: action.failure) == 1)
        _ = try log.expectAppend(2)
        let batch = try log.expectBatch(now: t0)
        #expect(batch.segment == firstSegment)
        let (retried, _) = log.finishPass(now: t0)
        #expect(retried.next == .rotate(from: firstSegment, firstSequence: 3))
    }

    // MARK: stop and close

    @Test func stoppingWritesWhatIsPendingSyncsItWhateverThePolicyAndCloses() throws {
        var log = machine(.none)
        _ = try log.expectAppend(1)
        _ = try log.expectAppend(2)
        #expect(log.waitUntilDurable(2, ticket: 0, waiter: "w2").isSuspended)
        #expect(log.requestSync() == .wakeFlusher)

        #expect(log.stop() == .wakeFlusher)
        #expect(log.stateName == "stopping")
        #expect(log.isClosed == false)
        #expect(log.append(framed: framed(3), sequence: 3).refusal is StorageClosed)

        let batch = try log.expectBatch(now: t0)
        #expect(batch.bytes == framed(1) + framed(2))
        #expect(batch.pass == pass(2, bytes: 20, isFinal: true, servesSyncRequest: true))
        #expect(log.batchWritten(now: t0) == .sync(firstSegment))
        let done = log.batchSynced()
        #expect(done == completion(["w2"], wakeSyncRequesters: true, next: .close))
        #expect(log.flusher == .closing)
        #expect(log.isClosed == false)
        #expect(log.syncRequestState.isDone)

        let close = log.finishClosing()
        #expect(close.descriptor == firstSegment.descriptor)
        #expect(close.waiters.isEmpty)
        #expect(log.isClosed)
        #expect(log.stateName == "closed")
        #expect(log.flusher == nil)
        #expect(log.nextFlush(now: t0) == .exit)
        #expect(log.durableSequence == 2)
        #expect(log.syncCount == 1)
    }

    @Test func stoppingWhileABatchIsInFlightFinishesItThenMakesTheFinalPass() throws {
        var log = machine()
        _ = try log.expectAppend(1)
        #expect(log.waitUntilDurable(1, ticket: 0, waiter: "w1").isSuspended)
        let first = try log.expectBatch(now: t0)
        _ = try log.expectAppend(2)
        #expect(log.waitUntilDurable(2, ticket: 0, waiter: "w2").isSuspended)

        #expect(log.stop() == .wakeFlusher)
        #expect(log.flusher == .writing(first.pass))
        #expect(log.append(framed: framed(3), sequence: 3).refusal is StorageClosed)
        // The pass under way began before the stop: it is not the last.
        let (done, _) = log.finishPass(now: t0)
        #expect(done == completion(["w1"]))
        #expect(log.stateName == "stopping")

        let last = try log.expectBatch(now: t0)
        #expect(last.bytes == framed(2))
        #expect(last.pass.isFinal)
        let (lastDone, synced) = log.finishPass(now: t0)
        #expect(synced)
        #expect(lastDone == completion(["w2"], next: .close))
        #expect(log.finishClosing().waiters.isEmpty)
        #expect(log.isClosed)
    }

    @Test func stoppingDuringARotationLetsItFinish() throws {
        var log = machine(segmentLimit: header + 10)
        _ = try log.expectAppend(1)
        _ = try log.expectBatch(now: t0)
        #expect(log.finishPass(now: t0).completion.next == .rotate(from: firstSegment, firstSequence: 2))
        _ = try log.expectAppend(2)
        #expect(log.stop() == .wakeFlusher)
        #expect(log.flusher == .rotating)
        #expect(log.rotated(to: secondSegment) == firstSegment.descriptor)
        let last = try log.expectBatch(now: t0)
        #expect(last.segment == secondSegment)
        #expect(last.pass == pass(2, bytes: 10, isFinal: true))
        #expect(log.finishPass(now: t0).completion.next == .close)
        #expect(log.finishClosing().descriptor == secondSegment.descriptor)
    }

    @Test func closingWithWritersWaiting() throws {
        var log = machine()
        _ = try log.expectAppend(1)
        #expect(log.stop() == .wakeFlusher)
        // Waiting for a pending record while stopping: the final pass covers it.
        #expect(log.waitUntilDurable(1, ticket: 0, waiter: "pending").isSuspended)
        // A writer waiting for a record the final pass does not hold is failed at the close.
        #expect(log.waitUntilDurable(9, ticket: 0, waiter: "beyond").isSuspended)
        _ = try log.expectBatch(now: t0)
        let (done, _) = log.finishPass(now: t0)
        #expect(done == completion(["pending"], next: .close))
        let close = log.finishClosing()
        #expect(close.waiters == ["beyond"])
        // Once closed, a writer whose record is not durable is failed at once.
        let late = log.waitUntilDurable(9, ticket: 0, waiter: "late")
        #expect(late.failed == "late")
        #expect(late.error is StorageClosed)
        #expect(log.waitUntilDurable(1, ticket: 0, waiter: "done").resumed == "done")
    }

    @Test func aFailedFinalPassClosesTheLogWithTheFailure() throws {
        var log = machine()
        _ = try log.expectAppend(1)
        #expect(log.waitUntilDurable(1, ticket: 0, waiter: "w1").isSuspended)
        #expect(log.stop() == .wakeFlusher)
        let last = try log.expectBatch(now: t0)
        #expect(log.batchWritten(now: t0) == .sync(firstSegment))
        let action = log.flushFailed(DiskError())
        #expect(action.waiters == ["w1"])
        #expect(action.length == header)
        #expect(log.stateName == "stopping")
        #expect(log.flusher == .failing(last.pass))
        // Refused with the failure, not as closed.
        #expect(epoch(log.append(framed: framed(2), sequence: 2).refusal) == 1)

        let after = log.failureHandled()
        #expect(after == LogMachine.AfterFailure(wakeSyncRequesters: false, close: true))
        #expect(log.flusher == .closing)
        #expect(log.finishClosing().waiters.isEmpty)
        #expect(log.stateName == "closed")
        #expect(epoch(log.failure) == 1)

        #expect(epoch(log.waitUntilDurable(1, ticket: 0, waiter: "old").error) == 1)
        #expect(epoch(log.waitUntilDurable(1, ticket: 1, waiter: "current").error) == 1)
        #expect(log.requestSync() == .alreadyClosed)
        #expect(log.syncRequestState.failure?.epoch == 1)
        #expect(epoch(log.append(framed: framed(1), sequence: 1).refusal) == 1)

        // Recovering after the close clears the failure; the log stays closed.
        #expect(log.recover(from: action.failure) == 0)
        #expect(log.stateName == "closed")
        #expect(log.append(framed: framed(1), sequence: 1).refusal is StorageClosed)
        #expect(log.syncRequestState.isDone)
    }

    @Test func stoppingAFailedLogKeepsTheFailureUntilRecovered() throws {
        var log = machine(.interval(milliseconds: 1000))
        _ = try log.expectAppend(1)
        _ = try log.expectBatch(now: t0)
        #expect(log.batchWritten(now: t0) == .complete(completion([])))
        _ = try log.expectAppend(2)
        _ = try log.expectBatch(now: t0)
        let action = log.flushFailed(DiskError())
        _ = log.failureHandled()

        #expect(log.stop() == .wakeFlusher)
        #expect(log.stateName == "stopping")
        #expect(epoch(log.append(framed: framed(2), sequence: 2).refusal) == 1)
        #expect(epoch(log.waitUntilDurable(2, ticket: 1, waiter: "w").error) == 1)

        #expect(log.recover(from: action.failure) == 1)
        #expect(log.stateName == "stopping")
        #expect(log.appendedSequence == 1)
        #expect(log.append(framed: framed(2), sequence: 2).refusal is StorageClosed)

        // The final pass comes before the interval deadline and syncs what was written.
        let last = try log.expectBatch(now: t0 + .milliseconds(10))
        #expect(last.pass == pass(nil, bytes: 0, isFinal: true))
        #expect(log.batchWritten(now: t0 + .milliseconds(10)) == .sync(firstSegment))
        #expect(log.batchSynced() == completion([], next: .close))
        _ = log.finishClosing()
        #expect(log.isClosed)
        #expect(log.failure == nil)
    }

    @Test func closingTwice() throws {
        var log = machine()
        #expect(log.stop() == .wakeFlusher)
        #expect(log.stop() == .alreadyStopping)
        _ = try log.expectBatch(now: t0)
        // Nothing written and nothing unsynced: the final pass needs no sync.
        let written = log.batchWritten(now: t0)
        #expect(written == .complete(completion([], next: .close)))
        _ = log.finishClosing()
        #expect(log.stop() == .alreadyStopping)
        #expect(log.isClosed)
        #expect(log.syncCount == 0)
        #expect(log.recover(from: LogMachine.Failure(epoch: 0, underlying: DiskError())) == nil)
        #expect(log.requestSync() == .alreadyClosed)
        #expect(log.syncRequestState.isDone)
    }
}

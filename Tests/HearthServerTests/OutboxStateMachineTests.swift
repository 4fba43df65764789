import HearthCore
import NIOCore
import Testing

@testable import HearthServer

/// The outbox's state machine, driven event by event, with no task, lock or continuation,
/// through each of its states: streaming (with and without frames queued), writerWaiting,
/// overflowed, ended (with and without frames queued) and endedOverflowed; and every event in
/// each: enqueue, end, next, parkWriter, resynchronised.
@Suite("Outbox state machine")
struct OutboxStateMachineTests {
    typealias Machine = OutboxStateMachine
    typealias Queue = OutboxStateMachine.Queue
    typealias End = OutboxStateMachine.End

    // MARK: Streaming

    @Test func aNewOutboxRunsWithNothingQueued() {
        var machine = streaming()
        #expect(machine.state == .streaming(Queue()))
        #expect(machine.endReason == nil)
        #expect(machine.queuedBytes == 0)
        #expect(machine.next() == .wait)
        #expect(machine.state == .streaming(Queue()))
    }

    @Test func framesBelowTheLimitAreQueuedAndCounted() {
        var machine = streaming()
        #expect(machine.enqueue(frame("abc")) == .none)
        #expect(machine.enqueue(frame("defg")) == .none)
        #expect(machine.state == .streaming(Queue([frame("abc"), frame("defg")])))
        #expect(machine.queuedBytes == 7)
    }

    @Test func aFrameThatFillsTheOutboxExactlyIsQueued() {
        var machine = streaming("123456")
        #expect(machine.enqueue(frame("abcd")) == .none)
        #expect(machine.queuedBytes == testCapacity)
        #expect(machine.state == .streaming(Queue([frame("123456"), frame("abcd")])))
    }

    @Test func aFrameOverTheLimitDropsEverythingQueuedAndOwesAResync() {
        var machine = streaming("123", "456")
        #expect(machine.enqueue(frame("abcde")) == .overflowed)
        #expect(machine.state == .overflowed)
        #expect(machine.queuedBytes == 0)
        #expect(machine.endReason == nil)
        // The writer gets no queued frame (they were dropped) but the resync.
        #expect(machine.next() == .resync)
    }

    @Test func aFrameBiggerThanTheOutboxGoesThroughWhenNothingIsQueued() {
        var machine = streaming()
        let big = frame(String(repeating: "x", count: testCapacity + 5))
        #expect(machine.enqueue(big) == .none)
        #expect(machine.queuedBytes == testCapacity + 5)
        // Behind it, any frame is too much.
        #expect(machine.enqueue(frame("y")) == .overflowed)
        #expect(machine.state == .overflowed)
    }

    /// The limit looks at queued bytes, not frames: behind empty frames, a frame bigger than
    /// the whole outbox still fits (as it always did).
    @Test func emptyFramesDoNotCountAgainstTheLimit() {
        var machine = streaming("")
        let big = frame(String(repeating: "x", count: testCapacity + 5))
        #expect(machine.enqueue(big) == .none)
        #expect(machine.state == .streaming(Queue([frame(""), big])))
    }

    @Test func theWriterTakesEverythingQueuedAsOneBatch() {
        var machine = streaming("ab", "cd", "e")
        #expect(machine.next() == .write(frame("abcde")))
        #expect(machine.state == .streaming(Queue()))
        #expect(machine.queuedBytes == 0)
        #expect(machine.next() == .wait)
    }

    @Test func aSingleQueuedFrameIsWrittenAsItIs() {
        var machine = streaming("abc")
        #expect(machine.next() == .write(frame("abc")))
        #expect(machine.next() == .wait)
    }

    /// A batch being written to the client no longer counts: the outbox holds up to its
    /// capacity besides.
    @Test func aTakenBatchFreesTheOutbox() {
        var machine = streaming("123456789")
        #expect(machine.next() == .write(frame("123456789")))
        #expect(machine.enqueue(frame("abcdefghi")) == .none)
        #expect(machine.enqueue(frame("j")) == .none)
        #expect(machine.queuedBytes == testCapacity)
        #expect(machine.enqueue(frame("k")) == .overflowed)
    }

    @Test func theWriterParksOnlyWhenNothingIsQueued() {
        var idle = streaming()
        #expect(idle.parkWriter() == .park)
        #expect(idle.state == .writerWaiting(Queue()))

        var busy = streaming("abc")
        #expect(busy.parkWriter() == .retry)
        #expect(busy.state == .streaming(Queue([frame("abc")])))
        #expect(busy.next() == .write(frame("abc")))
    }

    @Test(arguments: endReasons)
    func anEndWhileFramesAreQueuedComesAfterThem(reason: Machine.EndReason) {
        var machine = streaming("ab", "cd")
        let final = finalFrame(for: reason)
        #expect(machine.end(reason, finalFrame: final) == .none)
        #expect(machine.state == .ended(Queue([frame("ab"), frame("cd")]), End(reason: reason, finalFrame: final)))
        #expect(machine.endReason == reason)
        #expect(machine.queuedBytes == 4)
        #expect(machine.parkWriter() == .retry)
        #expect(machine.next() == .write(frame("abcd")))
        #expect(machine.next() == .end(final))
        // Asked again, the answer stays the end.
        #expect(machine.next() == .end(final))
        #expect(machine.state == .ended(Queue(), End(reason: reason, finalFrame: final)))
    }

    /// The writer is busy writing a batch (not parked) when the stream ends: nothing to wake;
    /// it finds the end when it asks.
    @Test(arguments: endReasons)
    func anEndWhileABatchIsBeingWritten(reason: Machine.EndReason) {
        var machine = streaming("abc")
        #expect(machine.next() == .write(frame("abc")))
        #expect(machine.end(reason, finalFrame: finalFrame(for: reason)) == .none)
        #expect(machine.next() == .end(finalFrame(for: reason)))
    }

    // MARK: Writer waiting

    @Test func aFrameWakesTheParkedWriter() {
        var machine = writerWaiting()
        #expect(machine.enqueue(frame("abc")) == .wakeWriter)
        #expect(machine.state == .streaming(Queue([frame("abc")])))
        // Woken once: a second frame finds the writer no longer parked.
        #expect(machine.enqueue(frame("de")) == .none)
        #expect(machine.next() == .write(frame("abcde")))
    }

    @Test func aFrameBiggerThanTheOutboxWakesTheParkedWriterToo() {
        var machine = writerWaiting()
        let big = frame(String(repeating: "x", count: testCapacity + 1))
        #expect(machine.enqueue(big) == .wakeWriter)
        #expect(machine.next() == .write(big))
    }

    @Test func aParkedWriterHasNothingToTake() {
        var machine = writerWaiting()
        #expect(machine.next() == .wait)
        #expect(machine.state == .writerWaiting(Queue()))
        #expect(machine.queuedBytes == 0)
        #expect(machine.endReason == nil)
    }

    @Test(arguments: endReasons)
    func anEndWakesTheParkedWriter(reason: Machine.EndReason) {
        var machine = writerWaiting()
        let final = finalFrame(for: reason)
        #expect(machine.end(reason, finalFrame: final) == .wakeWriter)
        #expect(machine.state == .ended(Queue(), End(reason: reason, finalFrame: final)))
        #expect(machine.endReason == reason)
        #expect(machine.parkWriter() == .retry)
        #expect(machine.next() == .end(final))
    }

    /// One writer per outbox: a second one parking while the first is parked traps (the old
    /// outbox silently lost the first one's continuation).
    @Test func aSecondParkedWriterTraps() async {
        await #expect(processExitsWith: .failure) {
            var machine = OutboxStateMachine(capacityBytes: 10)
            _ = machine.parkWriter()
            _ = machine.parkWriter()
        }
    }

    // MARK: Overflowed

    @Test func framesAreDroppedUntilTheResync() {
        var machine = overflowed()
        #expect(machine.enqueue(frame("a")) == .dropped)
        #expect(machine.state == .overflowed)
        #expect(machine.queuedBytes == 0)
        #expect(machine.parkWriter() == .retry)
        #expect(machine.next() == .resync)
        // Until the fresh `put` is handed back, the writer is told to resync every time.
        #expect(machine.next() == .resync)
        #expect(machine.state == .overflowed)
    }

    @Test func theFreshPutIsQueuedAndFramesAreAcceptedAgain() {
        var machine = overflowed()
        #expect(machine.next() == .resync)
        #expect(machine.resynchronised(with: frame("PUT")) == .none)
        #expect(machine.state == .streaming(Queue([frame("PUT")])))
        #expect(machine.endReason == nil)
        // The put counts against the limit like any frame.
        #expect(machine.queuedBytes == 3)
        #expect(machine.enqueue(frame("1234567")) == .none)
        #expect(machine.enqueue(frame("8")) == .overflowed)
        #expect(machine.resynchronised(with: frame("PUT2")) == .none)
        #expect(machine.enqueue(frame("x")) == .none)
        #expect(machine.next() == .write(frame("PUT2x")))
    }

    @Test(arguments: endReasons)
    func anEndWhileOverflowedStillResyncsFirst(reason: Machine.EndReason) {
        var machine = overflowed()
        let final = finalFrame(for: reason)
        #expect(machine.end(reason, finalFrame: final) == .none)
        let end = End(reason: reason, finalFrame: final)
        #expect(machine.state == .endedOverflowed(end))
        #expect(machine.endReason == reason)
        #expect(machine.queuedBytes == 0)
        #expect(machine.enqueue(frame("a")) == .dropped)
        #expect(machine.parkWriter() == .retry)
        #expect(machine.next() == .resync)
        #expect(machine.next() == .resync)
        #expect(machine.resynchronised(with: frame("PUT")) == .none)
        #expect(machine.state == .ended(Queue([frame("PUT")]), end))
        #expect(machine.enqueue(frame("b")) == .dropped)
        #expect(machine.next() == .write(frame("PUT")))
        #expect(machine.next() == .end(final))
    }

    // MARK: Ended

    @Test(arguments: endReasons)
    func framesAfterTheEndAreDropped(reason: Machine.EndReason) {
        var machine = ended(reason: reason, queued: "ab")
        #expect(machine.enqueue(frame("cd")) == .dropped)
        #expect(machine.enqueue(keepAlive) == .dropped)
        #expect(machine.queuedBytes == 2)
        #expect(machine.next() == .write(frame("ab")))
        #expect(machine.enqueue(frame("ef")) == .dropped)
        #expect(machine.next() == .end(finalFrame(for: reason)))
    }

    @Test(arguments: endReasons)
    func theFirstEndIsKept(reason: Machine.EndReason) {
        let final = finalFrame(for: reason)
        let laterEnds: [(Machine.EndReason, ByteBuffer?)] = [(.client, nil), (.shutdown, nil), (.cancelled, frame("other"))]
        for (later, laterFrame) in laterEnds {
            var machine = ended(reason: reason, queued: "ab")
            #expect(machine.end(later, finalFrame: laterFrame) == .none)
            #expect(machine.state == .ended(Queue([frame("ab")]), End(reason: reason, finalFrame: final)))
            #expect(machine.endReason == reason)

            var overflowedFirst = overflowed()
            #expect(overflowedFirst.end(reason, finalFrame: final) == .none)
            #expect(overflowedFirst.end(later, finalFrame: laterFrame) == .none)
            #expect(overflowedFirst.state == .endedOverflowed(End(reason: reason, finalFrame: final)))

            var drained = ended(reason: reason)
            #expect(drained.next() == .end(final))
            #expect(drained.end(later, finalFrame: laterFrame) == .none)
            #expect(drained.next() == .end(final))
        }
    }

    @Test func anEndWithoutAFinalFrameEndsWithNothing() {
        var machine = ended(reason: .shutdown)
        #expect(machine.next() == .end(nil))
        #expect(machine.parkWriter() == .retry)
        #expect(machine.state == .ended(Queue(), End(reason: .shutdown, finalFrame: nil)))
    }

    // MARK: Resync while a batch is written

    /// The client is slow: while the writer writes one batch, more frames arrive than the
    /// outbox holds. They are dropped, the writer resyncs, and the stream carries on.
    @Test func anOverflowWhileABatchIsBeingWritten() {
        var machine = streaming("123456")
        #expect(machine.next() == .write(frame("123456")))
        // The write blocks; meanwhile the fan-out goes on.
        #expect(machine.enqueue(frame("abcdefgh")) == .none)
        #expect(machine.enqueue(frame("ijk")) == .overflowed)
        // Back from its write, the writer is told to resync; frames are dropped meanwhile.
        #expect(machine.next() == .resync)
        #expect(machine.enqueue(frame("late")) == .dropped)
        #expect(machine.resynchronised(with: frame("PUT")) == .none)
        #expect(machine.next() == .write(frame("PUT")))
        #expect(machine.next() == .wait)
        #expect(machine.parkWriter() == .park)
        #expect(machine.enqueue(frame("new")) == .wakeWriter)
        #expect(machine.next() == .write(frame("new")))
    }

    // MARK: Keep-alives

    /// Keep-alives are frames like any other: queued behind events and written in the same
    /// batch, waking a parked writer, counted against the limit, dropped while overflowed and
    /// after the end.
    @Test func keepAlivesAreFramesLikeAnyOther() {
        let size = keepAlive.readableBytes
        var machine = streaming(capacity: 2 * size)
        #expect(machine.parkWriter() == .park)
        #expect(machine.enqueue(keepAlive) == .wakeWriter)
        #expect(machine.enqueue(frame("event")) == .none)
        var expected = keepAlive
        expected.writeString("event")
        #expect(machine.next() == .write(expected))

        #expect(machine.enqueue(keepAlive) == .none)
        #expect(machine.enqueue(keepAlive) == .none)
        #expect(machine.queuedBytes == 2 * size)
        #expect(machine.enqueue(keepAlive) == .overflowed)
        #expect(machine.enqueue(keepAlive) == .dropped)
        #expect(machine.next() == .resync)
        #expect(machine.resynchronised(with: frame("PUT")) == .none)
        #expect(machine.end(.shutdown, finalFrame: nil) == .none)
        #expect(machine.enqueue(keepAlive) == .dropped)
        #expect(machine.next() == .write(frame("PUT")))
        #expect(machine.next() == .end(nil))
    }

    // MARK: Resynchronised outside an overflow

    /// Not reached (the writer hands back a fresh `put` only after `.resync`, and only the
    /// resync leaves the overflowed states), but pinned as the outbox always behaved: the put
    /// replaces whatever is queued, and wakes a parked writer.
    @Test func aResyncOutsideAnOverflowReplacesTheQueue() {
        var running = streaming("ab")
        #expect(running.resynchronised(with: frame("PUT")) == .none)
        #expect(running.state == .streaming(Queue([frame("PUT")])))

        var waiting = writerWaiting()
        #expect(waiting.resynchronised(with: frame("PUT")) == .wakeWriter)
        #expect(waiting.state == .streaming(Queue([frame("PUT")])))

        var done = ended(reason: .cancelled, queued: "ab")
        #expect(done.resynchronised(with: frame("PUT")) == .none)
        let end = End(reason: .cancelled, finalFrame: finalFrame(for: .cancelled))
        #expect(done.state == .ended(Queue([frame("PUT")]), end))
        #expect(done.next() == .write(frame("PUT")))
        #expect(done.next() == .end(finalFrame(for: .cancelled)))
    }

    // MARK: End reasons

    @Test func endReasonsAreNamedForTheMetrics() {
        #expect(endReasons.map(\.rawValue) == ["client", "shutdown", "cancelled", "auth_revoked"])
        #expect(Outbox.EndReason(rawValue: "auth_revoked") == .authRevoked)
    }
}

/// The shell over the machine: a lock, and a writer that parks and is woken.
@Suite("Outbox")
struct OutboxTests {
    @Test func framesResyncsAndTheEndReachTheWriterInOrder() async {
        let outbox = Outbox(capacityBytes: 10)
        #expect(outbox.push(frame("ab")))
        #expect(outbox.push(frame("cd")))
        #expect(describe(await outbox.next()) == "frame abcd")
        #expect(outbox.push(frame("123456789")))
        #expect(!outbox.push(frame("xy")))
        #expect(!outbox.push(frame("z")))
        #expect(describe(await outbox.next()) == "resync")
        outbox.resynchronised(with: frame("PUT"))
        #expect(outbox.push(frame("!")))
        outbox.end(.cancelled, with: frame("bye"))
        outbox.end(.shutdown)
        #expect(!outbox.push(frame("late")))
        #expect(outbox.endReason == .cancelled)
        #expect(describe(await outbox.next()) == "frame PUT!")
        #expect(describe(await outbox.next()) == "end bye")
    }

    @Test(arguments: ["push", "end"])
    func aParkedWriterIsWoken(by event: String) async throws {
        let outbox = Outbox(capacityBytes: 10)
        let writer = Task { await outbox.next() }
        var parked = false
        for _ in 0..<10_000 {
            parked = outbox.locked.withLock { $0.writer != nil }
            if parked { break }
            try await Task.sleep(for: .milliseconds(1))
        }
        try #require(parked)
        // Should the wake-up be lost, resume the writer after a while, and say so.
        let watchdog = Task { () -> Bool in
            do { try await Task.sleep(for: .seconds(10)) } catch { return false }
            let lost = outbox.locked.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.writer = nil }
                return state.writer
            }
            lost?.resume()
            return lost != nil
        }
        if event == "push" { outbox.push(frame("ab")) } else { outbox.end(.authRevoked, with: frame("bye")) }
        let item = await writer.value
        watchdog.cancel()
        #expect(await watchdog.value == false, "the writer was not woken")
        #expect(describe(item) == (event == "push" ? "frame ab" : "end bye"))
    }
}

// MARK: Helpers

/// Every reason a stream ends for.
private let endReasons: [OutboxStateMachine.EndReason] = [.client, .shutdown, .cancelled, .authRevoked]

/// The outbox size of most tests.
private let testCapacity = 10

private let keepAlive = ByteBuffer(bytes: StreamEvent.frame(event: "keep-alive", data: "null"))

private func frame(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

/// The final frame a stream ends with for `reason`, as the server sends it.
private func finalFrame(for reason: OutboxStateMachine.EndReason) -> ByteBuffer? {
    switch reason {
    case .client, .shutdown:
        return nil
    case .cancelled:
        return ByteBuffer(bytes: StreamEvent.frame(event: "cancel", data: "\"Permission denied\""))
    case .authRevoked:
        return ByteBuffer(bytes: StreamEvent.frame(event: "auth_revoked", data: "credential is no longer valid"))
    }
}

/// Running with `texts` queued (each must fit).
private func streaming(_ texts: String..., capacity: Int = testCapacity) -> OutboxStateMachine {
    var machine = OutboxStateMachine(capacityBytes: capacity)
    for text in texts { #expect(machine.enqueue(frame(text)) == .none) }
    return machine
}

/// Running, nothing queued, the writer parked.
private func writerWaiting() -> OutboxStateMachine {
    var machine = streaming()
    #expect(machine.parkWriter() == .park)
    return machine
}

/// Overflowed: a frame did not fit.
private func overflowed() -> OutboxStateMachine {
    var machine = streaming("123456")
    #expect(machine.enqueue(frame("abcde")) == .overflowed)
    return machine
}

/// Ended for `reason` (with its final frame) with `texts` still queued.
private func ended(reason: OutboxStateMachine.EndReason, queued texts: String...) -> OutboxStateMachine {
    var machine = OutboxStateMachine(capacityBytes: testCapacity)
    for text in texts { #expect(machine.enqueue(frame(text)) == .none) }
    #expect(machine.end(reason, finalFrame: finalFrame(for: reason)) == .none)
    return machine
}

/// An item in a few words, for comparing.
private func describe(_ item: Outbox.Item) -> String {
    switch item {
    case .frame(let frame): return "frame " + String(buffer: frame)
    case .resync: return "resync"
    case .end(let frame): return "end " + (frame.map { String(buffer: $0) } ?? "nil")
    }
}

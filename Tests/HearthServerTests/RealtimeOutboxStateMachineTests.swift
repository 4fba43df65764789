import HearthCore
import NIOCore
import Testing

@testable import HearthServer

/// The realtime outbox's state machine, event by event: replies are never dropped, pushes are
/// replaced by a resync marker at the first dropped push's place, the writer gets the queue
/// up to the marker, and the fresh data goes ahead of what was queued after it.
@Suite("Realtime outbox state machine")
struct RealtimeOutboxStateMachineTests {
    typealias Machine = RealtimeOutboxStateMachine

    func message(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    @Test func messagesGoOutInTheOrderTheyCame() {
        var machine = Machine(capacityBytes: 10)
        #expect(machine.enqueuePush(message("p1")) == .none)
        #expect(machine.enqueueReply(message("r1")) == .none)
        #expect(machine.enqueuePush(message("p2")) == .none)
        #expect(machine.next() == .write([message("p1"), message("r1"), message("p2")]))
        #expect(machine.next() == .wait)
        #expect(machine.bytes == 0 && machine.pushBytes == 0)
    }

    @Test func anOverflowDropsThePushesKeepsTheRepliesAndResyncsAtTheFirstDroppedPush() {
        var machine = Machine(capacityBytes: 10)
        #expect(machine.enqueueReply(message("r1")) == .none)
        #expect(machine.enqueuePush(message("push-1")) == .none)
        #expect(machine.enqueueReply(message("r2")) == .none)
        #expect(machine.enqueuePush(message("push-2")) == .overflowed)
        #expect(machine.phase == .overflowed)
        // Later pushes are dropped (the resync will carry their data); replies are kept.
        #expect(machine.enqueuePush(message("p3")) == .dropped)
        #expect(machine.enqueueReply(message("r3")) == .none)
        #expect(machine.next() == .write([message("r1")]))
        #expect(machine.next() == .resync)
        #expect(machine.phase == .resyncing)
        #expect(machine.enqueuePush(message("p4")) == .dropped, "still dropped while the writer fetches fresh data")
        #expect(machine.resynchronised(with: [message("fresh")]) == .none)
        #expect(machine.phase == .streaming)
        #expect(machine.next() == .write([message("fresh"), message("r2"), message("r3")]))
        #expect(machine.enqueuePush(message("p5")) == .none)
        #expect(machine.next() == .write([message("p5")]))
    }

    @Test func anOverflowWithNoQueuedPushResyncsAfterTheReplies() {
        var machine = Machine(capacityBytes: 4)
        #expect(machine.enqueuePush(message("bigger-than-the-outbox")) == .none, "alone, any push goes through")
        #expect(machine.next() == .write([message("bigger-than-the-outbox")]))
        #expect(machine.enqueueReply(message("r1")) == .none)
        #expect(machine.enqueuePush(message("abc")) == .none)
        #expect(machine.enqueuePush(message("de")) == .overflowed)
        #expect(machine.next() == .write([message("r1")]))
        #expect(machine.next() == .resync)
    }

    @Test func aClientThatNeverReadsIsEndedWhenRepliesPassTheHardLimit() {
        var machine = Machine(capacityBytes: 4, hardLimitBytes: 6)
        #expect(machine.enqueueReply(message("abc")) == .none)
        #expect(machine.enqueueReply(message("def")) == .none)
        #expect(machine.enqueueReply(message("g")) == .endedTooSlow)
        #expect(machine.endReason == .tooSlow)
        #expect(machine.enqueueReply(message("h")) == .dropped)
    }

    @Test func theWriterParksOnlyWhenNothingIsQueuedAndIsWokenByTheNextMessage() {
        var machine = Machine(capacityBytes: 10)
        #expect(machine.parkWriter() == .park)
        #expect(machine.writerWaiting)
        #expect(machine.enqueueReply(message("r")) == .wakeWriter)
        #expect(!machine.writerWaiting)
        #expect(machine.parkWriter() == .retry, "something is queued")
    }

    @Test func theEndComesAfterWhatIsQueuedWithoutAResync() {
        var machine = Machine(capacityBytes: 4)
        #expect(machine.enqueueReply(message("r1")) == .none)
        #expect(machine.enqueuePush(message("abc")) == .none)
        #expect(machine.enqueuePush(message("de")) == .overflowed)
        #expect(machine.end(.shutdown, finalMessage: message("bye")) == .none)
        #expect(machine.end(.client) == .none, "the first reason stays")
        #expect(machine.endReason == .shutdown)
        #expect(machine.enqueuePush(message("p")) == .dropped)
        #expect(machine.next() == .write([message("r1")]))
        #expect(machine.next() == .end(message("bye")), "a closing client gets no fresh data")
    }

    @Test func theHandOverMarkSplitsWhatGoesOutBeforeAndAfterAMove() {
        var machine = Machine(capacityBytes: 100)
        #expect(machine.enqueuePush(message("p1")) == .none)
        #expect(machine.enqueueReply(message("r1")) == .none)
        #expect(machine.enqueueHandOver() == .none)
        #expect(machine.enqueuePush(message("p2")) == .none)
        #expect(machine.next() == .write([message("p1"), message("r1")]), "the old transport's part stops at the mark")
        #expect(machine.next() == .handOver)
        #expect(machine.next() == .write([message("p2")]))
    }

    @Test func theHandOverMarkSurvivesAnOverflowAndIsSkippedAtTheEnd() {
        var machine = Machine(capacityBytes: 4)
        #expect(machine.enqueuePush(message("abc")) == .none)
        #expect(machine.enqueueHandOver() == .none)
        #expect(machine.enqueuePush(message("de")) == .overflowed)
        #expect(machine.next() == .resync)
        #expect(machine.next() == .handOver, "replies and the mark are never dropped")
        var ending = Machine(capacityBytes: 100)
        #expect(ending.enqueueReply(message("r1")) == .none)
        #expect(ending.enqueueHandOver() == .none)
        #expect(ending.end(.client) == .none)
        #expect(ending.enqueueHandOver() == .dropped)
        #expect(ending.next() == .write([message("r1")]))
        #expect(ending.next() == .end(nil), "an ending connection moves nowhere")
    }
}

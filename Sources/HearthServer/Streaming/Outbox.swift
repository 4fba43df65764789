import NIOCore
import Synchronization

/// A stream's bounded queue of SSE frames, between the fan-out (which never waits) and the
/// task writing to the client.
///
/// When a slow client lets it fill up, the queued frames are dropped and the stream is marked
/// for a resynchronisation: its writer then sends one fresh `put` of the current value instead
/// of the missed events.
///
/// The rules are ``OutboxStateMachine``'s; this shell only runs it under a lock and parks and
/// wakes the writer as its actions say.
final class Outbox: Sendable {
    /// What the writer should do next.
    enum Item: Sendable {
        case frame(ByteBuffer)
        /// Frames were dropped: send a fresh `put` of the whole value.
        case resync
        /// The stream is over; send this last frame (if any) and close.
        case end(ByteBuffer?)
    }

    /// Why a stream ended, for the metrics.
    typealias EndReason = OutboxStateMachine.EndReason

    /// The machine, and the writer's continuation while the machine is in `.writerWaiting`.
    struct Locked {
        var machine: OutboxStateMachine
        var writer: CheckedContinuation<Void, Never>?

        /// The parked writer, taken so it is resumed once (outside the lock).
        mutating func takeWriter() -> CheckedContinuation<Void, Never>? {
            assert(writer != nil, "the machine woke a writer that is not parked")
            defer { writer = nil }
            return writer
        }
    }

    let locked: Mutex<Locked>

    init(capacityBytes: Int) {
        self.locked = Mutex(Locked(machine: OutboxStateMachine(capacityBytes: capacityBytes), writer: nil))
    }

    /// Queues a frame; never blocks. Returns false if the frame was dropped: the outbox
    /// overflowed (now or before), or the stream has ended.
    @discardableResult
    func push(_ frame: ByteBuffer) -> Bool {
        let (action, writer) = locked.withLock { state -> (OutboxStateMachine.EnqueueAction, CheckedContinuation<Void, Never>?) in
            let action = state.machine.enqueue(frame)
            guard case .wakeWriter = action else { return (action, nil) }
            return (action, state.takeWriter())
        }
        writer?.resume()
        switch action {
        case .none, .wakeWriter: return true
        case .overflowed, .dropped: return false
        }
    }

    /// Ends the stream after the queued frames, with `finalFrame` last. The first reason given
    /// is the one kept.
    func end(_ reason: EndReason, with finalFrame: ByteBuffer? = nil) {
        let writer = locked.withLock { state -> CheckedContinuation<Void, Never>? in
            guard case .wakeWriter = state.machine.end(reason, finalFrame: finalFrame) else { return nil }
            return state.takeWriter()
        }
        writer?.resume()
    }

    /// Why the stream ended; nil while it runs.
    var endReason: EndReason? { locked.withLock { $0.machine.endReason } }

    /// After a resync `put` was fetched: queue it, and accept frames again.
    func resynchronised(with frame: ByteBuffer) {
        let writer = locked.withLock { state -> CheckedContinuation<Void, Never>? in
            guard case .wakeWriter = state.machine.resynchronised(with: frame) else { return nil }
            return state.takeWriter()
        }
        writer?.resume()
    }

    /// The next thing to write, waiting until there is one. Only one task may call this.
    func next() async -> Item {
        while true {
            switch locked.withLock({ $0.machine.next() }) {
            case .write(let frame): return .frame(frame)
            case .resync: return .resync
            case .end(let frame): return .end(frame)
            case .wait: break
            }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let parked = locked.withLock { state -> Bool in
                    guard case .park = state.machine.parkWriter() else { return false }
                    state.writer = continuation
                    return true
                }
                if !parked { continuation.resume() }
            }
        }
    }
}

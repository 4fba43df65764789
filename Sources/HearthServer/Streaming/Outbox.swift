import NIOCore
import Synchronization

/// A stream's bounded queue of SSE frames, between the fan-out (which never waits) and the
/// task writing to the client.
///
/// When a slow client lets it fill up, the queued frames are dropped and the stream is marked
/// for a resynchronisation: its writer then sends one fresh `put` of the current value instead
/// of the missed events.
final class Outbox: Sendable {
    /// What the writer should do next.
    enum Item {
        case frame(ByteBuffer)
        /// Frames were dropped: send a fresh `put` of the whole value.
        case resync
        /// The stream is over; send this last frame (if any) and close.
        case end(ByteBuffer?)
    }

    /// Why a stream ended, for the metrics.
    enum EndReason: String, Sendable {
        /// The client closed the connection (or a write to it failed).
        case client
        /// The server is shutting down.
        case shutdown
        /// The rules stopped allowing the read: `cancel` was sent.
        case cancelled
        /// The caller's credential expired: `auth_revoked` was sent.
        case authRevoked = "auth_revoked"
    }

    struct State {
        var frames: [ByteBuffer] = []
        var endReason: EndReason?
        var bytes = 0
        var overflowed = false
        var ended = false
        var finalFrame: ByteBuffer?
        var waiter: CheckedContinuation<Void, Never>?

        /// The waiting writer, if any, taken so it is resumed once (outside the lock).
        mutating func takeWaiter() -> CheckedContinuation<Void, Never>? {
            defer { waiter = nil }
            return waiter
        }
    }

    let capacityBytes: Int
    let state = Mutex(State())

    init(capacityBytes: Int) {
        self.capacityBytes = capacityBytes
    }

    /// Queues a frame; never blocks. Returns false if the outbox overflowed (now or before).
    @discardableResult
    func push(_ frame: ByteBuffer) -> Bool {
        let (accepted, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            guard !state.ended else { return (false, nil) }
            if state.overflowed { return (false, nil) }
            // A frame bigger than the whole outbox still goes through when nothing is queued.
            if state.bytes > 0 && state.bytes + frame.readableBytes > capacityBytes {
                state.frames = []
                state.bytes = 0
                state.overflowed = true
            } else {
                state.frames.append(frame)
                state.bytes += frame.readableBytes
            }
            return (!state.overflowed, state.takeWaiter())
        }
        waiter?.resume()
        return accepted
    }

    /// Ends the stream after the queued frames, with `finalFrame` last. The first reason given
    /// is the one kept.
    func end(_ reason: EndReason, with finalFrame: ByteBuffer? = nil) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.ended else { return nil }
            state.ended = true
            state.endReason = reason
            state.finalFrame = finalFrame
            return state.takeWaiter()
        }
        waiter?.resume()
    }

    /// Why the stream ended; nil while it runs.
    var endReason: EndReason? { state.withLock { $0.endReason } }

    /// After a resync `put` was queued: accept frames again.
    func resynchronised(with frame: ByteBuffer) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.overflowed = false
            state.frames = [frame]
            state.bytes = frame.readableBytes
            return state.takeWaiter()
        }
        waiter?.resume()
    }

    /// The next thing to write, waiting until there is one.
    func next() async -> Item {
        while true {
            let item = state.withLock { state -> Item? in
                if var frame = state.frames.first {
                    // Everything queued goes out in one write: a busy stream costs one
                    // system call per batch, not per event.
                    if state.frames.count > 1 {
                        frame.reserveCapacity(state.bytes)
                        for next in state.frames.dropFirst() { frame.writeImmutableBuffer(next) }
                    }
                    state.frames.removeAll(keepingCapacity: true)
                    state.bytes = 0
                    return .frame(frame)
                }
                if state.overflowed { return .resync }
                if state.ended { return .end(state.finalFrame) }
                return nil
            }
            if let item { return item }
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Bool in
                    if !state.frames.isEmpty || state.overflowed || state.ended { return true }
                    state.waiter = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        }
    }
}

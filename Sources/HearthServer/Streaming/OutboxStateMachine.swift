import NIOCore

/// The state of a stream's outbox (see ``Outbox``), as a state machine with no locks, tasks
/// or continuations: each event is a `mutating func` that returns what the caller must do.
///
/// Three parties drive it. The fan-out (which never waits) enqueues frames; the stream's one
/// writer task asks for the next thing to write, parks when there is nothing, and after a
/// resync hands back the fresh `put`; anyone may end the stream (the client going away,
/// shutdown, a rules change, an expired credential).
///
/// ```
///                     enqueue (fits), next -> .write(batch)
///                               +-------+
///                               |       v
///       +-------------------> streaming ---- enqueue (does not fit) ----> overflowed <--+
///       | enqueue,             |      ^                                     |    |      | next -> .resync
///       | resynchronised       |      +------ resynchronised(put) ----------+    +------+ (enqueue: dropped)
///       | -> .wakeWriter       | parkWriter (nothing queued) -> .park
///       |                      v
///       +--------------- writerWaiting
///
///   streaming -----end-----------------------> ended(queued frames, end)
///   writerWaiting --end -> .wakeWriter -------> ended(nothing queued, end)
///   overflowed -----end-----------------------> endedOverflowed(end)     next -> .resync
///   endedOverflowed --resynchronised(put)-----> ended([put], end)
///   ended: next -> .write(batch) while frames are queued, then .end(finalFrame), every time asked
///   ended, endedOverflowed: enqueue -> .dropped; a second end is ignored (the first reason stays)
/// ```
///
/// The machine never holds the writer's continuation: it is in ``State/writerWaiting`` exactly
/// while the writer is parked, and the events that leave that state answer `.wakeWriter`,
/// telling the caller to resume it.
struct OutboxStateMachine {
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

    /// Frames waiting for the writer, and their size.
    struct Queue: Equatable, Sendable {
        private(set) var frames: [ByteBuffer]
        /// The readable bytes of `frames`: what counts against the outbox's capacity.
        private(set) var bytes: Int

        init(_ frames: [ByteBuffer] = []) {
            self.frames = frames
            self.bytes = frames.reduce(0) { $0 + $1.readableBytes }
        }

        var isEmpty: Bool { frames.isEmpty }

        /// Whether `frame` may join the queue: when nothing (no byte) is queued, even a frame
        /// bigger than the whole outbox goes through; otherwise the queue must stay within
        /// `capacityBytes`.
        func admits(_ frame: ByteBuffer, capacityBytes: Int) -> Bool {
            bytes == 0 || bytes + frame.readableBytes <= capacityBytes
        }

        mutating func append(_ frame: ByteBuffer) {
            frames.append(frame)
            bytes += frame.readableBytes
        }

        /// Everything queued as one buffer, leaving the queue empty (its storage kept for the
        /// next frames): a busy stream costs one write per batch, not per event.
        mutating func takeBatch() -> ByteBuffer {
            precondition(!frames.isEmpty, "no frame to take")
            var batch = frames[0]
            if frames.count > 1 {
                batch.reserveCapacity(bytes)
                for next in frames.dropFirst() { batch.writeImmutableBuffer(next) }
            }
            frames.removeAll(keepingCapacity: true)
            bytes = 0
            return batch
        }
    }

    /// How a stream ended.
    struct End: Equatable, Sendable {
        var reason: EndReason
        /// Written after the queued frames, before closing (`cancel`, `auth_revoked`).
        var finalFrame: ByteBuffer?
    }

    enum State: Equatable, Sendable {
        /// Running, the writer not parked (busy writing, or about to ask): frames may be queued.
        case streaming(Queue)
        /// Running, nothing queued, and the writer is parked until an event wakes it. (The
        /// empty queue is kept for its storage.)
        case writerWaiting(Queue)
        /// Running, but a frame did not fit: the queued frames were dropped with it, frames
        /// are dropped until the writer has fetched a fresh `put` (``resynchronised(with:)``).
        case overflowed
        /// Ended: the writer still gets the frames queued before, then the final frame.
        case ended(Queue, End)
        /// Ended while overflowed: the writer still resynchronises, then gets the fresh `put`
        /// and the final frame.
        case endedOverflowed(End)
        /// Only during a mutation, so that the queue in the payload is not copied on write.
        case modifying
    }

    /// The most bytes of frames queued at once (a first frame excepted, see
    /// ``Queue/admits(_:capacityBytes:)``).
    let capacityBytes: Int
    private(set) var state: State

    init(capacityBytes: Int) {
        self.capacityBytes = capacityBytes
        self.state = .streaming(Queue())
    }

    /// Why the stream ended; nil while it runs.
    var endReason: EndReason? {
        switch state {
        case .ended(_, let end), .endedOverflowed(let end):
            return end.reason
        case .streaming, .writerWaiting, .overflowed:
            return nil
        case .modifying:
            preconditionFailure("Invalid state \(state)")
        }
    }

    /// The bytes queued now.
    var queuedBytes: Int {
        switch state {
        case .streaming(let queue), .writerWaiting(let queue), .ended(let queue, _):
            return queue.bytes
        case .overflowed, .endedOverflowed:
            return 0
        case .modifying:
            preconditionFailure("Invalid state \(state)")
        }
    }

    // MARK: Fan-out

    enum EnqueueAction: Equatable, Sendable {
        /// The frame was queued; the writer will find it when it next asks.
        case none
        /// The frame was queued and the writer was parked: wake it.
        case wakeWriter
        /// The frame did not fit: it and every queued frame were dropped, and the writer will
        /// be told to resync.
        case overflowed
        /// The frame was dropped: the outbox overflowed before, or the stream has ended.
        case dropped
    }

    /// A frame to queue (an event, a keep-alive, a resumed change).
    mutating func enqueue(_ frame: ByteBuffer) -> EnqueueAction {
        switch state {
        case .streaming(var queue):
            guard queue.admits(frame, capacityBytes: capacityBytes) else {
                state = .overflowed
                return .overflowed
            }
            state = .modifying
            queue.append(frame)
            state = .streaming(queue)
            return .none
        case .writerWaiting(var queue):
            // Nothing is queued, so any frame fits.
            state = .modifying
            queue.append(frame)
            state = .streaming(queue)
            return .wakeWriter
        case .overflowed, .ended, .endedOverflowed:
            return .dropped
        case .modifying:
            preconditionFailure("Invalid state \(state)")
        }
    }

    // MARK: Ending

    enum EndAction: Equatable, Sendable {
        /// Nothing to do: the writer will see the end when it next asks (or the stream had
        /// ended already, and this end is ignored).
        case none
        /// The writer was parked: wake it.
        case wakeWriter
    }

    /// Ends the stream after the queued frames, with `finalFrame` last. The first end is the
    /// one kept: a later reason and final frame are ignored.
    mutating func end(_ reason: EndReason, finalFrame: ByteBuffer?) -> EndAction {
        let end = End(reason: reason, finalFrame: finalFrame)
        switch state {
        case .streaming(let queue):
            state = .ended(queue, end)
            return .none
        case .writerWaiting(let queue):
            state = .ended(queue, end)
            return .wakeWriter
        case .overflowed:
            state = .endedOverflowed(end)
            return .none
        case .ended, .endedOverflowed:
            return .none
        case .modifying:
            preconditionFailure("Invalid state \(state)")
        }
    }

    // MARK: The writer

    enum NextAction: Equatable, Sendable {
        /// Write these frames (everything that was queued, in one buffer).
        case write(ByteBuffer)
        /// Frames were dropped: fetch a fresh `put` of the whole value and hand it to
        /// ``resynchronised(with:)``.
        case resync
        /// The stream is over: write this last frame (if any) and close.
        case end(ByteBuffer?)
        /// Nothing yet: park (``parkWriter()``) and ask again when woken.
        case wait
    }

    /// The writer asks what to write next. Queued frames come first, even after the end.
    mutating func next() -> NextAction {
        switch state {
        case .streaming(var queue):
            guard !queue.isEmpty else { return .wait }
            state = .modifying
            let batch = queue.takeBatch()
            state = .streaming(queue)
            return .write(batch)
        case .writerWaiting:
            // Only a second writer could ask while the first is parked; it would trap in
            // `parkWriter`.
            return .wait
        case .overflowed, .endedOverflowed:
            return .resync
        case .ended(var queue, let end):
            guard !queue.isEmpty else { return .end(end.finalFrame) }
            state = .modifying
            let batch = queue.takeBatch()
            state = .ended(queue, end)
            return .write(batch)
        case .modifying:
            preconditionFailure("Invalid state \(state)")
        }
    }

    enum ParkAction: Equatable, Sendable {
        /// Suspend the writer: an event will answer `.wakeWriter`.
        case park
        /// Something happened since `next()` answered `.wait`: ask again at once.
        case retry
    }

    /// The writer, told to `.wait`, is about to suspend (its caller checks again under the
    /// same lock in which it stores the continuation, so no wake-up is lost).
    mutating func parkWriter() -> ParkAction {
        switch state {
        case .streaming(let queue):
            guard queue.isEmpty else { return .retry }
            state = .writerWaiting(queue)
            return .park
        case .writerWaiting:
            preconditionFailure("Two writers wait on one outbox")
        case .overflowed, .ended, .endedOverflowed:
            return .retry
        case .modifying:
            preconditionFailure("Invalid state \(state)")
        }
    }

    enum ResynchronisedAction: Equatable, Sendable {
        case none
        /// The writer was parked: wake it.
        case wakeWriter
    }

    /// The writer fetched the fresh `put` after `.resync`: queue it, and accept frames again.
    ///
    /// The queue is replaced by `frame` in every state, as the outbox always did; but only the
    /// overflowed states are reached, since the writer resynchronises only after `.resync` and
    /// nothing but this event leaves those states (an end keeps the resync owed).
    mutating func resynchronised(with frame: ByteBuffer) -> ResynchronisedAction {
        switch state {
        case .overflowed, .streaming:
            state = .streaming(Queue([frame]))
            return .none
        case .writerWaiting:
            state = .streaming(Queue([frame]))
            return .wakeWriter
        case .ended(_, let end), .endedOverflowed(let end):
            state = .ended(Queue([frame]), end)
            return .none
        case .modifying:
            preconditionFailure("Invalid state \(state)")
        }
    }
}

import NIOCore

/// The state of a realtime connection's outbox (see ``RealtimeOutbox``): one ordered queue of
/// the messages the server sends, as a state machine with no locks, tasks or continuations.
///
/// Two kinds of message share the queue, because their order matters to the SDKs (the data a
/// write changed must arrive before the write's `ok`): **replies** to the client's requests,
/// which are never dropped, and **pushes** of data to its listens, which may be.
///
/// When the pushes queued for a slow client pass ``capacityBytes``, they are all dropped, and a
/// resync marker takes the place of the first of them: when the writer reaches it, it sends
/// the current value of every listen instead (which already holds what the dropped pushes
/// carried), so nothing the client sees is missing or out of order, and memory stays bounded.
/// Until then further pushes are dropped. Replies alone past ``hardLimitBytes`` (a client that
/// sends requests and never reads) end the connection.
///
/// ```
///   streaming --push overflows--> overflowed (marker queued) --next reaches marker-->
///   resyncing (writer fetching fresh data) --resynchronised(messages)--> streaming
///   any --end--> ended: the writer sends what is queued (no resync), then the final message
/// ```
struct RealtimeOutboxStateMachine {
    enum Entry {
        case message(ByteBuffer, isPush: Bool)
        /// Where the dropped pushes were: send every listen's current data here.
        case resync
        /// Where a long-polling connection moves to its WebSocket: what is before goes out by
        /// long poll, what is after on the WebSocket.
        case handOver
    }

    enum Phase: Equatable {
        case streaming
        /// Pushes are dropped until the writer has resynchronised.
        case overflowed
        /// The writer took the marker and is fetching fresh data; pushes are still dropped.
        case resyncing
    }

    /// Why a connection ended, for the metrics and the close.
    enum EndReason: String, Sendable {
        case client
        case shutdown
        /// Replies queued past the hard limit: the client does not read.
        case tooSlow = "too_slow"
        case protocolError = "protocol_error"
    }

    let capacityBytes: Int
    let hardLimitBytes: Int
    private(set) var queue: [Entry] = []
    private(set) var pushBytes = 0
    private(set) var bytes = 0
    private(set) var phase = Phase.streaming
    private(set) var endReason: EndReason?
    private(set) var finalMessage: ByteBuffer?
    private(set) var writerWaiting = false

    init(capacityBytes: Int, hardLimitBytes: Int? = nil) {
        self.capacityBytes = capacityBytes
        self.hardLimitBytes = hardLimitBytes ?? capacityBytes * 2
    }

    enum EnqueueAction: Equatable {
        case none
        case wakeWriter
        /// The push was dropped (an overflow is being resolved, or the connection ended).
        case dropped
        /// This push overflowed the outbox: pushes were dropped and a resync is queued.
        case overflowed
        /// Replies passed the hard limit: the connection is ending (wake the writer).
        case endedTooSlow
    }

    mutating func enqueuePush(_ message: ByteBuffer) -> EnqueueAction {
        guard endReason == nil, phase == .streaming else { return .dropped }
        if pushBytes > 0, pushBytes + message.readableBytes > capacityBytes {
            overflow()
            return wake(or: .overflowed)
        }
        append(message, isPush: true)
        return wake(or: .none)
    }

    mutating func enqueueReply(_ message: ByteBuffer) -> EnqueueAction {
        guard endReason == nil else { return .dropped }
        append(message, isPush: false)
        if bytes > hardLimitBytes {
            endReason = .tooSlow
            return wake(or: .endedTooSlow)
        }
        return wake(or: .none)
    }

    /// Marks where the connection changes transports (see ``Entry/handOver``); never dropped.
    mutating func enqueueHandOver() -> EnqueueAction {
        guard endReason == nil else { return .dropped }
        queue.append(.handOver)
        return wake(or: .none)
    }

    private mutating func append(_ message: ByteBuffer, isPush: Bool) {
        queue.append(.message(message, isPush: isPush))
        bytes += message.readableBytes
        if isPush { pushBytes += message.readableBytes }
    }

    /// Drops every queued push; the marker takes the first one's place (or goes last).
    private mutating func overflow() {
        var kept: [Entry] = []
        kept.reserveCapacity(queue.count)
        var marked = false
        for entry in queue {
            if case .message(_, isPush: true) = entry {
                if !marked {
                    kept.append(.resync)
                    marked = true
                }
            } else {
                kept.append(entry)
            }
        }
        if !marked { kept.append(.resync) }
        queue = kept
        bytes -= pushBytes
        pushBytes = 0
        phase = .overflowed
    }

    /// The parked writer must be woken when something arrives; `action` otherwise.
    private mutating func wake(or action: EnqueueAction) -> EnqueueAction {
        guard writerWaiting else { return action }
        writerWaiting = false
        return action == .none ? .wakeWriter : action
    }

    enum NextAction: Equatable {
        /// Send these messages, in order.
        case write([ByteBuffer])
        /// Fetch every listen's current data and hand it to ``resynchronised(with:)``.
        case resync
        /// Send what came before on the old transport; the rest goes on the new one.
        case handOver
        /// Send the final message (if any) and close.
        case end(ByteBuffer?)
        /// Nothing to do: park.
        case wait
    }

    mutating func next() -> NextAction {
        if let first = queue.first, case .resync = first {
            queue.removeFirst()
            // At the end, the client is going: no point in fresh data.
            guard endReason == nil else { return next() }
            phase = .resyncing
            return .resync
        }
        if let first = queue.first, case .handOver = first {
            queue.removeFirst()
            // At the end, the connection is not moving anywhere.
            guard endReason == nil else { return next() }
            return .handOver
        }
        if !queue.isEmpty {
            var messages: [ByteBuffer] = []
            var taken = 0
            for entry in queue {
                guard case .message(let message, let isPush) = entry else { break }
                messages.append(message)
                bytes -= message.readableBytes
                if isPush { pushBytes -= message.readableBytes }
                taken += 1
            }
            queue.removeFirst(taken)
            return .write(messages)
        }
        return endReason == nil ? .wait : .end(finalMessage)
    }

    enum ParkAction: Equatable {
        case park
        /// Something arrived meanwhile: ask `next()` again.
        case retry
    }

    mutating func parkWriter() -> ParkAction {
        guard queue.isEmpty, endReason == nil else { return .retry }
        writerWaiting = true
        return .park
    }

    /// The fresh data of every listen, sent before anything queued since the marker.
    mutating func resynchronised(with messages: [ByteBuffer]) -> EnqueueAction {
        guard phase == .resyncing else { return .none }
        phase = .streaming
        guard endReason == nil else { return .none }
        queue.insert(contentsOf: messages.map { .message($0, isPush: true) }, at: 0)
        for message in messages {
            bytes += message.readableBytes
            pushBytes += message.readableBytes
        }
        return wake(or: .none)
    }

    /// Ends after what is queued, with `finalMessage` last; the first reason stays.
    mutating func end(_ reason: EndReason, finalMessage: ByteBuffer? = nil) -> EnqueueAction {
        guard endReason == nil else { return .none }
        endReason = reason
        self.finalMessage = finalMessage
        return wake(or: .none)
    }
}

import NIOCore
import Synchronization

/// A realtime connection's bounded, ordered queue of outgoing messages, between those who
/// produce them (the connection's request handling, which queues replies, and the namespace's
/// fan-out, which queues pushes and never waits) and the one task writing to the socket.
///
/// The rules are ``RealtimeOutboxStateMachine``'s; this shell runs it under a lock and parks
/// and wakes the writer.
final class RealtimeOutbox: Sendable {
    typealias EndReason = RealtimeOutboxStateMachine.EndReason

    struct Locked {
        var machine: RealtimeOutboxStateMachine
        var writer: CheckedContinuation<Void, Never>?

        /// The writer, if the machine no longer counts it as parked (so it must be resumed).
        mutating func writerToWake() -> CheckedContinuation<Void, Never>? {
            guard writer != nil, !machine.writerWaiting else { return nil }
            defer { writer = nil }
            return writer
        }
    }

    let locked: Mutex<Locked>

    init(capacityBytes: Int) {
        locked = Mutex(Locked(machine: RealtimeOutboxStateMachine(capacityBytes: capacityBytes)))
    }

    /// Queues a push of data; never blocks. Returns false if it was dropped (a resync will
    /// carry it, or the connection is ending).
    @discardableResult
    func push(_ message: ByteBuffer) -> Bool {
        let (action, writer) = locked.withLock { state in
            let action = state.machine.enqueuePush(message)
            return (action, state.writerToWake())
        }
        writer?.resume()
        return action == .none || action == .wakeWriter
    }

    /// Queues a reply; never dropped while the connection lives.
    func reply(_ message: ByteBuffer) {
        let writer = locked.withLock { state in
            _ = state.machine.enqueueReply(message)
            return state.writerToWake()
        }
        writer?.resume()
    }

    /// Marks where a long-polling connection moves to its WebSocket.
    func handOver() {
        let writer = locked.withLock { state in
            _ = state.machine.enqueueHandOver()
            return state.writerToWake()
        }
        writer?.resume()
    }

    /// Ends the connection after what is queued, with `finalMessage` last.
    func end(_ reason: EndReason, with finalMessage: ByteBuffer? = nil) {
        let writer = locked.withLock { state in
            _ = state.machine.end(reason, finalMessage: finalMessage)
            return state.writerToWake()
        }
        writer?.resume()
    }

    var endReason: EndReason? { locked.withLock { $0.machine.endReason } }

    /// After a resync: the fresh data of every listen goes first.
    func resynchronised(with messages: [ByteBuffer]) {
        let writer = locked.withLock { state in
            _ = state.machine.resynchronised(with: messages)
            return state.writerToWake()
        }
        writer?.resume()
    }

    /// The next thing to do, waiting until there is one. Only one task may call this.
    func next() async -> RealtimeOutboxStateMachine.NextAction {
        while true {
            let action = locked.withLock { $0.machine.next() }
            guard action == .wait else { return action }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let parked = locked.withLock { state -> Bool in
                    guard state.machine.parkWriter() == .park else { return false }
                    state.writer = continuation
                    return true
                }
                if !parked { continuation.resume() }
            }
        }
    }
}

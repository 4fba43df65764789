import Synchronization

/// A long-polling connection's move to a WebSocket (the browser SDK's upgrade).
///
/// The client opens a WebSocket naming its session (`s=`); the server answers it with the
/// switch-ack `a` and its pings with pongs. Once the client has two pongs it sends `n` by
/// long poll and from then on sends only on the WebSocket. The server, reading `n`, marks
/// the outbox: what is queued before the mark goes out by long poll, followed by the server's
/// own `n`; what comes after goes out on the WebSocket (the client holds it until it has read
/// the `n`). Requests arriving on the WebSocket wait until every long-polled request before
/// the client's `n` has been read.
///
/// ```
///   attached --client's n read--> inputMoved --writer reaches the mark--> moved
///   attached, inputMoved --the WebSocket closes, or the connection ends--> abandoned
/// ```
final class RealtimeUpgrade: Sendable {
    enum Phase: Equatable {
        case attached
        case inputMoved
        case moved
        case abandoned
    }

    struct State {
        var phase = Phase.attached
        /// Waiting for the move (true) or its abandonment (false).
        var waiters: [CheckedContinuation<Bool, Never>] = []
        var webSocketEnded = false
        var endWaiter: CheckedContinuation<Void, Never>?
    }
    let state = Mutex(State())

    var phase: Phase { state.withLock { $0.phase } }

    /// The client's `n` was read: true if this is the first (the outbox is to be marked).
    func moveInput() -> Bool {
        state.withLock { state in
            guard state.phase == .attached else { return false }
            state.phase = .inputMoved
            return true
        }
    }

    /// The writer reached the mark: the WebSocket takes over. False if it was abandoned.
    func move() -> Bool {
        let (moved, waiters) = state.withLock { state -> (Bool, [CheckedContinuation<Bool, Never>]) in
            guard state.phase == .inputMoved else { return (false, []) }
            state.phase = .moved
            defer { state.waiters = [] }
            return (true, state.waiters)
        }
        for waiter in waiters { waiter.resume(returning: true) }
        return moved
    }

    /// Gives up the move unless it happened. Returns true if it was given up (or already was).
    @discardableResult
    func abandon() -> Bool {
        let (abandoned, waiters) = state.withLock { state -> (Bool, [CheckedContinuation<Bool, Never>]) in
            guard state.phase != .moved else { return (false, []) }
            state.phase = .abandoned
            defer { state.waiters = [] }
            return (true, state.waiters)
        }
        for waiter in waiters { waiter.resume(returning: false) }
        return abandoned
    }

    /// Waits for the move: true once the WebSocket has taken over, false if it never will.
    func waitUntilMoved() async -> Bool {
        await withCheckedContinuation { continuation in
            let answer = state.withLock { state -> Bool? in
                switch state.phase {
                case .moved: return true
                case .abandoned: return false
                case .attached, .inputMoved:
                    state.waiters.append(continuation)
                    return nil
                }
            }
            if let answer { continuation.resume(returning: answer) }
        }
    }

    /// The WebSocket's handler has finished.
    func webSocketFinished() {
        let waiter = state.withLock { state in
            state.webSocketEnded = true
            defer { state.endWaiter = nil }
            return state.endWaiter
        }
        waiter?.resume()
    }

    /// Returns once the WebSocket's handler has finished.
    func waitUntilWebSocketFinished() async {
        await withCheckedContinuation { continuation in
            let ended = state.withLock { state in
                if !state.webSocketEnded { state.endWaiter = continuation }
                return state.webSocketEnded
            }
            if ended { continuation.resume() }
        }
    }
}

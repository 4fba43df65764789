import HearthCore
import NIOCore
import Synchronization

/// The long-polling side of a realtime connection (`/.lp`): how a browser whose WebSocket once
/// failed talks to the server, with plain GET requests answered by JavaScript.
///
/// The client keeps one poll outstanding and opens a second when it has messages to send
/// (carried as segments in the URL). The server holds one poll at a time: a newer poll
/// answers the held one, and a held poll is answered when there is something to send, or
/// empty after ``holdDuration`` (the client polls again at once). Responses that carry
/// messages are numbered from 1 (the start response is 0) so that the client can put them
/// back in order; empty responses carry no number.
///
/// The connection's writer hands this transport one batch at a time (``deliver(_:)`` returns
/// once a poll has taken it), so a client that stops polling leaves the rest in the outbox,
/// which bounds it as for a slow WebSocket. A client that neither polls nor holds a poll for
/// ``idleTimeout`` has gone: ``watch()`` returns and the connection ends.
final class LongPollTransport: Sendable {
    /// The poll id and password the client sends with every poll.
    let id: String
    let password: String
    let holdDuration: Duration
    let idleTimeout: Duration
    /// The client's messages, joined from segments, in order.
    let inbox: AsyncStream<[UInt8]>
    let inboxInput: AsyncStream<[UInt8]>.Continuation

    struct State {
        var segments: LongPollSegments
        /// The poll being held, and its token (so that a timeout answers only that poll).
        var held: (token: Int, continuation: CheckedContinuation<[UInt8], Never>)?
        var lastToken = 0
        /// Messages no poll has taken yet, and whether the session closes after them.
        var ready: [ByteBuffer] = []
        var closing = false
        /// The writer, waiting for a poll to take ``ready``.
        var writer: CheckedContinuation<Void, Never>?
        /// The number of the next response that carries messages.
        var nextNumber = 1
        /// When a poll last arrived or was answered.
        var lastActivity = ContinuousClock.now
        /// The session is over: polls are answered `close`.
        var finished = false
        /// Waiting for the end (``waitUntilFinished(timeout:)``), by token.
        var finishWaiters: [Int: CheckedContinuation<Bool, Never>] = [:]
        /// Bytes of messages joined and not yet taken by the reader, and the polls waiting for
        /// them to fall under ``inboxLimit``.
        var inboxBytes = 0
        var roomWaiters: [CheckedContinuation<Void, Never>] = []
    }
    let state: Mutex<State>

    /// Past this many bytes of messages waiting for the reader, a poll's answer waits: the
    /// client, which keeps at most two polls outstanding, stops sending (as TCP would stop a
    /// WebSocket client).
    let inboxLimit: Int

    init(maxMessageBytes: Int, holdDuration: Duration, idleTimeout: Duration) {
        inboxLimit = maxMessageBytes + (1 << 20)
        id = LongPollTransport.randomToken(words: 2)
        password = LongPollTransport.randomToken(words: 2)
        self.holdDuration = holdDuration
        self.idleTimeout = idleTimeout
        state = Mutex(State(segments: LongPollSegments(maxMessageBytes: maxMessageBytes)))
        (inbox, inboxInput) = AsyncStream<[UInt8]>.makeStream()
    }

    /// Whether `password` is this session's (compared in constant time).
    func accepts(password candidate: String) -> Bool {
        let expected = Array(password.utf8), given = Array(candidate.utf8)
        guard expected.count == given.count else { return false }
        return zip(expected, given).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    // MARK: Polls

    /// Takes the messages a poll carries. Throws (and the session ends) when they are not
    /// segments of messages the server accepts.
    func receive(_ segments: [LongPollSegments.Segment]) throws(DataError) {
        guard !segments.isEmpty else { return }
        do {
            try state.withLock { state throws(DataError) in
                // Yielded under the lock, so that messages from concurrent polls stay in order.
                for message in try state.segments.receive(segments) {
                    state.inboxBytes += message.count
                    inboxInput.yield(message)
                }
            }
        } catch {
            finish()
            throw error
        }
    }

    /// The reader took a message of `count` bytes.
    func taken(_ count: Int) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.inboxBytes -= count
            guard state.inboxBytes <= inboxLimit else { return [] }
            defer { state.roomWaiters = [] }
            return state.roomWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the messages waiting for the reader are under ``inboxLimit`` (or the
    /// session is over).
    func waitForRoom() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let room = state.withLock { state in
                let room = state.finished || state.inboxBytes <= inboxLimit
                if !room { state.roomWaiters.append(continuation) }
                return room
            }
            if room { continuation.resume() }
        }
    }

    /// Answers a poll: at once with what is ready, or when something is, or empty after
    /// ``holdDuration``. The poll held before it is answered with nothing.
    func poll() async -> [UInt8] {
        let token = state.withLock { state in
            state.lastToken += 1
            return state.lastToken
        }
        let timeout = Mutex<Task<Void, Never>?>(nil)
        defer { timeout.withLock { $0?.cancel() } }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<[UInt8], Never>) in
                let (previous, answer, writer) = state.withLock { state in
                    state.lastActivity = .now
                    let previous = state.held?.continuation
                    state.held = nil
                    if state.finished { return (previous, Optional(LongPollTransport.closing(state)), Optional<CheckedContinuation<Void, Never>>.none) }
                    if !state.ready.isEmpty || state.closing {
                        let writer = state.writer
                        state.writer = nil
                        return (previous, LongPollTransport.take(&state), writer)
                    }
                    state.held = (token, continuation)
                    return (previous, nil, nil)
                }
                previous?.resume(returning: [])
                writer?.resume()
                if let answer {
                    continuation.resume(returning: answer)
                    finishIfClosed()
                } else {
                    timeout.withLock { task in
                        task = Task { [holdDuration] in
                            try? await Task.sleep(for: holdDuration)
                            self.answerHeld(token: token, with: [])
                        }
                    }
                }
            }
        } onCancel: {
            answerHeld(token: token, with: [])
        }
    }

    /// Answers the poll `token` with `script` if it is still held.
    func answerHeld(token: Int, with script: [UInt8]) {
        let continuation = state.withLock { state -> CheckedContinuation<[UInt8], Never>? in
            guard let held = state.held, held.token == token else { return nil }
            state.held = nil
            state.lastActivity = .now
            return held.continuation
        }
        continuation?.resume(returning: script)
    }

    /// The script for what is ready, taken out of `state`.
    static func take(_ state: inout State) -> [UInt8] {
        defer {
            state.ready = []
            if state.closing { state.finished = true }
        }
        guard !state.ready.isEmpty else { return closing(state) }
        let number = state.nextNumber
        state.nextNumber += 1
        return LongPollScript.messages(number: number, state.ready.map { $0.readableBytesView }, closing: state.closing)
    }

    /// `close` after the last numbered response: a response still on its way (two polls may
    /// be outstanding) is handled before the client closes.
    static func closing(_ state: State) -> [UInt8] {
        LongPollScript.close(after: state.nextNumber - 1)
    }

    // MARK: The writer's side

    /// Hands `messages` to the held poll, or to the next one; returns once a poll has them
    /// (or the session is over).
    func deliver(_ messages: [ByteBuffer]) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            enum Outcome {
                case answer(CheckedContinuation<[UInt8], Never>, [UInt8])
                case parked
                case finished
            }
            let outcome = state.withLock { state -> Outcome in
                guard !state.finished else { return .finished }
                state.ready += messages
                guard let held = state.held else {
                    state.writer = continuation
                    return .parked
                }
                state.held = nil
                state.lastActivity = .now
                return .answer(held.continuation, LongPollTransport.take(&state))
            }
            switch outcome {
            case .answer(let poll, let script):
                poll.resume(returning: script)
                continuation.resume()
                finishIfClosed()
            case .finished:
                continuation.resume()
            case .parked:
                break
            }
        }
    }

    /// Hands the held poll, or the next one, `messages` and `close`, without waiting: the
    /// session's last response.
    func close(after messages: [ByteBuffer]) {
        let held = state.withLock { state -> (CheckedContinuation<[UInt8], Never>, [UInt8])? in
            guard !state.finished else { return nil }
            state.ready += messages
            state.closing = true
            guard let held = state.held else { return nil }
            state.held = nil
            return (held.continuation, LongPollTransport.take(&state))
        }
        if let (poll, script) = held {
            poll.resume(returning: script)
            finishIfClosed()
        }
    }

    /// After a response that closed the session: the rest of ``finish()``.
    func finishIfClosed() {
        if state.withLock({ $0.finished }) { finish() }
    }

    /// Ends the session: the reader's messages end, the held poll is answered with what is
    /// ready (or `close`), later polls with `close`, and a waiting writer goes on.
    func finish() {
        let (held, writer, waiters) = state.withLock { state in
            defer {
                state.held = nil
                state.writer = nil
                state.finishWaiters = [:]
                state.finished = true
            }
            var held: (CheckedContinuation<[UInt8], Never>, [UInt8])?
            if let poll = state.held?.continuation {
                let hasMessages = !state.ready.isEmpty || state.closing
                held = (poll, hasMessages ? LongPollTransport.take(&state) : LongPollTransport.closing(state))
            }
            defer { state.roomWaiters = [] }
            return (held, state.writer, (Array(state.finishWaiters.values), state.roomWaiters))
        }
        inboxInput.finish()
        if let (poll, script) = held { poll.resume(returning: script) }
        writer?.resume()
        for waiter in waiters.0 { waiter.resume(returning: true) }
        for waiter in waiters.1 { waiter.resume() }
    }

    /// Waits until the session is finished (true), or `timeout` has passed (false).
    func waitUntilFinished(timeout: Duration) async -> Bool {
        let token = state.withLock { state in
            state.lastToken += 1
            return state.lastToken
        }
        let timer = Mutex<Task<Void, Never>?>(nil)
        defer { timer.withLock { $0?.cancel() } }
        return await withCheckedContinuation { continuation in
            let finished = state.withLock { state in
                if !state.finished { state.finishWaiters[token] = continuation }
                return state.finished
            }
            guard !finished else { return continuation.resume(returning: true) }
            timer.withLock { task in
                task = Task {
                    try? await Task.sleep(for: timeout)
                    let waiter = self.state.withLock { $0.finishWaiters.removeValue(forKey: token) }
                    waiter?.resume(returning: false)
                }
            }
        }
    }

    /// Returns when the client has gone: no poll held and none for ``idleTimeout``. Returns at
    /// once when cancelled. (A session finished otherwise ends its reader instead.)
    func watch() async {
        let step = min(idleTimeout / 4, .seconds(5))
        while !Task.isCancelled {
            try? await Task.sleep(for: step)
            let gone = state.withLock { state in
                state.held == nil && ContinuousClock.now - state.lastActivity > idleTimeout
            }
            if gone { return }
        }
    }

    static func randomToken(words: Int) -> String {
        (0..<words).map { _ in
            let word = String(UInt64.random(in: 0...UInt64.max), radix: 36)
            return String(repeating: "0", count: 13 - word.count) + word
        }.joined()
    }
}

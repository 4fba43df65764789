import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Why reading an event stream failed.
public struct SSEStreamError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// The response to a stream request, as far as its head.
public struct SSEResponseHead: Sendable {
    /// The HTTP status code.
    public let status: Int
    let headers: HTTPHeaders

    /// The first value of a header (names are case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first(name: name)
    }
}

/// A realtime stream from a live test server, read as it arrives.
///
/// HummingbirdTesting's clients hand back a response only once its body has ended, and a
/// stream's body does not end; this client is one HTTP/1.1 connection (SwiftNIO) that sends a
/// `GET` and feeds the body, chunk by chunk, through an ``SSEParser``. Every wait has a
/// timeout, after which it throws ``SSEStreamError`` with what the stream received so far.
///
/// Open one with ``HearthTestClient/withStream(_:headers:timeout:_:)`` (which closes it), or
/// ``HearthTestClient/openStream(_:headers:timeout:)`` and ``close()``.
public final class SSEStream: Sendable {
    /// How long a wait lasts by default: generous, for a busy machine; a stream that works
    /// answers in milliseconds.
    public static let defaultTimeout: Duration = .seconds(10)

    let channel: any Channel
    let inbox: SSEInbox

    init(channel: any Channel, inbox: SSEInbox) {
        self.channel = channel
        self.inbox = inbox
    }

    /// Connects to `host:port`, sends `GET uri` with `headers` (plus `Host`, and
    /// `Accept: text/event-stream` unless `headers` names an `Accept`), and waits for the
    /// response's head.
    public static func open(
        host: String = "localhost", port: Int, uri: String, headers: [String: String] = [:],
        timeout: Duration = SSEStream.defaultTimeout
    ) async throws -> SSEStream {
        var fields = HTTPHeaders()
        fields.add(name: "Host", value: host)
        if !headers.keys.contains(where: { $0.lowercased() == "accept" }) {
            fields.add(name: "Accept", value: "text/event-stream")
        }
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { fields.add(name: name, value: value) }
        let request = HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: fields)
        let inbox = SSEInbox()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(SSEClientHandler(request: request, inbox: inbox))
                }
            }
            .connect(host: host, port: port)
            .get()
        let stream = SSEStream(channel: channel, inbox: inbox)
        do {
            _ = try await stream.head(timeout: timeout)
        } catch {
            await stream.close()
            throw error
        }
        return stream
    }

    /// The response's head (status and headers), once it has arrived.
    public func head(timeout: Duration = SSEStream.defaultTimeout) async throws -> SSEResponseHead {
        try await inbox.wait(for: "the response head", timeout: timeout) { state -> SSEResponseHead? in
            if let head = state.head { return head }
            if state.finished { throw SSEStreamError("the connection closed before a response: \(state.failure ?? "no error")") }
            return nil
        }
    }

    /// The response's status code.
    public var status: Int {
        get async throws { try await head().status }
    }

    /// The next event not read yet, waiting up to `timeout` for it. `keep-alive` events are
    /// skipped unless `keepAlives` is true. Throws if the stream ends first.
    public func next(timeout: Duration = SSEStream.defaultTimeout, keepAlives: Bool = false) async throws -> SSEEvent {
        try await inbox.wait(for: "an event", timeout: timeout) { state -> SSEEvent? in
            while state.cursor < state.events.count {
                let event = state.events[state.cursor]
                state.cursor += 1
                if keepAlives || event.event != "keep-alive" { return event }
            }
            if state.finished { throw SSEStreamError("the stream ended instead") }
            return nil
        }
    }

    /// Waits up to `timeout` for the server to end the response (or close the connection);
    /// returns the events that came and were not read yet, keep-alives included.
    @discardableResult
    public func end(timeout: Duration = SSEStream.defaultTimeout) async throws -> [SSEEvent] {
        try await inbox.wait(for: "the end of the stream", timeout: timeout) { state -> [SSEEvent]? in
            guard state.finished else { return nil }
            let unread = Array(state.events[state.cursor...])
            state.cursor = state.events.count
            return unread
        }
    }

    /// Every event received so far, read or not, keep-alives included.
    public var received: [SSEEvent] { inbox.state.withLock { $0.events } }

    /// The body received so far, as text: the events' frames, or a refused stream's JSON error.
    public var body: String { inbox.state.withLock { String(decoding: $0.body, as: UTF8.self) } }

    /// Whether the response has ended (or the connection closed).
    public var hasEnded: Bool { inbox.state.withLock { $0.finished } }

    /// Closes the connection (the server then ends the stream). Safe to call more than once.
    public func close() async {
        try? await channel.close().get()
    }
}

extension HearthTestClient {
    /// Opens a stream of `uri` on this live test server (``withTestServer(configuration:live:_:)``
    /// with `live: true`) and waits for the response's head; close it with ``SSEStream/close()``.
    public func openStream(
        _ uri: String, headers: [String: String] = [:], timeout: Duration = SSEStream.defaultTimeout
    ) async throws -> SSEStream {
        guard let port else { throw SSEStreamError("streams need a live test server: withTestServer(live: true)") }
        return try await SSEStream.open(port: port, uri: uri, headers: headers, timeout: timeout)
    }

    /// Runs `body` with a stream of `uri` on this live test server, then closes it.
    @discardableResult
    public func withStream<Value: Sendable>(
        _ uri: String, headers: [String: String] = [:], timeout: Duration = SSEStream.defaultTimeout,
        _ body: (SSEStream) async throws -> Value
    ) async throws -> Value {
        let stream = try await openStream(uri, headers: headers, timeout: timeout)
        do {
            let value = try await body(stream)
            await stream.close()
            return value
        } catch {
            await stream.close()
            throw error
        }
    }
}

/// What a stream's connection has received, shared between its channel handler (on the
/// event loop) and the test's task, with the test's waits.
final class SSEInbox: Sendable {
    struct State: Sendable {
        var head: SSEResponseHead?
        var parser = SSEParser()
        var body: [UInt8] = []
        var events: [SSEEvent] = []
        /// How many events have been read.
        var cursor = 0
        var finished = false
        var failure: String?
        /// Counts every change, so that a wait never misses one between looking and parking.
        var version: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter: UInt64 = 0
    }

    let state = Mutex(State())

    // MARK: The channel's side

    func received(head: HTTPResponseHead) {
        update { $0.head = SSEResponseHead(status: Int(head.status.code), headers: head.headers) }
    }

    func received(body: ByteBuffer) {
        update { state in
            state.body += body.readableBytesView
            // Only an event stream is parsed; a refused stream's JSON error stays in `body`.
            if state.head?.header("Content-Type")?.hasPrefix("text/event-stream") ?? false {
                state.events += state.parser.feed(body.readableBytesView)
            }
        }
    }

    func finished(failure: String?) {
        update { state in
            guard !state.finished else { return }
            state.finished = true
            state.failure = failure
        }
    }

    /// Changes the state and wakes every wait.
    private func update(_ change: (inout State) -> Void) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            change(&state)
            state.version += 1
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    // MARK: The test's side

    /// Waits until `check` answers (it runs under the lock, again after every change), for at
    /// most `timeout`; throws what `check` throws, or a timeout naming `what`.
    func wait<Value: Sendable>(
        for what: String, timeout: Duration, _ check: (inout State) throws -> Value?
    ) async throws -> Value {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (value, version) = try state.withLock { state throws -> (Value?, UInt64) in
                (try check(&state), state.version)
            }
            if let value { return value }
            guard ContinuousClock.now < deadline else {
                let (received, failure) = state.withLock { state in
                    (state.events.suffix(5).map(\.description), state.failure)
                }
                throw SSEStreamError(
                    "waited \(timeout) for \(what) in vain; the last events received:\n\(received.joined(separator: "\n"))"
                        + (failure.map { "\nconnection error: \($0)" } ?? ""))
            }
            await waitForChange(after: version, until: deadline)
        }
    }

    /// Returns after the next change following `version`, or at `deadline`.
    private func waitForChange(after version: UInt64, until deadline: ContinuousClock.Instant) async {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        let timer = Task { [self] in
            try? await Task.sleep(until: deadline, clock: .continuous)
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            // Parked only if nothing changed since `version` and the deadline is ahead: a timer
            // that fired before this finds no waiter, and then the deadline has passed.
            let parked = state.withLock { state -> Bool in
                guard state.version == version, ContinuousClock.now < deadline else { return false }
                state.waiters[id] = continuation
                return true
            }
            if !parked { continuation.resume() }
        }
        timer.cancel()
    }
}

/// Sends the stream's request when the connection opens, then hands the response to the inbox.
final class SSEClientHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let request: HTTPRequestHead
    let inbox: SSEInbox

    init(request: HTTPRequestHead, inbox: SSEInbox) {
        self.request = request
        self.inbox = inbox
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(request)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            inbox.received(head: head)
        case .body(let buffer):
            inbox.received(body: buffer)
        case .end:
            inbox.finished(failure: nil)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        inbox.finished(failure: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        inbox.finished(failure: "\(error)")
        context.close(promise: nil)
    }
}

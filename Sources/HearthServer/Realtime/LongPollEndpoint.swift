import HTTPTypes
import HearthCore
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// `/.lp`: Firebase's long-polling transport, which the browser SDK uses where a WebSocket
/// failed before (it remembers that in the browser's storage) or a proxy blocks WebSockets.
/// Every answer is JavaScript (``LongPollScript``), loaded by the SDK as a script.
///
/// - `start=t&cb=<n>[&ns=…][&ls=…]` opens a connection: the answer defines the callbacks,
///   gives the poll id and password, and carries the hello.
/// - `id=…&pw=…&ser=…[&seg<i>=…&ts<i>=…&d<i>=…]` is a poll, carrying the client's messages in
///   segments (``LongPollSegments``) and answered with the server's (``LongPollTransport``).
/// - `dframe=t&id=…&pw=…` is held open by a hidden iframe while the page lives: when it
///   closes, the client has gone.
///
/// The same connection may then move to a WebSocket (`/.ws?s=<session>`, see
/// ``RealtimeUpgrade``).
struct LongPollEndpoint: Sendable {
    let service: DatabaseService
    let callers: CallerResolver
    let configuration: ServerConfiguration
    let connections: OpenRealtimeConnections
    let logger: Logger
    let sessions = LongPollSessions()

    static let path = "/.lp"

    /// How long a poll is held when there is nothing to send: the keep-alive interval, at most
    /// 20 s (the SDK polls again after 25 s whatever happens). The disconnect frame gets a
    /// space as often.
    var holdDuration: Duration { .milliseconds(Int(min(configuration.streams.keepAliveSeconds, 20) * 1000)) }
    /// How long a client may go without a poll before it is taken to have gone: three hold
    /// times (a browser slows the timers of a hidden tab, and so its polls, to one a second
    /// or less).
    var idleTimeout: Duration { holdDuration * 3 }

    func respond(to request: Request, context: HearthRequestContext) async throws -> Response {
        guard request.method == .get else { throw ServiceError.methodNotAllowed(request.method.rawValue) }
        let pairs = try RequestOptions.pairs(request.uri.query ?? "")
        let parameters = Dictionary(pairs.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
        if parameters["start"] == "t" { return try start(request, parameters: parameters, context: context) }
        guard let id = parameters["id"], let password = parameters["pw"], let transport = sessions.transport(id),
            transport.accepts(password: password)
        else {
            // A session this server does not hold (it ended, or the server restarted): the
            // client closes the transport and connects again.
            return LongPollEndpoint.script(LongPollScript.close(after: nil))
        }
        if parameters["dframe"] == "t" { return disconnectFrame(request, transport) }
        do {
            try transport.receive(try LongPollSegments.segments(in: parameters))
        } catch {
            transport.finish()
            throw error
        }
        service.metrics.realtime.polls.increment()
        let answer = await withGracefulShutdownHandler {
            await transport.poll()
        } onGracefulShutdown: {
            transport.finish()
        }
        return LongPollEndpoint.script(answer)
    }

    /// Opens a connection: its session, its transport and the task that serves it.
    func start(_ request: Request, parameters: [String: String], context: HearthRequestContext) throws -> Response {
        // `cb` names the page's callbacks in the script: digits only.
        guard let text = parameters["cb"], (1...15).contains(text.count), text.allSatisfy(\.isASCII), let callback = Int(text),
            callback >= 0
        else {
            throw ServiceError(.invalidRequest, "Bad request: a long-poll start needs cb, a callback number.")
        }
        let namespace = RealtimeEndpoint.namespace(parameters, authority: request.head.authority, configuration: configuration)
        guard NamespaceRegistry.isValidName(namespace) else {
            return LongPollEndpoint.script(LongPollScript.start(
                callback: callback, id: "", password: "", hello: RealtimeEndpoint.invalidNamespace(namespace)))
        }
        let client = configuration.clientAddresses.client(of: request, context: context)
        let limit = configuration.limits.maxStreamsPerClient
        guard let lease = service.streams.leaseStream(for: client.limitKey, limit: limit) else {
            service.metrics.countRefusal(.streamsPerClient)
            throw ServiceError(
                .tooManyRequests(retryAfterSeconds: nil),
                "Too many streams: this client already has \(limit) open, the server's limit per client.")
        }
        let transport = LongPollTransport(
            maxMessageBytes: configuration.limits.maxRealtimeMessageBytes,
            holdDuration: holdDuration, idleTimeout: idleTimeout)
        let session = RealtimeSession(
            id: SessionID(connections.nextNumber()), namespace: namespace, outboxBytes: configuration.streams.outboxBytes)
        let connection = RealtimeConnection(
            service: service, callers: callers, session: session, limits: configuration.limits, lease: lease,
            clientKey: client.limitKey, longPoll: transport, logger: logger)
        if let previous = parameters["ls"] { connections.remove(previous)?.close() }
        connections.add(connection, as: session.wireID)
        sessions.add(transport)
        let sessions = self.sessions, connections = self.connections
        Task {
            await connection.run(longPoll: transport)
            connections.remove(session.wireID, ifItIs: connection)
            sessions.remove(transport)
        }
        let host = request.head.authority ?? "\(configuration.host):\(configuration.port)"
        let hello = WireEncoding.hello(time: Database.systemMilliseconds(), host: host, session: session.wireID)
        return LongPollEndpoint.script(
            LongPollScript.start(callback: callback, id: transport.id, password: transport.password, hello: hello))
    }

    /// Held open while the page lives; its end is the client leaving. A space every
    /// ``holdDuration`` keeps proxies from closing it for being idle (and
    /// finds a connection that died without closing).
    func disconnectFrame(_ request: Request, _ transport: LongPollTransport) -> Response {
        var headers = ResponseFactory.baseHeaders(contentType: "text/html; charset=utf-8")
        headers[.cacheControl] = "no-cache, no-store"
        let keepAlive = holdDuration
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            do {
                try await request.body.consumeWithInboundCloseHandler { _ in
                    try await withGracefulShutdownHandler {
                        while await !transport.waitUntilFinished(timeout: keepAlive) {
                            try await writer.write(ByteBuffer(string: " "))
                        }
                    } onGracefulShutdown: {
                        transport.finish()
                    }
                } onInboundClosed: {
                    transport.finish()
                }
            } catch {
                transport.finish()
            }
            try? await writer.finish(nil)
        })
    }

    static func script(_ bytes: [UInt8]) -> Response {
        var headers = ResponseFactory.baseHeaders(contentType: "application/javascript; charset=utf-8")
        headers[.cacheControl] = "no-cache, no-store"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// The long-polling sessions open now, by poll id.
final class LongPollSessions: Sendable {
    let transports = Mutex<[String: LongPollTransport]>([:])

    func add(_ transport: LongPollTransport) {
        transports.withLock { $0[transport.id] = transport }
    }

    func transport(_ id: String) -> LongPollTransport? {
        transports.withLock { $0[id] }
    }

    func remove(_ transport: LongPollTransport) {
        transports.withLock { transports in
            if transports[transport.id] === transport { transports[transport.id] = nil }
        }
    }
}

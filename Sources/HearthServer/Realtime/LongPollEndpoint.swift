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
/// - `dframe=t&id=…&pw=…` is the page of the hidden iframe the SDK adds: when the page goes
///   away, it sends `disconn=t&id=…&pw=…` (a beacon, else a request), and the session ends.
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
    /// times, and at least 10 s (a browser slows the timers of a hidden tab, and so its polls,
    /// to one a second or less).
    var idleTimeout: Duration { max(holdDuration * 3, .seconds(10)) }

    func respond(to request: Request, context: HearthRequestContext) async throws -> Response {
        let pairs = try RequestOptions.pairs(request.uri.query ?? "")
        let parameters = Dictionary(pairs.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
        // The leaving page's beacon is a POST; everything else is a script or a page load.
        guard request.method == .get || (request.method == .post && parameters["disconn"] == "t") else {
            throw ServiceError.methodNotAllowed(request.method.rawValue)
        }
        if parameters["start"] == "t" { return try start(request, parameters: parameters, context: context) }
        guard let id = parameters["id"], let password = parameters["pw"], let transport = sessions.transport(id),
            transport.accepts(password: password)
        else {
            // A session this server does not hold (it ended, or the server restarted): the
            // client closes the transport and connects again.
            return LongPollEndpoint.script(LongPollScript.close(after: nil))
        }
        if parameters["dframe"] == "t" { return LongPollEndpoint.disconnectFrame(transport) }
        if parameters["disconn"] == "t" {
            transport.finish()
            return LongPollEndpoint.script([])
        }
        do {
            try transport.receive(try LongPollSegments.segments(in: parameters))
        } catch {
            transport.finish()
            throw error
        }
        await transport.waitForRoom()
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
        let connections = self.connections
        sessions.start(transport, connection) {
            await connection.run(longPoll: transport)
            connections.remove(session.wireID, ifItIs: connection)
        }
        let host = request.head.authority ?? "\(configuration.host):\(configuration.port)"
        let hello = WireEncoding.hello(time: Database.systemMilliseconds(), host: host, session: session.wireID)
        return LongPollEndpoint.script(
            LongPollScript.start(callback: callback, id: transport.id, password: transport.password, hello: hello))
    }

    /// The page of the SDK's hidden disconnect iframe: when it goes away (the page closes or
    /// navigates, or the SDK removes it), it tells the server, which ends the session then
    /// instead of after the idle timeout.
    static func disconnectFrame(_ transport: LongPollTransport) -> Response {
        var headers = ResponseFactory.baseHeaders(contentType: "text/html; charset=utf-8")
        headers[.cacheControl] = "no-cache, no-store"
        let page = """
            <!doctype html><html><body><script>
            (function () {
              var url = "?disconn=t&id=\(transport.id)&pw=\(transport.password)", sent = false;
              function leave() {
                if (sent) return;
                sent = true;
                if (navigator.sendBeacon && navigator.sendBeacon(url)) return;
                try { var request = new XMLHttpRequest(); request.open("GET", url, false); request.send(); } catch (e) {}
              }
              window.addEventListener("pagehide", leave);
              window.addEventListener("unload", leave);
            })();
            </script></body></html>

            """
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: page)))
    }

    static func script(_ bytes: [UInt8]) -> Response {
        var headers = ResponseFactory.baseHeaders(contentType: "application/javascript; charset=utf-8")
        headers[.cacheControl] = "no-cache, no-store"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// The long-polling sessions open now, by poll id, with the tasks that serve them (no request
/// owns a long-polling connection). As a service of the server's service group it ends them
/// all when the server stops, and waits for their on-disconnect writes.
final class LongPollSessions: Service, Sendable {
    struct Entry {
        let transport: LongPollTransport
        let connection: RealtimeConnection
        let task: Task<Void, Never>
    }
    let entries = Mutex<[String: Entry]>([:])

    /// Serves `connection` with `run` in a task of its own, until it ends.
    func start(_ transport: LongPollTransport, _ connection: RealtimeConnection, run: @escaping @Sendable () async -> Void) {
        entries.withLock { entries in
            let task = Task {
                await run()
                self.remove(transport)
            }
            entries[transport.id] = Entry(transport: transport, connection: connection, task: task)
        }
    }

    func transport(_ id: String) -> LongPollTransport? {
        entries.withLock { $0[id]?.transport }
    }

    func remove(_ transport: LongPollTransport) {
        entries.withLock { entries in
            if entries[transport.id]?.transport === transport { entries[transport.id] = nil }
        }
    }

    /// Waits for the server to stop, then ends every session.
    func run() async throws {
        try? await gracefulShutdown()
        await endAll()
    }

    /// Ends every session (those that moved to a WebSocket too) and waits until each has
    /// made its on-disconnect writes.
    func endAll() async {
        let ending = entries.withLock { Array($0.values) }
        for entry in ending {
            entry.connection.session.outbox.end(.shutdown)
            entry.transport.finish()
        }
        for entry in ending { await entry.task.value }
    }
}

import HTTPTypes
import HearthCore
import HearthStorage
import Hummingbird
import Logging
import NIOCore

/// Answers every HTTP request: Firebase's REST API on `<path>.json` and Hearth's reserved
/// endpoints (`/.health`, `/.inspect/databases.json`).
public final class HearthResponder: HTTPResponder, Sendable {
    public typealias Context = HearthRequestContext

    public let configuration: ServerConfiguration
    public let namespaces: NamespaceRegistry
    public let rules: RulesRegistry
    public let streams: StreamRegistry
    public let metrics: ServerMetrics
    let callers: CallerResolver
    /// Everything about data: REST and streams call it, as every transport does.
    let service: DatabaseService
    let metricsEndpoint: MetricsEndpoint
    /// Realtime connections by session id, whichever transport they use.
    let realtimeConnections = OpenRealtimeConnections()
    let longPoll: LongPollEndpoint
    /// Sends REST writes to the node holding their namespace's write lease (storage shared
    /// with other nodes); nil without storage.
    let forwarder: WriteForwarder?
    let logger: Logger

    public init(
        configuration: ServerConfiguration, namespaces: NamespaceRegistry, rules: RulesRegistry, streams: StreamRegistry,
        storage: StorageEngine? = nil, sessionJournal: any SessionStore = SessionJournal.memoryOnly(), logger: Logger
    ) {
        self.configuration = configuration
        self.namespaces = namespaces
        self.rules = rules
        self.streams = streams
        self.metrics = streams.metrics
        self.logger = logger
        forwarder = storage.map {
            WriteForwarder(
                storage: $0, maxBodyBytes: configuration.maxBodyBytes, forwardedHeader: configuration.clientAddresses.header,
                metrics: streams.metrics, logger: logger)
        }
        callers = CallerResolver(
            adminToken: configuration.adminToken, emulator: configuration.emulator, verifier: configuration.tokenVerifier)
        service = DatabaseService(
            configuration: configuration, namespaces: namespaces, rules: rules, streams: streams, sessionJournal: sessionJournal,
            logger: logger)
        metricsEndpoint = MetricsEndpoint(metrics: metrics, streams: streams, namespaces: namespaces, storage: storage)
        longPoll = LongPollEndpoint(
            service: service, callers: callers, configuration: configuration, connections: realtimeConnections, logger: logger)
    }

    /// Routes the request and answers it. Errors are thrown to ``ErrorMiddleware``, which
    /// answers them; the other HTTP concerns are middleware too (see `MiddlewareStack.swift`).
    public func respond(to request: Request, context: Context) async throws -> Response {
        try await route(request, context: context)
    }

    /// Who sent the request: the peer, or the client a trusted proxy names. Worked out only
    /// where it is needed (per-client limits), off the hot path.
    func client(of request: Request, context: Context) -> ClientAddress {
        configuration.clientAddresses.client(of: request, context: context)
    }

    /// What routing can settle without waiting: an answer, or the request parsed for the part
    /// of routing that waits (token verification, bodies, storage, streams).
    enum Routing {
        case answered(BufferedResponse)
        case longPoll
        /// `caller` is nil when the credential still has to be verified.
        case waiting(method: String, target: RESTTarget, options: RequestOptions, caller: Caller?)
    }

    /// The answer to a request that needs no waiting: `/.health`, `/.ready`, preflights, the
    /// console page, refusals, and reads (not streams, not CSV) by an anonymous or admin
    /// caller. Nil for every other request, which ``respond(to:context:)`` answers.
    /// ``InlineAnswerHandler`` calls it on the connection's event loop.
    func answerWithoutWaiting(_ request: Request, context: Context) throws -> BufferedResponse? {
        guard case .answered(let answer) = try routeWithoutWaiting(request, context: context) else { return nil }
        return answer
    }

    func route(_ request: Request, context: Context) async throws -> Response {
        switch try routeWithoutWaiting(request, context: context) {
        case .answered(let answer):
            return answer.response
        case .longPoll:
            return try await longPoll.respond(to: request, context: context)
        case .waiting(let method, let target, let options, let resolved):
            let caller: Caller
            if let resolved { caller = resolved } else { caller = try await callers.resolve(request, options: options) }
            return try await route(request, context: context, method: method, target: target, options: options, caller: caller)
        }
    }

    /// The part of routing that does not wait. Everything it answers, it answers exactly as
    /// the rest of routing would.
    func routeWithoutWaiting(_ request: Request, context: Context) throws -> Routing {
        let method = try effectiveMethod(request)
        let target: RESTTarget
        do {
            if request.uri.path == "/", method == "GET", request.headers[.accept]?.contains("text/html") == true {
                return .answered(ResponseFactory.redirect(to: "/.console/"))
            }
            target = try RESTTarget.parse(rawPath: request.uri.path)
        } catch .missingJSONSuffix {
            throw ServiceError(.notFound, "Not found: append .json to your request URI to use the REST API.")
        } catch .notFound {
            throw ServiceError(.notFound, "Not found.")
        } catch .invalid(let error) {
            throw error
        }
        if method == "OPTIONS" { return .answered(preflight()) }
        if case .longPoll = target { return .longPoll }
        let options = try RequestOptions(queryString: request.uri.query)
        switch target {
        case .console:
            // The page is public; everything it shows comes from the API, with the token the
            // user types in.
            guard method == "GET" else { throw ServiceError.methodNotAllowed(method) }
            return .answered(ResponseFactory.page(ConsolePage.html))
        case .health:
            return .answered(ResponseFactory.status("ok"))
        case .ready:
            // Recovery of every namespace finishes before the server listens, so a server that
            // answers is ready.
            return .answered(ResponseFactory.status("ready"))
        default:
            break
        }
        guard let caller = try callers.resolveWithoutWaiting(request, options: options) else {
            return .waiting(method: method, target: target, options: options, caller: nil)
        }
        switch target {
        case .inspectDatabases:
            return .answered(try databaseList(method: method, caller: caller, options: options))
        case .data(let path, let priority, let csv) where DataRequestHandler.readsWithoutWaiting(request, method: method, csv: csv):
            let namespace = try resolveNamespace(request, options: options)
            try service.checkNamespaceExists(namespace, caller: caller)
            let handler = dataHandler(
                request, context: context, method: method, path: path, priority: priority, csv: csv, options: options,
                namespace: namespace, caller: caller)
            return .answered(try handler.readWithoutWaiting())
        default:
            break
        }
        return .waiting(method: method, target: target, options: options, caller: caller)
    }

    /// What routing a write whose body has been read can settle without waiting.
    enum WriteRouting {
        case answered(BufferedResponse)
        /// Applied; `answer` makes the answer once it is durable.
        case writing(DatabaseService.StartedWrite, answer: @Sendable (DatabaseService.WriteResult) -> BufferedResponse)
        /// The rest needs a task (a credential to verify, or not a write of data).
        case waiting
    }

    /// Starts a write of data whose body (`body`, not compressed) has been read, by an
    /// anonymous or admin caller, without waiting: routed, checked, judged and applied as
    /// ``respond(to:context:)`` would, in the namespace's order. ``InlineAnswerHandler`` calls
    /// it on the connection's event loop. Storage shared with other nodes (which may forward
    /// the write) is not asked here, and neither is a namespace that is not open yet: creating
    /// one writes and syncs files, which must not hold up the event loop's other connections.
    func writeWithoutWaiting(_ request: Request, body: ByteBuffer, context: Context) throws -> WriteRouting {
        guard forwarder?.mayForward != true else { return .waiting }
        switch try routeWithoutWaiting(request, context: context) {
        case .answered(let answer):
            return .answered(answer)
        case .longPoll, .waiting(_, _, _, nil):
            return .waiting
        case .waiting(let method, let target, let options, let caller?):
            guard case .data(let path, let priority, let csv) = target, HearthResponder.writeMethods.contains(method)
            else { return .waiting }
            let namespace = try resolveNamespace(request, options: options)
            // (Open, so it exists: `startWrite` checks that once more.)
            guard namespaces.existing(namespace) != nil else { return .waiting }
            try service.admitWrite(from: client(of: request, context: context).limitKey, caller: caller)
            let handler = dataHandler(
                request, context: context, method: method, path: path, priority: priority, csv: csv, options: options,
                namespace: namespace, caller: caller)
            return .writing(try handler.startWriteWithoutWaiting(body: body), answer: { handler.answer($0) })
        }
    }

    /// `/.inspect/databases.json`: the names of the namespaces, for an admin.
    func databaseList(method: String, caller: Caller, options: RequestOptions) throws -> BufferedResponse {
        guard method == "GET" else { throw ServiceError.methodNotAllowed(method) }
        guard caller.isAdmin else { throw PermissionDenied(reason: "listing databases needs an admin credential") }
        let names = namespaces.names
        // An empty list is `[]`, which a Node (where empty means null) cannot express.
        guard !names.isEmpty else {
            let empty: StaticString = "[]"
            return ResponseFactory.json(UnsafeRawBufferPointer(start: empty.utf8Start, count: empty.utf8CodeUnitCount))
        }
        let list = names.enumerated().map { index, name in
            ChildEntry(key: ChildKey(String(index)),
                value: .object(ChildMap(sortedEntries: [ChildEntry(key: "name", value: .string(name))])))
        }
        return ResponseFactory.node(.object(ChildMap(sortedEntries: ContiguousArray(list))), options: options)
    }

    /// The rest of routing, for a known caller: what waits on storage, bodies or streams.
    func route(
        _ request: Request, context: Context, method: String, target: RESTTarget, options: RequestOptions, caller: Caller
    ) async throws -> Response {
        switch target {
        case .health, .ready, .console, .consoleRedirect, .longPoll:
            preconditionFailure("answered without waiting")
        case .metrics:
            guard method == "GET" else { throw ServiceError.methodNotAllowed(method) }
            guard caller.isAdmin else {
                throw ServiceError(.unauthenticated,
                    "Permission denied: /.metrics needs the admin token (or scrape the server's metrics-address).")
            }
            return await metricsEndpoint.response()
        case .inspectDatabases:
            return try databaseList(method: method, caller: caller, options: options).response
        case .inspectStreams:
            guard method == "GET" else { throw ServiceError.methodNotAllowed(method) }
            guard caller.isAdmin else { throw PermissionDenied(reason: "stream statistics need an admin credential") }
            let open = await streams.streamCount()
            return ResponseFactory.node(.object(ChildMap(sortedEntries: [ChildEntry(key: "open", value: .int(Int64(open)))])),
                options: options).response
        case .settings(let name):
            guard name == "rules" else {
                throw ServiceError(.notFound, "Not found: the only database setting Hearth has is /.settings/rules.json.")
            }
            let handler = RulesRequestHandler(
                service: service, request: request, method: method, options: options, caller: caller,
                namespace: try resolveNamespace(request, options: options))
            return try await handler.handle()
        case .data(let path, let priority, let csv):
            let namespace = try resolveNamespace(request, options: options)
            let writes = HearthResponder.writeMethods.contains(method)
            if writes {
                try service.admitWrite(from: client(of: request, context: context).limitKey, caller: caller)
            }
            try service.checkNamespaceExists(namespace, caller: caller)
            var written = request
            if writes, let forwarder {
                switch try await forwarder.route(request, namespace: namespace, client: client(of: request, context: context)) {
                case .answered(let response): return response
                case .here(let kept): written = kept
                }
            }
            let handler = dataHandler(
                written, context: context, method: method, path: path, priority: priority, csv: csv, options: options,
                namespace: namespace, caller: caller)
            return try await handler.handle()
        }
    }

    /// The handler of REST on data for `request`, at the request's time.
    func dataHandler(
        _ request: Request, context: Context, method: String, path: Path, priority: Bool, csv: Bool,
        options: RequestOptions, namespace: String, caller: Caller
    ) -> DataRequestHandler {
        DataRequestHandler(
            service: service, request: request, method: method, path: path, priorityTarget: priority,
            options: options, namespace: namespace, caller: caller, now: Database.systemMilliseconds(),
            client: { [self] in self.client(of: request, context: context).limitKey }, csv: csv,
            channel: context.channel)
    }

    static let writeMethods: Set<String> = ["PUT", "POST", "PATCH", "DELETE"]

    /// The method after `X-HTTP-Method-Override` (header or query), which only a POST may carry.
    func effectiveMethod(_ request: Request) throws -> String {
        let method = request.method.rawValue
        var override = request.headers[ResponseFactory.methodOverrideHeader]
        if override == nil, let query = request.uri.query, query.contains("x-http-method-override") {
            override = (try? RequestOptions(queryString: query))?.methodOverride
        }
        guard let override else { return method }
        let overridden = override.uppercased()
        guard method == "POST" || method == overridden else {
            throw DataError("X-HTTP-Method-Override is only allowed on POST requests.")
        }
        guard ["GET", "PUT", "POST", "PATCH", "DELETE"].contains(overridden) else {
            throw DataError("Invalid X-HTTP-Method-Override: \(override).")
        }
        return overridden
    }

    /// The namespace: `ns=` if given, else the first label of a `<name>.<domain>.<tld>` host.
    func resolveNamespace(_ request: Request, options: RequestOptions) throws -> String {
        var name = options.namespace
        if name == nil, let host = request.head.authority {
            name = HearthResponder.namespace(fromHost: host)
        }
        let resolved = name ?? configuration.defaultNamespace
        guard NamespaceRegistry.isValidName(resolved) else {
            throw ServiceError(.notFound, "Database not found: \"\(resolved)\" is not a valid namespace name.")
        }
        return resolved
    }

    /// `mydb.example.com:9000` → `mydb`; nil for IP addresses, `localhost` and two-label hosts.
    public static func namespace(fromHost host: String) -> String? {
        // The usual hosts (an IPv4 address, `localhost`, a two-label name, with a port or
        // not) are settled from their bytes: the general path below cost 3% of a small read.
        var dots = 0
        var onlyDigits = true
        var ascii = true
        for byte in host.utf8 {
            if byte == UInt8(ascii: ":") { break }
            if byte == UInt8(ascii: ".") { dots += 1 } else if byte < 0x30 || byte > 0x39 { onlyDigits = false }
            if byte >= 0x80 { ascii = false }
        }
        if ascii && (dots < 2 || onlyDigits) { return nil }
        var hostname = Substring(host)
        if hostname.hasPrefix("[") { return nil }  // IPv6 literal
        if let colon = hostname.lastIndex(of: ":") { hostname = hostname[..<colon] }
        let labels = hostname.split(separator: ".")
        guard labels.count >= 3 else { return nil }
        if labels.allSatisfy({ $0.allSatisfy(\.isNumber) }) { return nil }
        return labels[0].lowercased()
    }

    func preflight() -> BufferedResponse {
        var headers = ResponseFactory.baseHeaders()
        headers[.accessControlAllowMethods] = "GET, PUT, POST, PATCH, DELETE, OPTIONS"
        headers[.accessControlAllowHeaders] = "Authorization, Content-Type, X-Firebase-ETag, If-Match, If-None-Match, X-HTTP-Method-Override, Last-Event-ID, Content-Encoding"
        headers[.accessControlMaxAge] = "3600"
        headers[.contentType] = nil
        return BufferedResponse(status: .noContent, headers: headers)
    }
}

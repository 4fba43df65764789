import HTTPTypes
import HearthCore
import HearthStorage
import Hummingbird
import Logging
import NIOCore

/// Answers every HTTP request: Firebase's REST API on `<path>.json` and Hearth's reserved
/// endpoints (`/.health`, `/.inspect/databases.json`).
public struct HearthResponder: HTTPResponder {
    public typealias Context = HearthRequestContext

    public let configuration: ServerConfiguration
    public let namespaces: NamespaceRegistry
    public let rules: RulesRegistry
    public let streams: StreamRegistry
    public let metrics: ServerMetrics
    let callers: CallerResolver
    /// Writes per client address; nil when unlimited.
    let writeLimiter: WriteRateLimiter?
    let metricsEndpoint: MetricsEndpoint
    let logger: Logger

    public init(
        configuration: ServerConfiguration, namespaces: NamespaceRegistry, rules: RulesRegistry, streams: StreamRegistry,
        storage: StorageEngine? = nil, logger: Logger
    ) {
        self.configuration = configuration
        self.namespaces = namespaces
        self.rules = rules
        self.streams = streams
        self.metrics = streams.metrics
        self.logger = logger
        callers = CallerResolver(
            adminToken: configuration.adminToken, emulator: configuration.emulator, verifier: configuration.tokenVerifier)
        writeLimiter = configuration.writeRateLimit.map(WriteRateLimiter.init)
        metricsEndpoint = MetricsEndpoint(metrics: metrics, streams: streams, namespaces: namespaces, storage: storage)
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        let started = ContinuousClock.now
        var response = try await answer(request, context: context)
        let elapsed = ContinuousClock.now - started
        metrics.requestDuration.record(elapsed)
        metrics.countRequest(method: request.method.rawValue, status: Int(response.status.code))
        // The path only: query strings may carry tokens (`auth=`), which are never logged.
        if context.logger.logLevel <= .debug {
            let client = self.client(of: request, context: context)
            context.logger.debug(
                "request", metadata: [
                    "method": "\(request.method.rawValue)", "path": "\(request.uri.path)",
                    "status": "\(response.status.code)", "client": "\(client)",
                    "ms": "\(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)",
                ])
        }
        response.headers[HearthResponder.requestIDHeader] = context.id
        if response.headers[.accessControlAllowOrigin] != nil {
            response.headers[.accessControlExposeHeaders] = "X-Request-Id, ETag"
        }
        applyCORS(to: &response, origin: request.headers[.origin])
        let isStream = response.headers[.contentType]?.hasPrefix("text/event-stream") == true
        if !isStream || configuration.compressStreams {
            ResponseCompression.apply(to: &response, acceptEncoding: request.headers[.acceptEncoding])
        }
        return response
    }

    /// Names the request in the server's log (`hb.request.id`), so a client can quote it.
    static let requestIDHeader = HTTPField.Name("X-Request-Id")!

    /// CORS as configured: `*` (Firebase's behaviour, the default), or only the listed origins,
    /// each answered with its own name and `Vary: Origin`.
    func applyCORS(to response: inout Response, origin: String?) {
        let allowed = configuration.corsOrigins
        guard !allowed.contains("*"), response.headers[.accessControlAllowOrigin] != nil else { return }
        if let origin, allowed.contains(origin) {
            response.headers[.accessControlAllowOrigin] = origin
        } else {
            response.headers[.accessControlAllowOrigin] = nil
        }
        response.headers[.vary] = "Origin"
    }

    /// Who sent the request: the peer, or the client a trusted proxy names. Worked out only
    /// where it is needed (per-client limits, the debug request log), off the hot path.
    func client(of request: Request, context: Context) -> ClientAddress {
        configuration.clientAddresses.client(peer: context.remoteAddress?.ipAddress, headers: request.headers)
    }

    func answer(_ request: Request, context: Context) async throws -> Response {
        do {
            return try await route(request, context: context)
        } catch let error as DataError {
            return ResponseFactory.error(.badRequest, error.message)
        } catch let error as PermissionDenied {
            metrics.ruleDenials.increment()
            context.logger.debug("permission denied: \(error.reason)")
            return ResponseFactory.error(.unauthorized, "Permission denied")
        } catch is BodyEndedEarly {
            context.logger.debug("request body ended early")
            return ResponseFactory.error(.badRequest, "Bad request: the request body ended early.")
        } catch let error as HTTPFailure {
            if error.status == .contentTooLarge { metrics.countRefusal(.bodySize) }
            if error.status == .unauthorized { context.logger.debug("unauthorized: \(error.message)") }
            var response = ResponseFactory.error(error.status, error.message)
            response.headers.append(contentsOf: error.headers)
            return response
        } catch is NIOTooManyBytesError {
            metrics.countRefusal(.bodySize)
            return ResponseFactory.error(
                .contentTooLarge, "Payload too large: the request body exceeds \(configuration.maxBodyBytes) bytes.")

        } catch let error as StorageUnavailable {
            context.logger.error("write failed in storage: \(error.reason)")
            if error.outOfSpace { return ResponseFactory.error(HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage"), "Insufficient storage: \(error.reason)") }
            return ResponseFactory.error(.serviceUnavailable, "Service unavailable: \(error.reason)")
        } catch let error as RecoveryError {
            context.logger.error("namespace cannot be opened: \(error)")
            return ResponseFactory.error(.serviceUnavailable, "Service unavailable: this database cannot be opened; see the server log.")
        } catch is CancellationError {
            context.logger.notice("request cancelled: the server is shutting down")
            return ResponseFactory.error(.serviceUnavailable, "Service unavailable: the server is shutting down.")
        } catch let error as HTTPError {
            return ResponseFactory.error(error.status, error.body ?? "\(error.status.reasonPhrase)")
        } catch {
            context.logger.error("unexpected error: \(error)")
            return ResponseFactory.error(.internalServerError, "Internal server error; see the server log.")
        }
    }

    func route(_ request: Request, context: Context) async throws -> Response {
        let method = try effectiveMethod(request)
        let target: RESTTarget
        do {
            if request.uri.path == "/", method == "GET", request.headers[.accept]?.contains("text/html") == true {
                return ResponseFactory.redirect(to: "/.console/")
            }
            target = try RESTTarget.parse(rawPath: request.uri.path)
        } catch .missingJSONSuffix {
            throw HTTPFailure(.notFound, "Not found: append .json to your request URI to use the REST API.")
        } catch .notFound {
            throw HTTPFailure(.notFound, "Not found.")
        } catch .invalid(let error) {
            throw error
        }
        if method == "OPTIONS" { return preflight() }
        let options = try RequestOptions(queryString: request.uri.query)
        if case .console = target {
            // The page is public; everything it shows comes from the API, with the token the
            // user types in.
            guard method == "GET" else { throw HTTPFailure.methodNotAllowed(method) }
            return ResponseFactory.page(ConsolePage.html)
        }
        switch target {
        case .health:
            return ResponseFactory.status("ok")
        case .ready:
            // Recovery of every namespace finishes before the server listens, so a server that
            // answers is ready.
            return ResponseFactory.status("ready")
        default:
            break
        }
        let caller = try await callers.resolve(request, options: options)
        switch target {
        case .health, .ready, .console, .consoleRedirect:
            preconditionFailure("answered above")
        case .metrics:
            guard method == "GET" else { throw HTTPFailure.methodNotAllowed(method) }
            guard caller.isAdmin else {
                throw HTTPFailure(.unauthorized,
                    "Permission denied: /.metrics needs the admin token (or scrape the server's metrics-address).")
            }
            return await metricsEndpoint.response()
        case .inspectDatabases:
            guard method == "GET" else { throw HTTPFailure.methodNotAllowed(method) }
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
        case .inspectStreams:
            guard method == "GET" else { throw HTTPFailure.methodNotAllowed(method) }
            guard caller.isAdmin else { throw PermissionDenied(reason: "stream statistics need an admin credential") }
            let open = await streams.streamCount()
            return ResponseFactory.node(.object(ChildMap(sortedEntries: [ChildEntry(key: "open", value: .int(Int64(open)))])),
                options: options)
        case .settings(let name):
            guard name == "rules" else {
                throw HTTPFailure(.notFound, "Not found: the only database setting Hearth has is /.settings/rules.json.")
            }
            let handler = RulesRequestHandler(
                request: request, method: method, options: options, caller: caller,
                namespace: try resolveNamespace(request, options: options), configuration: configuration,
                namespaces: namespaces, rules: rules, streams: streams, logger: logger)
            return try await handler.handle()
        case .data(let path, let priority, let csv):
            let namespace = try resolveNamespace(request, options: options)
            if HearthResponder.writeMethods.contains(method), !caller.isAdmin, let writeLimiter {
                try admitWrite(from: client(of: request, context: context), limiter: writeLimiter)
            }
            try checkNamespaceExists(namespace, caller: caller)
            let namespaceRules = rules.rules(for: namespace)
            let handler = DataRequestHandler(
                request: request, method: method, path: path, priorityTarget: priority, options: options,
                namespace: namespace, configuration: configuration, namespaces: namespaces, caller: caller,
                rules: caller.bypassesRules ? nil : namespaceRules, namespaceRules: namespaceRules,
                now: Database.systemMilliseconds(), streams: streams, client: { client(of: request, context: context).limitKey },
                csv: csv)
            return try await handler.handle()
        }
    }

    static let writeMethods: Set<String> = ["PUT", "POST", "PATCH", "DELETE"]

    /// Takes one write from the client's allowance, or refuses the request with `429` and
    /// the seconds to wait in `Retry-After`.
    func admitWrite(from client: ClientAddress, limiter: WriteRateLimiter) throws {
        guard let wait = limiter.admit(client.limitKey) else { return }
        metrics.countRefusal(.writeRate)
        let seconds = WriteRateLimiter.retryAfterSeconds(wait)
        var headers = HTTPFields()
        headers[.retryAfter] = String(seconds)
        throw HTTPFailure(
            .tooManyRequests,
            "Too many writes: this client may write \(limiter.limit.perSecondText) times per second (bursts of "
                + "\(limiter.limit.burst)); retry in \(seconds) s.", headers: headers)
    }

    /// A namespace comes into being when it is first named; only the admin may do that,
    /// unless the server allows anyone to (`create-namespaces`, or emulator mode). The default
    /// namespace always exists.
    func checkNamespaceExists(_ namespace: String, caller: Caller) throws {
        guard !caller.isAdmin, !configuration.anyoneCreatesNamespaces, namespace != configuration.defaultNamespace,
            namespaces.existing(namespace) == nil
        else { return }
        throw HTTPFailure(
            .notFound,
            "Database not found: there is no database \"\(namespace)\" on this server. Creating one needs the admin "
                + "token (or the server's create-namespaces setting).")
    }

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
            throw HTTPFailure(.notFound, "Database not found: \"\(resolved)\" is not a valid namespace name.")
        }
        return resolved
    }

    /// `mydb.example.com:9000` → `mydb`; nil for IP addresses, `localhost` and two-label hosts.
    public static func namespace(fromHost host: String) -> String? {
        var hostname = Substring(host)
        if hostname.hasPrefix("[") { return nil }  // IPv6 literal
        if let colon = hostname.lastIndex(of: ":") { hostname = hostname[..<colon] }
        let labels = hostname.split(separator: ".")
        guard labels.count >= 3 else { return nil }
        if labels.allSatisfy({ $0.allSatisfy(\.isNumber) }) { return nil }
        return labels[0].lowercased()
    }

    func preflight() -> Response {
        var headers = ResponseFactory.baseHeaders()
        headers[.accessControlAllowMethods] = "GET, PUT, POST, PATCH, DELETE, OPTIONS"
        headers[.accessControlAllowHeaders] = "Authorization, Content-Type, X-Firebase-ETag, If-Match, If-None-Match, X-HTTP-Method-Override, Last-Event-ID, Content-Encoding"
        headers[.accessControlMaxAge] = "3600"
        headers[.contentType] = nil
        return Response(status: .noContent, headers: headers)
    }
}

/// A failure with its HTTP status and Firebase-style message.
struct HTTPFailure: Error {
    let status: HTTPResponse.Status
    let message: String
    /// Headers the answer carries (`Retry-After`).
    let headers: HTTPFields

    init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    static func methodNotAllowed(_ method: String) -> HTTPFailure {
        HTTPFailure(.methodNotAllowed, "Method \(method) is not allowed here.")
    }
}

/// Storage could not take a write (disk full, I/O error). The write did not happen.
public struct StorageUnavailable: Error, Sendable {
    public let reason: String
    /// The disk is full (507) rather than failing otherwise (503).
    public let outOfSpace: Bool

    public init(reason: String, outOfSpace: Bool = false) {
        self.reason = reason
        self.outOfSpace = outOfSpace
    }

    static func isOutOfSpace(_ error: any Error) -> Bool {
        if let failure = error as? FileWriteLog.Failure, let io = failure.underlying as? StorageIOError {
            return io.isOutOfSpace
        }
        return false
    }
}

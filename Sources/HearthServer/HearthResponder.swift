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
    /// The storage, for the disk-usage gauges.
    let storage: StorageEngine?
    let callers: CallerResolver
    let logger: Logger

    public init(
        configuration: ServerConfiguration, namespaces: NamespaceRegistry, rules: RulesRegistry, streams: StreamRegistry,
        storage: StorageEngine? = nil, logger: Logger
    ) {
        self.configuration = configuration
        self.storage = storage
        self.namespaces = namespaces
        self.rules = rules
        self.streams = streams
        self.metrics = streams.metrics
        self.logger = logger
        callers = CallerResolver(
            adminToken: configuration.adminToken, emulator: configuration.emulator, verifier: configuration.tokenVerifier)
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        let started = ContinuousClock.now
        var response = try await answer(request, context: context)
        let elapsed = ContinuousClock.now - started
        metrics.requestDuration.record(elapsed)
        metrics.countRequest(method: request.method.rawValue, status: Int(response.status.code))
        if response.status == .unauthorized { metrics.ruleDenials.increment() }
        // The path only: query strings may carry tokens (`auth=`), which are never logged.
        context.logger.debug(
            "request", metadata: [
                "method": "\(request.method.rawValue)", "path": "\(request.uri.path)", "status": "\(response.status.code)",
                "ms": "\(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)",
            ])
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

    func answer(_ request: Request, context: Context) async throws -> Response {
        do {
            return try await route(request, context: context)
        } catch let error as DataError {
            return ResponseFactory.error(.badRequest, error.message)
        } catch let error as PermissionDenied {
            context.logger.debug("permission denied: \(error.reason)")
            return ResponseFactory.error(.unauthorized, "Permission denied")
        } catch is BodyEndedEarly {
            context.logger.debug("request body ended early")
            return ResponseFactory.error(.badRequest, "Bad request: the request body ended early.")
        } catch let error as HTTPFailure {
            if error.status == .contentTooLarge { metrics.countRefusal(.bodySize) }
            if error.status == .unauthorized { context.logger.debug("unauthorized: \(error.message)") }
            return ResponseFactory.error(error.status, error.message)
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
            return ResponseFactory.node(.object(ChildMap(sortedEntries: [ChildEntry(key: "status", value: .string("ok"))])),
                options: RequestOptions())
        case .metrics:
            guard method == "GET" else { throw HTTPFailure.methodNotAllowed(method) }
            let text = metrics.exposition(
                openStreams: await streams.streamCount(), namespaces: namespaces.names.count,
                disk: storage?.diskUsage() ?? StorageDiskUsage())
            var headers = ResponseFactory.baseHeaders(contentType: "text/plain; version=0.0.4; charset=utf-8")
            headers[.accessControlAllowOrigin] = nil
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: text)))
        case .ready:
            // Recovery of every namespace finishes before the server listens, so a server that
            // answers is ready.
            return ResponseFactory.node(.object(ChildMap(sortedEntries: [ChildEntry(key: "status", value: .string("ready"))])),
                options: RequestOptions())
        default:
            break
        }
        let caller = try await callers.resolve(request, options: options)
        switch target {
        case .health, .ready, .metrics, .console, .consoleRedirect:
            preconditionFailure("answered above")
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
            let namespaceRules = rules.rules(for: namespace)
            let handler = DataRequestHandler(
                request: request, method: method, path: path, priorityTarget: priority, options: options,
                namespace: namespace, configuration: configuration, namespaces: namespaces, caller: caller,
                rules: caller.bypassesRules ? nil : namespaceRules, namespaceRules: namespaceRules,
                now: Database.systemMilliseconds(), streams: streams, client: context.remoteAddress?.ipAddress ?? "unknown",
                csv: csv)
            return try await handler.handle()
        }
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

    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
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

import HTTPTypes
import HearthCore
import HearthStorage
import Hummingbird
import NIOCore

/// Serves one request for data at a path: `GET`, `PUT`, `POST`, `PATCH`, `DELETE`.
struct DataRequestHandler {
    let request: Request
    let method: String
    let path: Path
    /// The URL ended in `/.priority.json`.
    let priorityTarget: Bool
    let options: RequestOptions
    let namespace: String
    let configuration: ServerConfiguration
    let namespaces: NamespaceRegistry
    let caller: Caller
    /// The rules to obey; nil when the caller bypasses them (admin).
    let rules: RuleSet?
    /// The namespace's rules, whoever the caller is (for the indexes they declare).
    let namespaceRules: RuleSet
    /// The request's time (ms): server timestamps in the body and `now` in rules are the same
    /// instant, so `newData.val() == now` holds for `{".sv": "timestamp"}`.
    let now: Int64
    let streams: StreamRegistry
    /// The client's address, which stream limits count by (worked out when a stream opens).
    let client: @Sendable () -> String
    /// `<path>.csv`: the children as CSV rows (reads only).
    let csv: Bool

    var wantsETag: Bool { request.headers[ResponseFactory.firebaseETagHeader]?.lowercased() == "true" }
    var ifMatch: String? { request.headers[.ifMatch] }
    var ifNoneMatch: String? { request.headers[.ifNoneMatch] }

    func handle() async throws -> Response {
        if !options.query.isEmpty && method != "GET" {
            throw DataError("Query parameters (orderBy, startAt, limitToFirst, ...) are only supported on GET requests.")
        }
        if options.dryRun && method != "GET" {
            throw DataError("dryRun is only supported when writing rules (/.settings/rules.json).")
        }
        if ifMatch != nil {
            guard method == "PUT" || method == "DELETE" else {
                throw DataError("if-match is not supported for \(method) requests; use it with PUT or DELETE.")
            }
            guard options.print != .silent else {
                throw DataError("print=silent is not supported together with if-match.")
            }
        }
        if csv && method != "GET" { throw ServiceError.methodNotAllowed(method) }
        switch method {
        case "GET":
            if StreamRequestHandler.wantsStream(request) && !csv { return try await stream() }
            return try read()
        case "PUT": return try await put()
        case "POST": return try await post()
        case "PATCH": return try await patch()
        case "DELETE": return try await delete()
        default: throw ServiceError.methodNotAllowed(method)
        }
    }

    // MARK: Reads

    func read() throws -> Response {
        let query = try Query.parse(options.query, implicitKeyOrder: options.shallow)
        if query != nil && priorityTarget { throw DataError("Queries are not supported on a priority.") }
        let database = namespaces.existing(namespace)
        var view = database?.readView
        let root = view?.root ?? .null
        try authorizeRead(query, root: root)
        if let query {
            let spec = IndexSpec(location: path, orderBy: query.orderBy)
            if namespaceRules.declaresIndex(at: path, orderBy: query.orderBy), let database, view?.indexes[spec] == nil, query.orderBy.needsIndex,
                (view?.root.at(path).children.count ?? 0) >= DataRequestHandler.lazyIndexMinimumChildren,
                database.indexCount < DataRequestHandler.lazyIndexLimit
            {
                // Declared under a $wildcard: made on the first query of a location big enough
                // to need it (smaller ones are scanned), up to a limit per namespace.
                database.ensureIndex(spec)
                view = database.readView
            }
            let node = (view?.root ?? .null).at(path)
            var entries = view?.indexes[spec].map { query.lookup(node, in: $0) } ?? query.scan(node)
            if csv { return ResponseFactory.csv(entries, options: options) }
            if options.shallow {
                entries = entries.map { ChildEntry(key: $0.key, value: .bool(true)) }
            }
            return ResponseFactory.entries(entries, options: options)
        }
        var node = root.at(path)
        if csv { return ResponseFactory.csv(node.children, options: options) }
        if priorityTarget { node = node.priority?.node ?? .null }
        // The ETag is that of the data itself (not of a shallow view), so it works in if-match.
        let etag = wantsETag || ifNoneMatch != nil ? ETag.of(node) : nil
        if options.shallow { node = DataRequestHandler.shallow(node) }
        var headers = HTTPFields()
        if let etag {
            headers[ResponseFactory.etagHeader] = etag
            if let ifNoneMatch, ifNoneMatch == etag {
                var notModified = ResponseFactory.baseHeaders()
                notModified[ResponseFactory.etagHeader] = etag
                notModified[.contentType] = nil
                return Response(status: .notModified, headers: notModified)
            }
        }
        return ResponseFactory.node(node, options: options, headers: headers)
    }

    /// The checks of every read, plain or streamed: the rules must grant it, and a non-admin
    /// child or value query needs an index declared in the rules, as on Firebase's REST API
    /// (admins and the emulator may query without one, by scanning).
    func authorizeRead(_ query: Query?, root: Node) throws {
        guard let rules else { return }
        let verdict = rules.canRead(path, auth: caller.auth, root: root, now: now, query: query?.ruleQuery ?? RuleQuery())
        guard verdict.allowed else { throw PermissionDenied(reason: verdict.reason) }
        if let query, !namespaceRules.declaresIndex(at: path, orderBy: query.orderBy), !configuration.emulator {
            throw DataError(
                "Index not defined, add \".indexOn\": \"\(query.orderBy.indexOnName)\", for path \"\(path)\", to the rules")
        }
    }

    /// A realtime stream of the location (or of a live query), after the same checks as a read.
    func stream() async throws -> Response {
        let query = try Query.parse(options.query, implicitKeyOrder: false)
        guard !priorityTarget else { throw DataError("Streams of a priority are not supported.") }
        try authorizeRead(query, root: namespaces.existing(namespace)?.root ?? .null)
        // A stream needs the namespace's change feed, so it opens (or creates) the namespace.
        let database = try namespaces.database(namespace)
        let limit = configuration.limits.maxStreamsPerClient
        guard let lease = streams.leaseStream(for: client(), limit: limit) else {
            streams.metrics.countRefusal(.streamsPerClient)
            throw ServiceError(.tooManyRequests(retryAfterSeconds: nil), "Too many streams: this client already has \(limit) open, the server's limit per client.")
        }
        return await StreamRequestHandler(
            request: request, path: path, query: query, caller: caller, database: database, streams: streams, lease: lease
        ).respond()
    }

    /// Locations under a `$wildcard` with fewer children are answered by a scan, not an index.
    static let lazyIndexMinimumChildren = 256
    /// Most indexes a namespace keeps (beyond them, queries scan).
    static let lazyIndexLimit = 1000

    /// `shallow=true`: an object's children each become `true`; leaves stay as they are.
    static func shallow(_ node: Node) -> Node {
        guard case .object(let children) = node.withoutPriority else { return node.withoutPriority }
        var entries = ContiguousArray<ChildEntry>()
        entries.reserveCapacity(children.count)
        for entry in children { entries.append(ChildEntry(key: entry.key, value: .bool(true))) }
        return .object(ChildMap(sortedEntries: entries))
    }

    // MARK: Writes

    /// The rules check for this caller's writes, judged by the namespace's writer.
    var authorization: (@Sendable (WriteAuthorization) -> RuleVerdict)? {
        guard let rules else { return nil }
        let auth = caller.auth
        let now = self.now
        return { write in
            rules.canWrite(write.paths, auth: auth, oldRoot: write.oldRoot, newRoot: write.newRoot, now: now)
        }
    }

    func body() async throws -> ByteBuffer {
        try await RequestBody.read(request, limit: configuration.maxBodyBytes)
    }

    /// Parses the body. Server timestamps are the time the request was read.
    func parseBody(depth: Int) async throws -> ParsedNode {
        let buffer = try await body()
        let parseOptions = JSONParser.Options(maxDepth: Path.maxDepth - depth, serverTime: now)
        return try buffer.withUnsafeReadableBytes { bytes throws -> ParsedNode in
            try JSONParser.parse(bytes, options: parseOptions)
        }
    }

    /// A priority written as data: a number, a string or null; never an increment.
    static func priority(from parsed: ParsedNode) throws -> Priority? {
        guard parsed.increments.isEmpty else { throw DataError("Invalid data; a priority can't be an increment.") }
        return try Priority(node: parsed.node)
    }

    /// The namespace's database for a write that has passed every check of its input. A write
    /// to a namespace that does not exist yet is first judged by the rules against an empty
    /// tree, so that refused requests never create a namespace.
    func database(for request: WriteRequest) async throws -> Database {
        if let database = namespaces.existing(namespace) { return database }
        if request.authorize != nil { _ = try await Database(name: namespace).write(request) }
        return try namespaces.database(namespace)
    }

    func put() async throws -> Response {
        let parsed = try await parseBody(depth: path.depth)
        let operation: WriteRequest.Operation
        if priorityTarget {
            operation = .setPriority(try DataRequestHandler.priority(from: parsed))
        } else {
            operation = .set(parsed)
        }
        return try await write(WriteRequest(path: path, operation: operation, ifMatch: ifMatch, authorize: authorization))
    }

    func delete() async throws -> Response {
        let operation: WriteRequest.Operation = priorityTarget ? .setPriority(nil) : .set(ParsedNode(node: .null))
        guard let database = namespaces.existing(namespace) else {
            // Nothing to delete in a namespace that does not exist; don't create it.
            return try await write(
                WriteRequest(path: path, operation: operation, ifMatch: ifMatch, authorize: authorization),
                in: Database(name: namespace))
        }
        return try await write(
            WriteRequest(path: path, operation: operation, ifMatch: ifMatch, authorize: authorization), in: database)
    }

    func post() async throws -> Response {
        guard !priorityTarget else { throw DataError("Invalid path: can't POST to a priority.") }
        guard path.depth < Path.maxDepth else { throw DataError.invalidPath("Path is too deep") }
        let parsed = try await parseBody(depth: path.depth + 1)
        return try await write(WriteRequest(path: path, operation: .push(parsed), authorize: authorization))
    }

    func patch() async throws -> Response {
        guard !priorityTarget else { throw DataError("Invalid path: can't PATCH a priority.") }
        guard !wantsETag else { throw DataError("X-Firebase-ETag is not supported for PATCH requests.") }
        let buffer = try await body()
        let parseOptions = JSONParser.Options(serverTime: now)
        let entries = try buffer.withUnsafeReadableBytes { bytes throws -> [UpdateEntry] in
            try JSONParser.parseUpdate(bytes, locationDepth: path.depth, options: parseOptions)
        }
        try UpdateEntry.checkNoOverlap(entries)
        // Check priorities here, before the namespace is opened (or created).
        for entry in entries where entry.isPriority { _ = try DataRequestHandler.priority(from: entry.value) }
        if entries.isEmpty { return ResponseFactory.node(.null, options: options) }
        return try await write(WriteRequest(path: path, operation: .update(entries), authorize: authorization))
    }

    /// Runs the write and answers as Firebase does: the data written (PUT, PATCH, DELETE), the
    /// new name (POST), or 412 with the current value when `if-match` did not match.
    func write(_ write: WriteRequest, in chosen: Database? = nil) async throws -> Response {
        let database: Database
        if let chosen { database = chosen } else { database = try await self.database(for: write) }
        let outcome: WriteOutcome
        let started = ContinuousClock.now
        defer { streams.metrics.writeDuration.record(ContinuousClock.now - started) }
        do {
            outcome = try await database.write(write)
        } catch let error as DataError {
            throw error
        } catch let error as PermissionDenied {
            throw error
        } catch let error as RecordTooLarge {
            throw error
        } catch {
            throw StorageUnavailable(reason: "the write could not be made durable (\(error)); nothing was written.",
                outOfSpace: StorageIOError.isOutOfSpace(error))
        }
        switch outcome {
        case .conditionFailed(let current):
            // The current value (and its ETag) goes only to callers who may read it.
            if let rules, !rules.canRead(path, auth: caller.auth, root: database.root, now: now).allowed {
                throw ServiceError(.conditionFailed,
                    "The data at this location has changed (the ETag does not match); you may not read it.")
            }
            var headers = HTTPFields()
            headers[ResponseFactory.etagHeader] = ETag.of(current)
            var responseOptions = options
            responseOptions.print = options.print == .pretty ? .pretty : .normal
            return ResponseFactory.node(current, options: responseOptions, status: .preconditionFailed, headers: headers)
        case .written(_, .pushed(let name)):
            let body = Node.object(ChildMap(sortedEntries: [ChildEntry(key: "name", value: .string(name.string))]))
            var headers = HTTPFields()
            if wantsETag {
                headers[ResponseFactory.etagHeader] = ETag.of(database.root.at(path.appending(name)))
            }
            return ResponseFactory.node(body, options: options, headers: headers)
        case .written(_, .value(var value)):
            // An increment's answer is the stored total: show it only to callers who may read
            // it (a write-only caller could otherwise read any number with an increment of 0).
            if let rules, write.hasIncrements, !rules.canRead(path, auth: caller.auth, root: database.root, now: now).allowed {
                value = .null
            }
            var headers = HTTPFields()
            if wantsETag || ifMatch != nil { headers[ResponseFactory.etagHeader] = ETag.of(value) }
            return ResponseFactory.node(value, options: options, headers: headers)
        }
    }
}

extension WriteRequest {
    /// True if the body holds a server increment (`{".sv": {"increment": n}}`).
    var hasIncrements: Bool {
        switch operation {
        case .set(let parsed), .push(let parsed): return !parsed.increments.isEmpty
        case .update(let entries): return entries.contains { !$0.value.increments.isEmpty }
        case .setPriority: return false
        }
    }
}

extension UpdateEntry {
    /// Refuses an update in which one path is an ancestor of (or the same as) another.
    static func checkNoOverlap(_ entries: [UpdateEntry]) throws(DataError) {
        let paths = entries.map { entry in
            entry.isPriority ? entry.path.appending(ChildKey(".priority")) : entry.path
        }.sorted { $0.keys.lexicographicallyPrecedes($1.keys) }
        for (earlier, later) in zip(paths, paths.dropFirst()) where earlier.contains(later) {
            throw DataError(
                "Invalid data; update contains a path \(earlier) that is an ancestor of another path \(later).")
        }
    }
}

import HTTPTypes
import HearthCore
import Hummingbird
import NIOCore

/// REST on data at a path (`GET`, `PUT`, `POST`, `PATCH`, `DELETE` on `<path>.json`, and
/// `<path>.csv`): parses the request, calls the ``DatabaseService``, and answers as Firebase
/// does (bodies, `print`, ETags, `412`). Streams (`Accept: text/event-stream`) go to
/// ``StreamRequestHandler``. No data logic lives here.
struct DataRequestHandler {
    let service: DatabaseService
    let request: Request
    let method: String
    let path: Path
    /// The URL ended in `/.priority.json`.
    let priorityTarget: Bool
    let options: RequestOptions
    let namespace: String
    let caller: Caller
    /// The request's time (ms): server timestamps in the body and `now` in rules are the same
    /// instant, so `newData.val() == now` holds for `{".sv": "timestamp"}`.
    let now: Int64
    /// The client's address, which stream limits count by (worked out when a stream opens).
    let client: @Sendable () -> String
    /// `<path>.csv`: the children as CSV rows (reads only).
    let csv: Bool
    /// The request's channel (a stream's pump runs on its event loop and ends when its
    /// client goes away).
    let channel: any Channel

    var wantsETag: Bool { request.headers[ResponseFactory.firebaseETagHeader]?.lowercased() == "true" }
    var ifMatch: String? { request.headers[.ifMatch] }
    var ifNoneMatch: String? { request.headers[.ifNoneMatch] }

    func handle() async throws -> Response {
        try checkOptions()
        switch method {
        case "GET":
            if StreamRequestHandler.wantsStream(request) && !csv { return try await stream() }
            return try read()
        case "PUT", "POST", "PATCH", "DELETE": return try await write()
        default: throw ServiceError.methodNotAllowed(method)
        }
    }

    /// True for the requests ``readWithoutWaiting()`` answers: JSON reads that are not
    /// streams. ``handle()`` answers the others.
    static func readsWithoutWaiting(_ request: Request, method: String, csv: Bool) -> Bool {
        method == "GET" && !csv && !StreamRequestHandler.wantsStream(request)
    }

    /// The answer to a JSON read that is not a stream (see ``readsWithoutWaiting(_:method:csv:)``).
    func readWithoutWaiting() throws -> BufferedResponse {
        try checkOptions()
        return try readJSON()
    }

    /// Refuses options the method cannot take.
    func checkOptions() throws {
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
    }

    // MARK: Reads

    func read() throws -> Response {
        guard csv else { return try readJSON().response }
        switch try service.read(try readRequest(), as: caller, now: now) {
        case .children(let entries): return ResponseFactory.csv(entries, options: options)
        case .value(let node): return ResponseFactory.csv(node.children, options: options)
        }
    }

    func readRequest() throws -> DatabaseService.Read {
        let query = try Query.parse(options.query, implicitKeyOrder: options.shallow)
        return DatabaseService.Read(namespace: namespace, path: path, query: query, priority: priorityTarget)
    }

    /// A read answered as JSON: the value, or a query's children in order.
    func readJSON() throws -> BufferedResponse {
        switch try service.read(try readRequest(), as: caller, now: now) {
        case .children(var entries):
            if options.shallow { entries = entries.map { ChildEntry(key: $0.key, value: .bool(true)) } }
            return ResponseFactory.entries(entries, options: options)
        case .value(var node):
            // The ETag is that of the data itself (not of a shallow view), so it works in if-match.
            let etag = wantsETag || ifNoneMatch != nil ? ETag.of(node) : nil
            if options.shallow { node = node.shallow }
            var headers = HTTPFields()
            if let etag {
                headers[ResponseFactory.etagHeader] = etag
                if let ifNoneMatch, ifNoneMatch == etag {
                    var notModified = ResponseFactory.baseHeaders()
                    notModified[ResponseFactory.etagHeader] = etag
                    notModified[.contentType] = nil
                    return BufferedResponse(status: .notModified, headers: notModified)
                }
            }
            return ResponseFactory.node(node, options: options, headers: headers)
        }
    }

    /// A realtime stream of the location (or of a live query), after the same checks as a read.
    func stream() async throws -> Response {
        let query = try Query.parse(options.query, implicitKeyOrder: false)
        guard !priorityTarget else { throw DataError("Streams of a priority are not supported.") }
        let lastEventID = request.headers[StreamRequestHandler.lastEventIDHeader]
            .flatMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
        let listener = try await service.listen(
            namespace: namespace, path: path, query: query, as: caller, client: client(), from: lastEventID, now: now)
        return StreamRequestHandler(
            caller: caller, listener: listener, metrics: service.metrics, channel: channel
        ).respond()
    }

    // MARK: Writes

    func body() async throws -> ByteBuffer {
        try await RequestBody.read(request, limit: service.configuration.maxBodyBytes)
    }

    /// The write the request asks for, from its body (already read). Server timestamps are
    /// the time the request was read.
    func writeRequest(body buffer: ByteBuffer) throws -> WriteRequest {
        switch method {
        case "PUT":
            let parsed = try parse(buffer, depth: path.depth)
            let operation: WriteRequest.Operation =
                priorityTarget ? .setPriority(try Priority(written: parsed)) : .set(parsed)
            return WriteRequest(path: path, operation: operation, ifMatch: ifMatch)
        case "DELETE":
            let operation: WriteRequest.Operation = priorityTarget ? .setPriority(nil) : .set(ParsedNode(node: .null))
            return WriteRequest(path: path, operation: operation, ifMatch: ifMatch)
        case "POST":
            return WriteRequest(path: path, operation: .push(try parse(buffer, depth: path.depth + 1)))
        case "PATCH":
            let parseOptions = JSONParser.Options(serverTime: now)
            let entries = try buffer.withUnsafeReadableBytes { bytes throws -> [UpdateEntry] in
                try JSONParser.parseUpdate(bytes, locationDepth: path.depth, options: parseOptions)
            }
            return WriteRequest(path: path, operation: .update(entries))
        default:
            throw ServiceError.methodNotAllowed(method)
        }
    }

    /// Refuses, before the body is read, what a write cannot be.
    func checkWrite() throws {
        switch method {
        case "POST":
            guard !priorityTarget else { throw DataError("Invalid path: can't POST to a priority.") }
            guard path.depth < Path.maxDepth else { throw DataError.invalidPath("Path is too deep") }
        case "PATCH":
            guard !priorityTarget else { throw DataError("Invalid path: can't PATCH a priority.") }
            guard !wantsETag else { throw DataError("X-Firebase-ETag is not supported for PATCH requests.") }
        default:
            break
        }
    }

    func parse(_ buffer: ByteBuffer, depth: Int) throws -> ParsedNode {
        let parseOptions = JSONParser.Options(maxDepth: Path.maxDepth - depth, serverTime: now)
        return try buffer.withUnsafeReadableBytes { bytes throws -> ParsedNode in
            try JSONParser.parse(bytes, options: parseOptions)
        }
    }

    /// A write: its body is read (a DELETE's is not), then it is made and answered.
    func write() async throws -> Response {
        try checkWrite()
        let buffer = method == "DELETE" ? ByteBuffer() : try await body()
        return answer(try await service.write(try writeRequest(body: buffer), in: namespace, as: caller, now: now)).response
    }

    /// Starts the write of a request whose body has been read, without waiting: the answer
    /// comes from the returned write's ``DatabaseService/StartedWrite/whenDone(_:)``, through
    /// ``answer(_:)``.
    func startWriteWithoutWaiting(body: ByteBuffer) throws -> DatabaseService.StartedWrite {
        try checkOptions()
        try checkWrite()
        // (A DELETE's body is not read, as on the async path.)
        guard method == "DELETE" || body.readableBytes <= service.configuration.maxBodyBytes else {
            throw RequestBody.exceeded(service.configuration.maxBodyBytes)
        }
        return try service.startWrite(try writeRequest(body: body), in: namespace, as: caller, now: now)
    }

    /// Answers a write as Firebase does: the data written (PUT, PATCH, DELETE), the new name
    /// (POST), or 412 with the current value when `if-match` did not match.
    func answer(_ result: DatabaseService.WriteResult) -> BufferedResponse {
        switch result {
        case .conditionFailed(let current):
            var headers = HTTPFields()
            headers[ResponseFactory.etagHeader] = ETag.of(current)
            var responseOptions = options
            responseOptions.print = options.print == .pretty ? .pretty : .normal
            return ResponseFactory.node(current, options: responseOptions, status: .preconditionFailed, headers: headers)
        case .pushed(let name, let stored):
            let body = Node.object(ChildMap(sortedEntries: [ChildEntry(key: "name", value: .string(name.string))]))
            var headers = HTTPFields()
            if wantsETag { headers[ResponseFactory.etagHeader] = ETag.of(stored) }
            return ResponseFactory.node(body, options: options, headers: headers)
        case .written(let value):
            var headers = HTTPFields()
            if wantsETag || ifMatch != nil { headers[ResponseFactory.etagHeader] = ETag.of(value) }
            return ResponseFactory.node(value, options: options, headers: headers)
        }
    }
}

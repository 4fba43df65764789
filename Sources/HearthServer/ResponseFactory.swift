import HTTPTypes
import HearthCore
import Hummingbird
import NIOCore

/// Builds responses with Firebase's headers and body layout.
enum ResponseFactory {
    static let etagHeader = HTTPField.Name("ETag")!
    static let firebaseETagHeader = HTTPField.Name("X-Firebase-ETag")!
    static let methodOverrideHeader = HTTPField.Name("X-HTTP-Method-Override")!

    /// Headers every data response carries.
    static func baseHeaders(contentType: String = "application/json; charset=utf-8") -> HTTPFields {
        guard contentType == jsonContentType else { return makeBaseHeaders(contentType: contentType) }
        return jsonBaseHeaders
    }

    static let jsonContentType = "application/json; charset=utf-8"
    /// Built once: every answer starts from a copy (a copy shares storage until it changes).
    private static let jsonBaseHeaders = makeBaseHeaders(contentType: jsonContentType)

    private static func makeBaseHeaders(contentType: String) -> HTTPFields {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.cacheControl] = "no-cache"
        headers[.accessControlAllowOrigin] = "*"
        return headers
    }

    /// The base headers, with any of `extra` replacing a base header of the same name.
    static func baseHeaders(overriddenBy extra: HTTPFields) -> HTTPFields {
        var headers = baseHeaders()
        for field in extra { headers[field.name] = field.value }
        return headers
    }

    /// A JSON response from raw bytes.
    static func json(_ bytes: UnsafeRawBufferPointer, status: HTTPResponse.Status = .ok, headers extra: HTTPFields = [:])
        -> BufferedResponse
    {
        let headers = baseHeaders(overriddenBy: extra)
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return BufferedResponse(status: status, headers: headers, body: buffer)
    }

    /// A node serialised as the request asked (pretty, export, JSONP).
    static func node(
        _ node: Node, options: RequestOptions, status: HTTPResponse.Status = .ok, headers extra: HTTPFields = [:]
    ) -> BufferedResponse {
        document(options: options, status: status, headers: extra) { $0.write(node) }
    }

    /// A query result: the matching children in query order.
    static func entries(_ entries: [ChildEntry], options: RequestOptions, headers extra: HTTPFields = [:]) -> BufferedResponse {
        document(options: options, headers: extra) { $0.write(orderedEntries: entries) }
    }

    /// A JSON document written by `body`, shaped as the request asked (pretty, export, JSONP,
    /// download).
    static func document(
        options: RequestOptions, status: HTTPResponse.Status = .ok, headers extra: HTTPFields = [:],
        _ body: (inout JSONWriter) -> Void
    ) -> BufferedResponse {
        if options.print == .silent { return silent(headers: extra) }
        var writer = JSONWriter(
            options: JSONWriter.Options(layout: options.print == .pretty ? .pretty : .compact, export: options.export),
            capacity: 256)
        if let callback = options.callback { writer.output.append(callback + "(") }
        body(&writer)
        var headers = extra
        if options.callback != nil {
            writer.output.append(");")
            headers[.contentType] = "application/javascript; charset=utf-8"
        }
        setDownload(options, in: &headers)
        return writer.output.withBytes { json($0, status: status, headers: headers) }
    }

    /// `download=<name>`: `Content-Disposition: attachment`, with characters that could break
    /// out of the quoted file name removed.
    static func setDownload(_ options: RequestOptions, in headers: inout HTTPFields) {
        guard let download = options.download else { return }
        let safe = download.filter { $0 != "\"" && $0 != "\\" && !$0.isNewline }
        headers[.contentDisposition] = "attachment; filename=\"\(safe)\""
    }

    /// `print=silent`: 204 and no body.
    static func silent(headers extra: HTTPFields = [:]) -> BufferedResponse {
        var headers = baseHeaders(overriddenBy: extra)
        headers[.contentType] = nil
        return BufferedResponse(status: .noContent, headers: headers)
    }

    /// `{"status": "<value>"}`, the answer of `/.health` and `/.ready`.
    static func status(_ value: String) -> BufferedResponse {
        node(.object(ChildMap(sortedEntries: [ChildEntry(key: "status", value: .string(value))])), options: RequestOptions())
    }

    /// Firebase's error body (`{\n  "error" : "<message>"\n}\n`) with `status`.
    static func error(_ status: HTTPResponse.Status, _ message: String) -> BufferedResponse {
        errorBody(message).withUnsafeBytes { json($0, status: status) }
    }

    /// The bytes of Firebase's error body.
    static func errorBody(_ message: String) -> [UInt8] {
        let body = Node.object(ChildMap(sortedEntries: [ChildEntry(key: "error", value: .string(message))]))
        return JSONWriter.serialize(body, options: .pretty)
    }

    /// Children as CSV (see ``CSVWriter``), streamed in chunks: the columns are found first,
    /// then rows are written as they are encoded, never the whole text at once.
    static func csv(_ children: some Sequence<ChildEntry> & Sendable, options: RequestOptions) -> Response {
        var headers = baseHeaders(contentType: "text/csv; charset=utf-8")
        setDownload(options, in: &headers)
        let columns = CSVWriter.columns(of: children)
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            var encoder = CSVEncoder(columns: columns)
            var output = encoder.header
            for child in children {
                encoder.append(child, to: &output)
                if output.count >= 256 * 1024 {
                    try await writer.write(ByteBuffer(bytes: output))
                    output.removeAll(keepingCapacity: true)
                }
            }
            if !output.isEmpty { try await writer.write(ByteBuffer(bytes: output)) }
            try await writer.finish(nil)
        })
    }

    /// An HTML page (the console), never cached, not framed by other sites.
    static func page(_ html: String) -> BufferedResponse {
        var headers = baseHeaders(contentType: "text/html; charset=utf-8")
        headers[.accessControlAllowOrigin] = nil
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline' 'self'; img-src 'self' data:; frame-ancestors 'none'"
        return BufferedResponse(status: .ok, headers: headers, body: ByteBuffer(string: html))
    }

    /// `302` to `location`.
    static func redirect(to location: String) -> BufferedResponse {
        var headers = baseHeaders()
        headers[.location] = location
        headers[.contentType] = nil
        return BufferedResponse(status: .found, headers: headers)
    }
}

import HTTPTypes
import HearthCore
import HearthStorage
import Hummingbird
import NIOCore

/// `/.metrics`: the server's counters in Prometheus' text format, with the gauges read at the
/// time of the scrape. On the main port it needs the admin token; with `--metrics-address` it
/// is also served, without a credential, on a listener of its own (see ``MetricsResponder``).
struct MetricsEndpoint: Sendable {
    let metrics: ServerMetrics
    let streams: StreamRegistry
    let namespaces: NamespaceRegistry
    /// The storage, for the disk-usage gauges.
    let storage: StorageEngine?

    func response() async -> Response {
        let text = metrics.exposition(
            openStreams: await streams.streamCount(), namespaces: namespaces.names.count,
            disk: storage?.diskUsage() ?? StorageDiskUsage())
        var headers = ResponseFactory.baseHeaders(contentType: "text/plain; version=0.0.4; charset=utf-8")
        headers[.accessControlAllowOrigin] = nil
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: text)))
    }
}

/// The listener of `--metrics-address` (for example `127.0.0.1:9091`): `GET /.metrics` for
/// Prometheus without a credential, and `/.health`. Nothing else is served there, so the
/// address can be opened to a scraper without opening the data.
public struct MetricsResponder: HTTPResponder {
    public typealias Context = HearthRequestContext
    let endpoint: MetricsEndpoint

    public func respond(to request: Request, context: Context) async throws -> Response {
        switch request.uri.path {
        case "/.metrics":
            guard request.method == .get else {
                return ResponseFactory.error(.methodNotAllowed, "Method \(request.method.rawValue) is not allowed here.").response
            }
            return await endpoint.response()
        case "/.health":
            return ResponseFactory.status("ok").response
        default:
            return ResponseFactory.error(.notFound, "Not found: this address serves only /.metrics and /.health.").response
        }
    }
}

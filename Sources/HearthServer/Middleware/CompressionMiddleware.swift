import Hummingbird

/// Compresses answers for clients that accept it (gzip preferred, else deflate; see
/// ``ResponseCompression``), event streams too unless `compress-streams` is off.
struct CompressionMiddleware: RouterMiddleware {
    typealias Context = HearthRequestContext
    let compressStreams: Bool

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var response = try await next(request, context)
        let isStream = response.headers[.contentType]?.hasPrefix("text/event-stream") == true
        if !isStream || compressStreams {
            ResponseCompression.apply(to: &response, acceptEncoding: request.headers[.acceptEncoding])
        }
        return response
    }

    /// Compresses an answer held in memory for a client that accepts it (answers are never
    /// streams here).
    func apply(to answer: inout BufferedResponse, request: Request) {
        ResponseCompression.apply(to: &answer, acceptEncoding: request.headers[.acceptEncoding])
    }
}

import HTTPTypes
import Hummingbird

/// CORS as configured: `*` (Firebase's behaviour, the default), or only the listed origins,
/// each answered with its own name and `Vary: Origin`. Answers that allow an origin also
/// expose `X-Request-Id` and `ETag` to the page. (Preflights are answered by the responder.)
struct CORSHeadersMiddleware: RouterMiddleware {
    typealias Context = HearthRequestContext
    /// `["*"]`, or the origins allowed.
    let allowedOrigins: [String]

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var response = try await next(request, context)
        guard response.headers[.accessControlAllowOrigin] != nil else { return response }
        response.headers[.accessControlExposeHeaders] = "X-Request-Id, ETag"
        guard !allowedOrigins.contains("*") else { return response }
        if let origin = request.headers[.origin], allowedOrigins.contains(origin) {
            response.headers[.accessControlAllowOrigin] = origin
        } else {
            response.headers[.accessControlAllowOrigin] = nil
        }
        response.headers[.vary] = "Origin"
        return response
    }
}

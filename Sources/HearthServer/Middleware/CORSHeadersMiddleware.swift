import HTTPTypes
import Hummingbird

/// CORS as configured: `*` (Firebase's behaviour, the default), or only the listed origins,
/// each answered with its own name and `Vary: Origin`. Answers that allow an origin also
/// expose `X-Request-Id` and `ETag` to the page. (Preflights are answered by the responder.)
struct CORSHeadersMiddleware: RouterMiddleware {
    typealias Context = HearthRequestContext
    /// `["*"]`, or the origins allowed.
    let allowedOrigins: [String]
    let allowsEveryOrigin: Bool

    init(allowedOrigins: [String]) {
        self.allowedOrigins = allowedOrigins
        allowsEveryOrigin = allowedOrigins.contains("*")
    }

    static let exposeHeaders = HTTPField(name: .accessControlExposeHeaders, value: "X-Request-Id, ETag")

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var response = try await next(request, context)
        apply(to: &response.headers, request: request)
        return response
    }

    /// Sets the CORS headers of an answer's `headers` to `request`.
    func apply(to headers: inout HTTPFields, request: Request) {
        guard headers.contains(.accessControlAllowOrigin) else { return }
        headers.set(CORSHeadersMiddleware.exposeHeaders)
        guard !allowsEveryOrigin else { return }
        if let origin = request.headers[.origin], allowedOrigins.contains(origin) {
            headers[.accessControlAllowOrigin] = origin
        } else {
            headers[.accessControlAllowOrigin] = nil
        }
        headers[.vary] = "Origin"
    }
}

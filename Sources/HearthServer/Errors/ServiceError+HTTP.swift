import HTTPTypes
import Hummingbird

/// How every refused or failed request is answered over HTTP: the status for each code, and
/// Firebase's body, `{"error": "<message>"}`. The one place errors become HTTP.
extension ServiceError: HTTPResponseError {
    public var status: HTTPResponse.Status {
        switch code {
        case .invalidRequest: .badRequest
        case .unauthenticated, .permissionDenied: .unauthorized
        case .notFound: .notFound
        case .methodNotAllowed: .methodNotAllowed
        case .conditionFailed: .preconditionFailed
        case .tooLarge: .contentTooLarge
        case .unsupportedEncoding: .unsupportedMediaType
        case .tooManyRequests: .tooManyRequests
        case .internalError: .internalServerError
        case .unavailable: .serviceUnavailable
        case .insufficientStorage: HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage")
        case .http(let status): HTTPResponse.Status(code: status)
        }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response
    }

    /// The answer: the status, the error body, and `Retry-After` when there is a wait.
    var response: Response { answer.response }

    /// The answer, held in memory.
    var answer: BufferedResponse {
        var answer = ResponseFactory.error(status, message)
        if case .tooManyRequests(let seconds?) = code { answer.headers[.retryAfter] = String(seconds) }
        return answer
    }
}

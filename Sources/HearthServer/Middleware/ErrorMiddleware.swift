import Hummingbird
import Logging

/// Answers every error a request ends with, in one place: the error becomes a
/// ``ServiceError`` (what an operator should know is logged on the way) and its HTTP answer.
/// Rule denials and refusals of oversized bodies are counted here.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = HearthRequestContext
    let metrics: ServerMetrics

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return answer(to: error, context: context).response
        }
    }

    /// The answer to `error`, counted and logged.
    func answer(to error: any Error, context: Context) -> BufferedResponse {
        let failure = ServiceError(error) { level, message in context.logger.log(level: level, "\(message)") }
        switch failure.code {
        case .permissionDenied: metrics.ruleDenials.increment()
        case .tooLarge: metrics.countRefusal(.bodySize)
        case .unauthenticated: context.logger.debug("unauthorized: \(failure.message)")
        default: break
        }
        return failure.answer
    }
}

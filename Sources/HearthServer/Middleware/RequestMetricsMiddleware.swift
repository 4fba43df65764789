import HTTPTypes
import Hummingbird

/// Counts every answered request by method and status, and how long it took to answer (for a
/// stream: to start it), in `/.metrics`.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = HearthRequestContext
    let metrics: ServerMetrics

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let started = ContinuousClock.now
        let response = try await next(request, context)
        record(request, status: response.status, started: started)
        return response
    }

    /// Counts an answered request and how long it took.
    func record(_ request: Request, status: HTTPResponse.Status, started: ContinuousClock.Instant) {
        metrics.requestDuration.record(ContinuousClock.now - started)
        metrics.countRequest(method: request.method.rawValue, status: Int(status.code))
    }
}

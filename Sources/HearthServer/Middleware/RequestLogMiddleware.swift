import HTTPTypes
import Hummingbird
import Logging

/// Names every answer with the request's id (`X-Request-Id`, the `hb.request.id` of the
/// server's log), and at `debug` logs one line per request: method, path, status, client and
/// time. The path only: query strings may carry tokens (`auth=`), which are never logged.
struct RequestLogMiddleware: RouterMiddleware {
    typealias Context = HearthRequestContext
    let clientAddresses: ClientAddressResolver

    static let requestIDHeader = HTTPField.Name("X-Request-Id")!

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let started = ContinuousClock.now
        var response = try await next(request, context)
        finish(request, status: response.status, headers: &response.headers, started: started, context: context)
        return response
    }

    /// Logs the answered request (at `debug`) and names the answer with the request's id.
    func finish(
        _ request: Request, status: HTTPResponse.Status, headers: inout HTTPFields, started: ContinuousClock.Instant,
        context: Context
    ) {
        if context.logger.logLevel <= .debug {
            let elapsed = ContinuousClock.now - started
            let client = clientAddresses.client(of: request, context: context)
            context.logger.debug(
                "request", metadata: [
                    "method": "\(request.method.rawValue)", "path": "\(request.uri.path)",
                    "status": "\(status.code)", "client": "\(client)",
                    "ms": "\(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)",
                ])
        }
        headers.set(HTTPField(name: RequestLogMiddleware.requestIDHeader, value: context.id))
    }
}

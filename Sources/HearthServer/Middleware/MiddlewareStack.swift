import Hummingbird

/// The responder with the HTTP concerns around it, each a middleware of its own (outermost
/// first): compression, CORS, the request id and log, request metrics, and the answer to
/// errors. The responder itself only routes and answers.
struct MiddlewareStackResponder<Stack: MiddlewareProtocol<Request, Response, HearthRequestContext>>: HTTPResponder {
    typealias Context = HearthRequestContext
    let stack: Stack
    let responder: HearthResponder

    func respond(to request: Request, context: Context) async throws -> Response {
        try await stack.handle(request, context: context) { request, context in
            try await responder.respond(to: request, context: context)
        }
    }
}

/// `responder` inside the middleware its configuration asks for: what the server runs.
func withMiddleware(_ responder: HearthResponder) -> some HTTPResponder<HearthRequestContext> {
    MiddlewareStackResponder(stack: middleware(for: responder), responder: responder)
}

@MiddlewareFixedTypeBuilder<Request, Response, HearthRequestContext>
func middleware(for responder: HearthResponder) -> some MiddlewareProtocol<Request, Response, HearthRequestContext> {
    CompressionMiddleware(compressStreams: responder.configuration.compressStreams)
    CORSHeadersMiddleware(allowedOrigins: responder.configuration.corsOrigins)
    RequestLogMiddleware(clientAddresses: responder.configuration.clientAddresses)
    RequestMetricsMiddleware(metrics: responder.metrics)
    ErrorMiddleware(metrics: responder.metrics)
}

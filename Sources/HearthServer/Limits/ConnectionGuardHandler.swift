import HTTPTypes
import HearthCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Sits on every HTTP/1 connection and HTTP/2 stream, after the HTTP codec, and enforces the
/// connection-level limits of ``ServerLimits``:
///
/// - a connection beyond `maxConnections` gets `503` at its first request, then is closed;
/// - a request head over `maxHeaderBytes` (the HTTP/1 decoder's limit) gets `431`;
/// - a client that does not deliver a request head within `requestTimeout` (counted from the
///   connection's start or the previous response's end: slow-loris clients and idle
///   keep-alive connections alike), or pauses longer than that inside a body, is disconnected.
///   Responses, streams included, are never timed: only what the client owes.
final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    enum State {
        /// Waiting for the client's next request head (timed).
        case awaitingHead
        /// Reading a request body (each pause timed).
        case readingBody
        /// The request is in; the server is answering (not timed).
        case responding
        /// The connection was refused or broke a limit; it is closing and reads are dropped.
        case closing
    }

    private let limiter: ConnectionLimiter
    private let timeout: TimeAmount
    private var state = State.awaitingHead
    private var timer: Scheduled<Void>?
    private var admitted = true
    private var isHTTP2Stream = false
    private let metrics: ServerMetrics

    init(limiter: ConnectionLimiter, timeout: Duration, metrics: ServerMetrics) {
        self.limiter = limiter
        self.timeout = TimeAmount(timeout)
        self.metrics = metrics
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let connection = ConnectionLimiter.connection(of: context.channel)
        isHTTP2Stream = connection !== context.channel
        admitted = limiter.admit(connection)
        // HTTP has started: the connection's own setup deadline (TLS handshake) is met.
        SetupDeadlineHandler.lift(on: connection)
        armTimer(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state != .closing else { return }
        switch unwrapInboundIn(data) {
        case .head:
            guard admitted else {
                metrics.countRefusal(.connections)
                reject(
                    context: context, status: .serviceUnavailable,
                    message: "Service unavailable: the server is serving its limit of \(limiter.limit) connections; try again later.")
                return
            }
            state = .readingBody
            armTimer(context: context)
        case .body:
            if state == .readingBody { armTimer(context: context) }
        case .end:
            // (If the answer went out before the body was read, the next head is owed already.)
            if state == .readingBody {
                state = .responding
                cancelTimer()
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), state == .responding || state == .readingBody {
            // The answer is complete (possibly before the body was read): the client's next
            // request head is owed from now.
            state = .awaitingHead
            armTimer(context: context)
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parserError = error as? HTTPParserError, parserError == .headerOverflow, state != .closing {
            metrics.countRefusal(.headerSize)
            reject(
                context: context, status: HTTPResponse.Status(code: 431, reasonPhrase: "Request Header Fields Too Large"),
                message: "Request header fields too large: the request line and headers exceed the server's limit.")
            return
        }
        context.fireErrorCaught(error)
    }

    private func armTimer(context: ChannelHandlerContext) {
        timer?.cancel()
        guard state == .awaitingHead || state == .readingBody else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            let (handler, context) = loopBound.value
            guard handler.state == .awaitingHead || handler.state == .readingBody else { return }
            handler.state = .closing
            handler.metrics.countRefusal(.timeout)
            context.close(promise: nil)
        }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
    }

    /// Answers with `status` and a Firebase-style error body, then closes: for HTTP/1 the
    /// sending side first, so the client reads the answer before the connection goes.
    private func reject(context: ChannelHandlerContext, status: HTTPResponse.Status, message: String) {
        state = .closing
        cancelTimer()
        let body = ByteBuffer(bytes: ResponseFactory.errorBody(message))
        var fields: HTTPFields = [.contentType: "application/json; charset=utf-8", .contentLength: String(body.readableBytes)]
        if !isHTTP2Stream { fields[.connection] = "close" }
        context.write(wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            let context = loopBound.value
            // Let the client read the answer: a close with unread request bytes would reset
            // the connection and could discard it.
            context.close(mode: .output, promise: nil)
            context.eventLoop.scheduleTask(in: .seconds(2)) {
                let context = loopBound.value
                // An HTTP/2 stream's connection goes too: it was the one refused.
                if let connection = context.channel.parent, connection.parent != nil { connection.close(promise: nil) }
                context.close(promise: nil)
            }
        }
    }
}

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
///   Responses, streams included, are never timed: only what the client owes. With pipelined
///   requests, the next head is owed only once every request before it is answered.
final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let limiter: ConnectionLimiter
    private let timeout: TimeAmount
    private let metrics: ServerMetrics
    /// The one scheduled check and when it fires. Moving the deadline later does not touch
    /// it: when it fires early, it schedules itself again for the deadline (a cancel and a
    /// new task for every request cost 4% of a small request).
    private var timer: Scheduled<Void>?
    private var timerFiresAt: NIODeadline?
    /// When the client has owed something for too long; nil while it owes nothing.
    private var deadline: NIODeadline?
    /// The client went: it closed its sending side (HTTP/1), or the channel closed.
    private var clientGone = false
    /// Called once when the client goes (an open stream's end); one per channel, replaced by
    /// the next stream's.
    private var onClientGone: (@Sendable () -> Void)?
    private var admitted = true
    private var isHTTP2Stream = false
    /// Requests whose head has arrived and whose response has not ended. HTTP/1 clients may
    /// pipeline, so this can exceed one.
    private var unanswered = 0
    /// A request body is being read (its pauses are timed).
    private var readingBody = false
    /// The connection was refused or broke a limit: it is closing and reads are dropped.
    private var closing = false

    /// Refused connections are closed after this long if they send nothing, so that they do
    /// not hold a descriptor for the whole request timeout.
    static let refusedGrace = TimeAmount.seconds(2)

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
        armTimer(context: context, after: admitted ? timeout : min(timeout, ConnectionGuardHandler.refusedGrace))
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        dropTimer()
    }

    func channelInactive(context: ChannelHandlerContext) {
        dropTimer()
        clientWent()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, !isHTTP2Stream { clientWent() }
        context.fireUserInboundEventTriggered(event)
    }

    private func clientWent() {
        clientGone = true
        let callback = onClientGone
        onClientGone = nil
        callback?()
    }

    /// Calls `callback` when the client goes away: when the channel closes, or when an HTTP/1
    /// client closes its sending side (the server allows half-closed connections, so that
    /// alone does not close the channel). For a response that lasts (an event stream),
    /// without a task per stream reading the request for its end: such a task kept about
    /// 9 KB per idle stream. Call from any thread.
    static func whenClientGoes(on channel: any Channel, _ callback: @escaping @Sendable () -> Void) {
        channel.eventLoop.execute {
            guard let handler = try? channel.pipeline.syncOperations.handler(type: ConnectionGuardHandler.self) else {
                // No guard (a test's channel), or the pipeline is already taken down.
                if !channel.isActive { callback() }
                return
            }
            if handler.clientGone {
                callback()
            } else {
                handler.onClientGone = callback
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        switch unwrapInboundIn(data) {
        case .head:
            guard admitted else {
                metrics.countRefusal(.connections)
                reject(
                    context: context, status: .serviceUnavailable,
                    message: "Service unavailable: the server is serving its limit of \(limiter.limit) connections; try again later.")
                return
            }
            unanswered += 1
            readingBody = true
            armTimer(context: context, after: timeout)
        case .body:
            if readingBody { armTimer(context: context, after: timeout) }
        case .end:
            readingBody = false
            cancelTimer()
            // (If every answer went out before this body was read, the next head is owed now.)
            if unanswered == 0 { armTimer(context: context, after: timeout) }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), unanswered > 0 {
            unanswered -= 1
            // Everything asked is answered: the client's next request head is owed from now.
            if unanswered == 0 && !readingBody { armTimer(context: context, after: timeout) }
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parserError = error as? HTTPParserError, parserError == .headerOverflow, !closing {
            metrics.countRefusal(.headerSize)
            guard unanswered == 0 else {
                // A response is under way: a 431 now would land inside it. Just close.
                closing = true
                cancelTimer()
                context.close(promise: nil)
                return
            }
            reject(
                context: context, status: HTTPResponse.Status(code: 431, reasonPhrase: "Request Header Fields Too Large"),
                message: "Request header fields too large: the request line and headers exceed the server's limit.")
            return
        }
        context.fireErrorCaught(error)
    }

    /// The client owes something from now: the connection is closed if it has not come
    /// within `delay`.
    private func armTimer(context: ChannelHandlerContext, after delay: TimeAmount) {
        let due = context.eventLoop.now + delay
        deadline = due
        if let firesAt = timerFiresAt, firesAt <= due { return }
        schedule(context: context, at: due)
    }

    /// The client owes nothing now.
    private func cancelTimer() {
        deadline = nil
    }

    private func schedule(context: ChannelHandlerContext, at due: NIODeadline) {
        timer?.cancel()
        timerFiresAt = due
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: due) {
            let (handler, context) = loopBound.value
            handler.timer = nil
            handler.timerFiresAt = nil
            guard let deadline = handler.deadline, !handler.closing else { return }
            if deadline > context.eventLoop.now {
                handler.schedule(context: context, at: deadline)
                return
            }
            handler.closing = true
            handler.metrics.countRefusal(handler.admitted ? .timeout : .connections)
            context.close(promise: nil)
        }
    }

    /// The connection is gone: the check is dropped.
    private func dropTimer() {
        deadline = nil
        timer?.cancel()
        timer = nil
        timerFiresAt = nil
    }

    /// Answers with `status` and a Firebase-style error body, then closes: for HTTP/1 the
    /// sending side first, so the client reads the answer before the connection goes.
    private func reject(context: ChannelHandlerContext, status: HTTPResponse.Status, message: String) {
        closing = true
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

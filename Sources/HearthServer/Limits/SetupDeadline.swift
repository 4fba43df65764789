import HummingbirdCore
import HummingbirdWebSocket
import NIOHTTP1
import Logging
import NIOCore

/// Closes a connection that has not started speaking HTTP within the request timeout: with
/// TLS, a client that opens a connection and never finishes its handshake (or never sends a
/// request after it) would otherwise hold the connection forever, since the HTTP layer, and
/// with it ``ConnectionGuardHandler``, only starts after the handshake.
///
/// It sits first in the pipeline; ``ConnectionGuardHandler`` removes it when HTTP starts.
final class SetupDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let timeout: TimeAmount
    private let metrics: ServerMetrics
    private let limiter: ConnectionLimiter?
    private var timer: Scheduled<Void>?

    init(timeout: Duration, metrics: ServerMetrics, limiter: ConnectionLimiter? = nil) {
        self.timeout = TimeAmount(timeout)
        self.metrics = metrics
        self.limiter = limiter
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let metrics = self.metrics
        // The connection limit is decided as the connection opens: one over it that says
        // nothing is closed after a short grace, not the whole timeout (one that sends a
        // request is answered 503 by ``ConnectionGuardHandler``, which reads the verdict).
        let admitted = limiter?.admit(context.channel) ?? true
        let delay = admitted ? timeout : min(timeout, ConnectionGuardHandler.refusedGrace)
        timer = context.eventLoop.scheduleTask(in: delay) {
            metrics.countRefusal(admitted ? .timeout : .connections)
            loopBound.value.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    /// HTTP has started on `connection`: lift its deadline, if it has one. Call on the
    /// connection's event loop.
    static func lift(on connection: any Channel) {
        let pipeline = connection.pipeline.syncOperations
        guard let handler = try? pipeline.handler(type: SetupDeadlineHandler.self) else { return }
        pipeline.removeHandler(handler, promise: nil)
    }
}

/// A server child channel (here: TLS with HTTP/2 negotiation) with a ``SetupDeadlineHandler``
/// in front, and for a plain HTTP/1.1 connection answered inline, a ``ConnectionTaskGate``
/// that holds the inner channel's task back until the connection needs it.
struct DeadlinedChildChannel<Inner: ServerChildChannel>: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let inner: Inner.Value
        /// Completes when the connection needs the inner channel's task; nil: at once.
        let taskGate: EventLoopFuture<Void>?
        var channel: any Channel { inner.channel }
    }

    let inner: Inner
    let timeout: Duration
    let metrics: ServerMetrics
    /// Decides the connection limit as the connection opens, if given.
    var limiter: ConnectionLimiter? = nil
    /// Whether the inner channel's task waits for a ``ConnectionTaskGate`` (only for plain
    /// HTTP/1.1, where ``InlineAnswerHandler`` opens it).
    var gatesTask = false

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture { () -> EventLoopFuture<Void>? in
            // Reads start with 512-byte buffers (NIO's default is 2 KB) and grow when a read
            // fills one: the buffer is kept between reads, so an idle connection or stream
            // holds it (1.5 KB less per connection, measured).
            try channel.syncOptions?.setOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536))
            try channel.pipeline.syncOperations.addHandler(FlushCoalescingHandler())
            try channel.pipeline.syncOperations.addHandler(
                SetupDeadlineHandler(timeout: timeout, metrics: metrics, limiter: limiter))
            guard gatesTask else { return nil }
            let gate = ConnectionTaskGate(eventLoop: channel.eventLoop)
            try channel.pipeline.syncOperations.addHandler(gate, position: .first)
            return gate.opened
        }.flatMap { taskGate in
            inner.setup(channel: channel, logger: logger).map { Value(inner: $0, taskGate: taskGate) }
        }.flatMapThrowing { value in
            if Inner.self == HTTP1WebSocketUpgradeChannel.self {
                // Behind the HTTP/1.1 decoder: before the channel knows whether the request
                // upgrades, an oversized request head is answered here.
                try channel.pipeline.syncOperations.addHandler(HeadOverflowHandler(metrics: metrics), position: .last)
            }
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        if let taskGate = value.taskGate {
            let channel = value.channel
            await withTaskCancellationHandler {
                try? await taskGate.get()
            } onCancel: {
                channel.eventLoop.execute { ConnectionTaskGate.of(channel)?.open() }
            }
        }
        await inner.handle(value: value.inner, logger: logger)
    }
}

/// Answers `431` to a request head over `max-header-bytes` that arrives while the HTTP/1.1
/// channel still waits to know whether the request upgrades to WebSocket (so before
/// ``ConnectionGuardHandler``, which answers it afterwards, is in the pipeline).
final class HeadOverflowHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = HTTPServerResponsePart

    private let metrics: ServerMetrics
    private var answered = false

    init(metrics: ServerMetrics) {
        self.metrics = metrics
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError, parserError == .headerOverflow,
            (try? context.pipeline.syncOperations.handler(type: ConnectionGuardHandler.self)) == nil
        else {
            context.fireErrorCaught(error)
            return
        }
        guard !answered else { return }
        answered = true
        metrics.countRefusal(.headerSize)
        let body = ByteBuffer(bytes: ResponseFactory.errorBody(
            "Request header fields too large: the request line and headers exceed the server's limit."))
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Connection", value: "close")
        let head = HTTPResponseHead(version: .http1_1, status: .init(statusCode: 431, reasonPhrase: "Request Header Fields Too Large"),
            headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            loopBound.value.close(promise: nil)
        }
    }
}

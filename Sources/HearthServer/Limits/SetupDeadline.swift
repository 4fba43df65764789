import HummingbirdCore
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
    private var timer: Scheduled<Void>?

    init(timeout: Duration, metrics: ServerMetrics) {
        self.timeout = TimeAmount(timeout)
        self.metrics = metrics
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let metrics = self.metrics
        timer = context.eventLoop.scheduleTask(in: timeout) {
            metrics.countRefusal(.timeout)
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
/// in front.
struct DeadlinedChildChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value
    let inner: Inner
    let timeout: Duration
    let metrics: ServerMetrics

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(SetupDeadlineHandler(timeout: timeout, metrics: metrics))
        }.flatMap {
            inner.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

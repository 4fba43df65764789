import NIOCore

/// Sits at the socket end of every connection's pipeline and passes a flush on at the end of
/// the event loop's current round of tasks instead of at once.
///
/// Hummingbird's WebSocket writer and response body writer flush after every write, each write
/// arriving as its own event-loop task. A realtime connection answering 16 pipelined writes
/// that became durable together, or a stream catching up, would make 16 system calls; with the
/// flush put off until the tasks already queued have run, they leave in one. Nothing waits
/// longer than that round, and a close flushes first (a `431` or `503` written, flushed and
/// closed at once still leaves before the close).
final class FlushCoalescingHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var flushScheduled = false

    func flush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            guard self.flushScheduled else { return }
            self.flushScheduled = false
            context.flush()
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if flushScheduled {
            flushScheduled = false
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }
}

import NIOCore

/// Holds Hummingbird's task for a plain HTTP/1.1 connection back until the connection needs
/// it: until ``InlineAnswerHandler`` hands it a request (or an error, or an event such as the
/// server's shutdown), the request asks for a WebSocket upgrade, or the connection closes.
///
/// Why: a connection whose requests are all answered on the event loop (reads, small writes,
/// `/.health`) never needs that task, and a task keeps the memory its deepest call chain
/// needed until it ends: Hummingbird's, waiting for the next request after the first,
/// kept about 6 KB per idle connection (Docs/PERFORMANCE.md, "Connections without a task").
/// Held back, the task is one small frame waiting on a future.
///
/// A handler in the pipeline only so that the others can find it; it passes every event on
/// (NIO wants a handler to be inbound or outbound). It sits first: one call per socket read.
final class ConnectionTaskGate: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let promise: EventLoopPromise<Void>
    private var isOpen = false

    init(eventLoop: any EventLoop) {
        promise = eventLoop.makePromise(of: Void.self)
    }

    /// Completes when the gate opens.
    var opened: EventLoopFuture<Void> { promise.futureResult }

    func handlerAdded(context: ChannelHandlerContext) {
        // Closed before anything passed: the task runs, finds the channel closed, and ends.
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.channel.closeFuture.whenComplete { _ in loopBound.value.open() }
    }

    /// Lets the connection's task go on (once; later calls do nothing). On the event loop.
    func open() {
        guard !isOpen else { return }
        isOpen = true
        promise.succeed()
    }

    /// The gate of `channel`, if it has one. On the channel's event loop.
    static func of(_ channel: any Channel) -> ConnectionTaskGate? {
        try? channel.pipeline.syncOperations.handler(type: ConnectionTaskGate.self)
    }
}

import Foundation
import HTTPTypes
import HearthCore
import Hummingbird
import NIOCore
import ServiceLifecycle

/// `GET <path>.json` with `Accept: text/event-stream`: Firebase's realtime stream.
///
/// The first event is a `put` of the whole value (or, after `Last-Event-ID`, exactly the
/// changes missed); then `put`/`patch` events as changes become visible, each with
/// `id: <sequence>`; `keep-alive` events; `cancel` when the rules stop allowing the read;
/// `auth_revoked` when the credential expires. The stream ends when the client goes away or
/// the server shuts down.
struct StreamRequestHandler {
    let caller: Caller
    /// The subscription the service opened, with the client's stream slot.
    let listener: DatabaseService.Listener
    let metrics: ServerMetrics
    /// The request's channel: the pump runs on its event loop (see ``EventLoopTaskExecutor``),
    /// and the stream ends when its client goes away.
    let channel: any Channel

    static func wantsStream(_ request: Request) -> Bool {
        wantsStream(request.headers)
    }

    /// `Accept` names `text/event-stream`.
    static func wantsStream(_ headers: HTTPFields) -> Bool {
        headers[.accept]?.contains("text/event-stream") ?? false
    }

    /// `Last-Event-ID`: resume after this sequence number.
    static let lastEventIDHeader = HTTPField.Name("Last-Event-ID")!

    func respond() -> Response {
        let subscription = listener.subscription
        let outbox = listener.outbox
        let hub = listener.hub
        let expiry = expiryTask(for: outbox)
        var headers = ResponseFactory.baseHeaders(contentType: "text/event-stream; charset=utf-8")
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("X-Accel-Buffering")!] = "no"  // tell proxies not to buffer events
        let listener = self.listener
        let metrics = self.metrics
        let loopExecutor = EventLoopTaskExecutor(channel.eventLoop)
        let channel = self.channel
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            defer {
                expiry?.cancel()
                withExtendedLifetime(listener) {}
            }
            do {
                // When the client goes away or the server shuts down, the outbox ends and the
                // pump returns. (No extra tasks per stream: they would cost memory per client.)
                ConnectionGuardHandler.whenClientGoes(on: channel) { outbox.end(.client) }
                try await withGracefulShutdownHandler {
                    // Writing frames as they are is light: the pump runs on the connection's
                    // event loop. Compressing them is not: a compressed stream's pump stays on
                    // the global pool, with the event loops free.
                    let executor: any TaskExecutor = writer is GzipWriter ? globalConcurrentExecutor : loopExecutor
                    try await withTaskExecutorPreference(executor) {
                        try await StreamRequestHandler.pump(subscription, outbox: outbox, hub: hub, into: &writer)
                    }
                } onGracefulShutdown: {
                    outbox.end(.shutdown)
                }
            } catch {
                // The client went away (or the write failed): nothing more to send.
                outbox.end(.client)
            }
            metrics.countStreamEnd(outbox.endReason ?? .client)
            await hub.unsubscribe(subscription)
            try? await writer.finish(nil)
        })
    }

    /// Writes the outbox to the client until the stream ends.
    static func pump(
        _ subscription: Subscription, outbox: Outbox, hub: NamespaceStreams, into writer: inout any ResponseBodyWriter
    ) async throws {
        while true {
            let item = await withTaskCancellationHandler {
                await outbox.next()
            } onCancel: {
                outbox.end(.shutdown)
            }
            switch item {
            case .frame(let frame):
                try await writer.write(frame)
            case .resync:
                // The hub is an actor without an executor of its own: called from here it
                // would run on this task's preferred executor, and a resync encodes the whole
                // subtree. It runs on the global pool instead.
                await withTaskExecutorPreference(globalConcurrentExecutor) {
                    await hub.resync(subscription)
                }
            case .end(let frame):
                if let frame { try await writer.write(frame) }
                return
            }
        }
    }

    /// Ends the stream with `auth_revoked` when the caller's credential expires.
    func expiryTask(for outbox: Outbox) -> Task<Void, Never>? {
        guard let expiresAt = caller.expiresAt else { return nil }
        return Task {
            let seconds = expiresAt - Date().timeIntervalSince1970
            if seconds > 0 { try? await Task.sleep(for: .milliseconds(Int(min(seconds, 1e9) * 1000))) }
            guard !Task.isCancelled else { return }
            outbox.end(.authRevoked, with: ByteBuffer(bytes: StreamEvent.frame(event: "auth_revoked", data: "credential is no longer valid")))
        }
    }
}

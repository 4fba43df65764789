import HummingbirdCore
import HummingbirdHTTP2
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// A TLS connection whose protocol is chosen by ALPN: HTTP/2 for clients that ask for it,
/// else HTTP/1.1 with the realtime protocol's WebSocket upgrade (WebSocket clients, the
/// Firebase SDKs' among them, ask for HTTP/1.1 on their connections).
///
/// Hummingbird's own `HTTP2UpgradeChannel` serves plain HTTP/1.1 on the HTTP/1.1 side; this
/// channel is the same negotiation with the WebSocket-capable HTTP/1.1 channel instead.
struct TLSChannel: ServerChildChannel {
    enum Negotiated: Sendable {
        case http1(HTTP1WebSocketUpgradeChannel.Value)
        case http2(HTTP2Channel.Value)
    }

    struct Value: ServerChildChannelValue {
        let negotiated: EventLoopFuture<Negotiated>
        let channel: any Channel
    }

    let sslContext: NIOSSLContext
    let http1: HTTP1WebSocketUpgradeChannel
    let http2: HTTP2Channel
    let metrics: ServerMetrics

    /// The ALPN protocols offered, HTTP/2 first.
    static let applicationProtocols = ["h2", "http/1.1"]

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
            let negotiation = NIOTypedApplicationProtocolNegotiationHandler<Negotiated> { result in
                switch result {
                case .negotiated("h2"):
                    return http2.setup(channel: channel, logger: logger).map { .http2($0) }
                default:
                    return http1.setup(channel: channel, logger: logger).flatMapThrowing { value in
                        // Answers an oversized head before the channel knows whether it upgrades.
                        try channel.pipeline.syncOperations.addHandler(HeadOverflowHandler(metrics: metrics), position: .last)
                        return .http1(value)
                    }
                }
            }
            try channel.pipeline.syncOperations.addHandler(negotiation)
            return Value(negotiated: negotiation.protocolNegotiationResult, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.negotiated.get() {
            case .http1(let connection): await http1.handle(value: connection, logger: logger)
            case .http2(let connection): await http2.handle(value: connection, logger: logger)
            }
        } catch {
            logger.debug("TLS negotiation failed: \(error)")
        }
    }
}

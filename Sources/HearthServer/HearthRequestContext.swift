import Hummingbird
import NIOCore

/// The per-request context: Hummingbird's core (logger with `hb.request.id`, body limits) and
/// the client's address, which stream limits count by.
public struct HearthRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer of the connection (for HTTP/2, of the connection the stream belongs to).
    public let remoteAddress: SocketAddress?
    /// The channel the request came on (for HTTP/2, the request's stream): streams write
    /// from its event loop and end when its client goes away.
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }
}

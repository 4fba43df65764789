import Hummingbird
import NIOCore

/// The per-request context: Hummingbird's core (logger with `hb.request.id`, body limits) and
/// the client's address, which stream limits count by.
public struct HearthRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer of the connection (for HTTP/2, of the connection the stream belongs to).
    public let remoteAddress: SocketAddress?
    /// The event loop of the channel the request came on (streams write from it).
    public let eventLoop: any EventLoop

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        eventLoop = source.channel.eventLoop
    }
}

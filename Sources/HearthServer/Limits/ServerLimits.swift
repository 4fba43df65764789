import NIOCore

/// What one client may take from the server. Each limit is answered with a clear status
/// (`503`, `431`, `429`) or, for a client that stalls, by closing its connection, so that
/// nobody else is hurt.
public struct ServerLimits: Sendable {
    /// Largest request head (request line and headers), in bytes; more is answered `431`.
    public var maxHeaderBytes: Int
    /// Connections served at once (an HTTP/2 connection counts once); a connection beyond
    /// this is answered `503` at its first request and closed.
    public var maxConnections: Int
    /// Time a connection has to deliver a request's head (from opening, or from the end of the
    /// previous response), and the longest pause allowed inside a request body. A client
    /// that takes longer is disconnected.
    public var requestTimeout: Duration
    /// Streams one client address may have open at once; one more is answered `429`.
    public var maxStreamsPerClient: Int
    /// Listens one realtime connection may hold at once; one more is answered
    /// `too_many_listens`. (Each realtime connection also takes one of its client's streams.)
    public var maxListensPerConnection: Int
    /// Largest realtime message, in bytes once its frames are joined (Firebase: 16 MB per SDK
    /// write, and its envelope: 17 MiB by default); a larger one closes the connection.
    public var maxRealtimeMessageBytes: Int

    public init(
        maxHeaderBytes: Int = 64 * 1024, maxConnections: Int = 4096, requestTimeout: Duration = .seconds(60),
        maxStreamsPerClient: Int = 256, maxListensPerConnection: Int = 1000, maxRealtimeMessageBytes: Int = 17 << 20
    ) {
        self.maxListensPerConnection = maxListensPerConnection
        self.maxRealtimeMessageBytes = maxRealtimeMessageBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxConnections = maxConnections
        self.requestTimeout = requestTimeout
        self.maxStreamsPerClient = maxStreamsPerClient
    }
}

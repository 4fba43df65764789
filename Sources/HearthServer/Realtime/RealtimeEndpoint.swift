import HTTPTypes
import HearthCore
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import Synchronization

/// `/.ws?v=5&ns=<namespace>`: where the Firebase SDKs open their realtime connection, on the
/// same port as REST. Decides whether an upgrade request may become a connection (the path,
/// the connection limit, the client's stream allowance) and starts it.
struct RealtimeEndpoint: Sendable {
    let service: DatabaseService
    let callers: CallerResolver
    let configuration: ServerConfiguration
    let limiter: ConnectionLimiter
    /// Open connections by their session's wire id, so a reconnecting client (`ls=`) ends its
    /// previous connection if the server still holds it (a half-open TCP connection), and a
    /// long-polling client (`s=`) moves its connection to this WebSocket.
    let open: OpenRealtimeConnections
    let logger: Logger

    static let path = "/.ws"

    /// The WebSocket settings: frames up to the message limit, UTF-8 checked, a ping every
    /// keep-alive interval (a client that misses one is disconnected).
    var webSocketConfiguration: WebSocketServerConfiguration {
        WebSocketServerConfiguration(
            maxFrameSize: configuration.limits.maxRealtimeMessageBytes,
            autoPing: .enabled(timePeriod: .milliseconds(Int(configuration.streams.keepAliveSeconds * 1000))),
            validateUTF8: true)
    }

    func shouldUpgrade(_ request: HTTPRequest, channel: any Channel) -> ShouldUpgradeResult<
        WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>
    > {
        let uri = URI(request.path ?? "")
        // The SDKs do not percent-encode their parameters; a query string that is not valid
        // percent-encoding is refused (400), as REST refuses it.
        guard uri.path == RealtimeEndpoint.path,
            let pairs = try? RequestOptions.pairs(uri.query ?? "")
        else { return .dontUpgrade }
        guard limiter.admit(ConnectionLimiter.connection(of: channel)) else {
            service.metrics.countRefusal(.connections)
            return .dontUpgrade
        }
        let parameters = Dictionary(pairs.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
        let host = request.authority ?? "\(configuration.host):\(configuration.port)"
        if let sessionID = parameters["s"] {
            // A long-polling client moving to a WebSocket: the connection exists (and holds
            // the client's stream slot) already.
            let connection = open.connection(sessionID)
            SetupDeadlineHandler.lift(on: ConnectionLimiter.connection(of: channel))
            return .upgrade([:]) { inbound, outbound, _ in
                guard let connection else {
                    // The client gives the upgrade up and goes on polling.
                    try? await outbound.write(.text(String(decoding: WireEncoding.reset(host: host), as: UTF8.self)))
                    return
                }
                await connection.runUpgrade(inbound: inbound, outbound: outbound, host: host)
            }
        }
        let client = configuration.clientAddresses.client(peer: channel.remoteAddress?.ipAddress, headers: request.headerFields)
        let limit = configuration.limits.maxStreamsPerClient
        guard let lease = service.streams.leaseStream(for: client.limitKey, limit: limit) else {
            service.metrics.countRefusal(.streamsPerClient)
            return .dontUpgrade
        }
        let namespace = RealtimeEndpoint.namespace(parameters, authority: request.authority, configuration: configuration)
        let previous = parameters["ls"]
        // The connection now speaks WebSocket: its setup deadline is met (the WebSocket's
        // pings watch it from here).
        SetupDeadlineHandler.lift(on: ConnectionLimiter.connection(of: channel))
        return .upgrade([:]) { inbound, outbound, _ in
            guard NamespaceRegistry.isValidName(namespace) else {
                // Fatal for the SDKs (they stop reconnecting), as for Firebase's unknown databases.
                try? await outbound.write(.text(String(decoding: RealtimeEndpoint.invalidNamespace(namespace), as: UTF8.self)))
                return
            }
            let session = RealtimeSession(
                id: SessionID(open.nextNumber()),
                namespace: namespace, outboxBytes: configuration.streams.outboxBytes)
            let connection = RealtimeConnection(
                service: service, callers: callers, session: session, limits: configuration.limits, lease: lease,
                clientKey: client.limitKey, logger: logger)
            if let previous { open.remove(previous)?.close() }
            open.add(connection, as: session.wireID)
            await connection.run(inbound: inbound, outbound: outbound, host: host)
            open.remove(session.wireID, ifItIs: connection)
        }
    }
}

extension RealtimeEndpoint {
    /// A connection's namespace: `ns=`, else the host's first label, else the default.
    static func namespace(_ parameters: [String: String], authority: String?, configuration: ServerConfiguration) -> String {
        parameters["ns"] ?? authority.flatMap(HearthResponder.namespace(fromHost:)) ?? configuration.defaultNamespace
    }

    /// `s` for a namespace name that cannot exist: fatal for the SDKs (they stop reconnecting),
    /// as for Firebase's unknown databases.
    static func invalidNamespace(_ namespace: String) -> [UInt8] {
        WireEncoding.shutdown(reason: "Database not found: \"\(namespace)\" is not a valid namespace name.")
    }
}

/// The realtime connections open now, by session id.
final class OpenRealtimeConnections: Sendable {
    let connections = Mutex<[String: RealtimeConnection]>([:])
    let lastNumber = Atomic<Int>(0)

    /// A new session number (unique in this run).
    func nextNumber() -> Int { lastNumber.add(1, ordering: .relaxed).newValue }

    func add(_ connection: RealtimeConnection, as id: String) {
        connections.withLock { $0[id] = connection }
    }

    func connection(_ id: String) -> RealtimeConnection? {
        connections.withLock { $0[id] }
    }

    func remove(_ id: String) -> RealtimeConnection? {
        connections.withLock { $0.removeValue(forKey: id) }
    }

    func remove(_ id: String, ifItIs connection: RealtimeConnection) {
        connections.withLock { connections in
            if connections[id] === connection { connections[id] = nil }
        }
    }
}

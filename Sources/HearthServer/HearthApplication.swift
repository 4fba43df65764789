import HearthCore
import HearthStorage
import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import HummingbirdWebSocket
import HTTPTypes
import NIOCore
import NIOSSL
import Logging
import ServiceLifecycle

/// Builds the Hummingbird application for a configuration.
public enum HearthApplication {
    /// The `Server` header of every answer.
    static let serverName = "Hearth"

    /// Plain HTTP/1.1 (with the realtime protocol's WebSocket upgrade at `/.ws`), or TLS with
    /// HTTP/2 offered through ALPN (and HTTP/1.1 for clients that do not ask for it).
    /// `answersInline`: requests that need no waiting are answered on the event loop
    /// (``InlineAnswerHandler``); false with PostgreSQL storage.
    static func serverBuilder(_ configuration: ServerConfiguration, stack: MiddlewareStackResponder, answersInline: Bool)
        throws -> HTTPServerBuilder
    {
        let hearth = stack.responder
        let metrics = hearth.metrics
        let limits = configuration.limits
        let limiter = ConnectionLimiter(limit: limits.maxConnections, metrics: metrics)
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: {
                let guardHandler = ConnectionGuardHandler(limiter: limiter, timeout: limits.requestTimeout, metrics: metrics)
                guard answersInline else { return [guardHandler] }
                return [guardHandler, InlineAnswerHandler(responder: stack, serverName: serverName, logger: hearth.logger)]
            }(),
            httpDecoderConfiguration: .init(maxHeaderFieldSize: limits.maxHeaderBytes, maxHeaderListSize: limits.maxHeaderBytes))
        let realtime = RealtimeEndpoint(
            service: hearth.service, callers: hearth.callers, configuration: configuration, limiter: limiter,
            open: hearth.realtimeConnections, logger: hearth.logger)
        let webSocket = HTTP1WebSocketUpgradeChannel.Configuration(http1: http1, ws: realtime.webSocketConfiguration)
        let upgrade = { @Sendable (request: HTTPRequest, channel: any Channel, _: Logger) in
            // Upgraded or not, the answer is Hummingbird's, in the connection's task.
            ConnectionTaskGate.of(channel)?.open()
            return realtime.shouldUpgrade(request, channel: channel)
        }
        guard let identity = configuration.tls else {
            return HTTPServerBuilder { responder in
                DeadlinedChildChannel(
                    inner: HTTP1WebSocketUpgradeChannel(responder: responder, configuration: webSocket, shouldUpgrade: upgrade),
                    timeout: limits.requestTimeout, metrics: metrics, limiter: limiter, gatesTask: answersInline)
            }
        }
        var tls = identity.serverConfiguration()
        tls.applicationProtocols = TLSChannel.applicationProtocols
        let sslContext = try NIOSSLContext(configuration: tls)
        let http2 = HTTP2Channel.Configuration(idleTimeout: limits.requestTimeout, streamConfiguration: http1)
        return HTTPServerBuilder { responder in
            DeadlinedChildChannel(
                inner: TLSChannel(
                    sslContext: sslContext,
                    http1: HTTP1WebSocketUpgradeChannel(responder: responder, configuration: webSocket, shouldUpgrade: upgrade),
                    http2: HTTP2Channel(responder: responder, configuration: http2), metrics: metrics),
                timeout: limits.requestTimeout, metrics: metrics)
        }
    }

    /// The application, with every namespace already in the data directory opened and its
    /// stored rules loaded.
    public static func make(
        configuration: ServerConfiguration, storage: StorageEngine, logger: Logger = Logger(label: "hearth")
    ) throws -> some ApplicationProtocol {
        let responder = withMiddleware(try makeResponder(configuration: configuration, storage: storage, logger: logger))
        return Application(
            responder: responder,
            server: try serverBuilder(configuration, stack: responder, answersInline: storage.backend == nil),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: serverName),
            logger: logger
        )
    }

    /// What `hearth serve` runs: the application and, with a `metricsAddress`, the listener
    /// that serves `/.metrics` there.
    public static func services(
        configuration: ServerConfiguration, storage: StorageEngine, logger: Logger
    ) throws -> [any Service] {
        let stack = withMiddleware(try makeResponder(configuration: configuration, storage: storage, logger: logger))
        let responder = stack.responder
        var services: [any Service] = [
            Application(
                responder: stack,
                server: try serverBuilder(configuration, stack: stack, answersInline: storage.backend == nil),
                configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: serverName),
                logger: logger),
            // After the application, so that it is stopped first: it ends the long-polling
            // sessions, which no request holds, while storage is still open.
            responder.longPoll.sessions,
        ]
        if let address = configuration.metricsAddress {
            services.append(
                Application(
                    responder: MetricsResponder(endpoint: responder.metricsEndpoint),
                    configuration: .init(address: .hostname(address.host, port: address.port), serverName: serverName),
                    logger: logger))
        }
        return services
    }

    /// The responder over every namespace in the data directory, opened with its stored rules.
    static func makeResponder(
        configuration: ServerConfiguration, storage: StorageEngine, logger: Logger
    ) throws -> HearthResponder {
        try storage.lockDirectory()
        let rules = RulesRegistry(fallback: configuration.fallbackRules, storage: storage)
        let streams = StreamRegistry(options: configuration.streams)
        // A namespace keeps the indexes its rules declare from the moment it opens.
        let namespaces = NamespaceRegistry { [historyFromOpen = configuration.streamHistoryFromOpen] name in
            let database = try storage.open(namespace: name)
            database.declareIndexes(rules.rules(for: name).concreteIndexes)
            if historyFromOpen { _ = streams.hub(for: database) }
            return database
        }
        for name in try storage.existingNamespaces() {
            try rules.loadStored(namespace: name)
            _ = try namespaces.database(name)
        }
        let metrics = streams.metrics
        storage.observer.observeSyncs { metrics.fsyncDuration.record($0) }
        // A follower opens the namespaces the writer creates as they appear, rules first, and
        // takes rules the writer stores as the writer does (indexes, open streams re-checked).
        storage.onFollowedChange { [logger] change in
            do {
                switch change {
                case .namespaceAppeared(let name):
                    try rules.loadStored(namespace: name)
                    _ = try namespaces.database(name)
                case .rulesStored(let name):
                    try rules.loadStored(namespace: name)
                    let current = rules.rules(for: name)
                    namespaces.existing(name)?.declareIndexes(current.concreteIndexes)
                    Task { await streams.rulesChanged(namespace: name, rules: current) }
                }
            } catch {
                logger.error("cannot take what the writer stored", metadata: ["change": "\(change)", "error": "\(error)"])
            }
        }
        // On-disconnect writes: in shared storage when there is one (another node makes those
        // of a node that dies), else in the data directory's journal.
        let journal: any SessionStore
        var left: [String: [UInt8]] = [:]
        if let shared = storage.sessionStore() {
            journal = shared
        } else {
            (journal, left) = try SessionJournal.open(directory: storage.directory, logger: logger)
        }
        let responder = HearthResponder(
            configuration: configuration, namespaces: namespaces, rules: rules, streams: streams, storage: storage,
            sessionJournal: journal, logger: logger)
        storage.onOrphanedSessions { [logger] orphaned in
            logger.notice("making the on-disconnect writes of sessions of a node found dead", metadata: ["count": "\(orphaned.count)"])
            Task { await responder.service.sessionsEndedBeforeStart(orphaned, now: Database.systemMilliseconds()) }
        }
        if !left.isEmpty {
            // Sessions the last run ended without seeing it (a crash, a restart): their
            // on-disconnect writes are made now.
            logger.notice("making the on-disconnect writes of sessions of the previous run", metadata: ["count": "\(left.count)"])
            Task { await responder.service.sessionsEndedBeforeStart(left, now: Database.systemMilliseconds()) }
        }
        return responder
    }
}

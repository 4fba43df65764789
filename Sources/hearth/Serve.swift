import ArgumentParser
import Configuration
import Foundation
import HearthCore
import HearthPostgres
import HearthServer
import HearthStorage
import Hummingbird
import Logging
import ServiceLifecycle

/// `hearth serve`: runs the server.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start the HTTP server.")

    @Option(help: "JSON file of settings (keys are the long flag names without --). Also HEARTH_CONFIG.")
    var config: String?

    @Flag(name: .customLong("print-config"), help: "Print the effective configuration (secrets masked) and exit.")
    var printConfig = false

    @Option(help: "Address to listen on (default 127.0.0.1).")
    var host: String?

    @Option(help: "Port to listen on (default 9000).")
    var port: Int?

    @Option(name: .customLong("data-dir"), help: "Directory for the database files (default ./hearth-data).")
    var dataDirectory: String?

    @Option(help: "Where namespaces are stored: file (the data directory, the default), or postgres://user[:password]@host[:port]/database.")
    var storage: String?

    @Option(name: .customLong("advertise-url"), help: "With --storage postgres://…: the http://host:port other nodes forward a namespace's writes to while this node holds its write lease (default: http://<host>:<port> unless the host is 0.0.0.0 or ::, else no forwarding to this node).")
    var advertiseURL: String?

    @Flag(name: .customLong("follow"), inversion: .prefixedNo,
          help: "With --storage postgres://…: follow the writes another node makes there (reads and streams; no writes).")
    var follow: Bool?

    @Flag(name: .customLong("in-memory"), inversion: .prefixedNo, help: "Keep data in memory only (nothing is written; a restart starts empty).")
    var inMemory: Bool?

    @Option(name: .customLong("default-namespace"), help: "Namespace used when a request names none (default 'default').")
    var defaultNamespace: String?

    @Flag(inversion: .prefixedNo, help: "Emulator mode: accept 'Authorization: Bearer owner' as admin, like Firebase's emulator.")
    var emulator: Bool?

    @Option(help: "Log level: trace, debug, info (default), notice, warning, error, critical.")
    var logLevel: String?

    @Option(help: "Log format: text (default) or json (one object per line).")
    var logFormat: String?

    @Option(help: "When to fdatasync the log: always (default; group commit), interval[:<ms>], none. See Docs/DURABILITY.md.")
    var fsync: String?

    @Option(name: .customLong("segment-bytes"), help: "Start a new log segment after this many bytes (default 64 MiB).")
    var segmentBytes: Int?

    @Option(name: .customLong("snapshot-after-records"), help: "Snapshot after this many log records (default 1,000,000).")
    var snapshotAfterRecords: Int?

    @Option(name: .customLong("snapshot-after-bytes"), help: "Snapshot after this many log bytes (default 256 MiB).")
    var snapshotAfterBytes: Int?

    @Option(name: .customLong("max-body-bytes"), help: "Largest request body accepted, after decompression, in bytes (default 256 MiB).")
    var maxBodyBytes: Int?

    @Option(name: .customLong("max-header-bytes"), help: "Largest request head (request line and headers) accepted, in bytes (default 64 KiB).")
    var maxHeaderBytes: Int?

    @Option(name: .customLong("max-connections"), help: "Connections served at once; more are answered 503 (default 4096).")
    var maxConnections: Int?

    @Option(name: .customLong("request-timeout-seconds"), help: "Time a client has to send a request's head, and the longest pause inside its body (default 60).")
    var requestTimeoutSeconds: Double?

    @Option(name: .customLong("max-streams-per-client"), help: "Open streams one client address may hold (default 256).")
    var maxStreamsPerClient: Int?

    @Option(name: .customLong("max-listens-per-connection"), help: "Listens one realtime (WebSocket) connection may hold (default 1000).")
    var maxListensPerConnection: Int?

    @Option(name: .customLong("max-realtime-message-bytes"), help: "Largest realtime protocol message, in bytes once its frames are joined; a larger one closes the connection (default 17825792: a 16 MB write and its envelope).")
    var maxRealtimeMessageBytes: Int?

    @Option(name: .customLong("shutdown-timeout-seconds"), help: "On SIGTERM, time for requests in flight to finish before they are cancelled (default 10).")
    var shutdownTimeoutSeconds: Double?

    @Option(name: .customLong("write-rate-limit"), help: "Writes per second one client address may make, in bursts of --write-rate-burst; more are answered 429 (default 0: no limit). The admin is not limited.")
    var writeRateLimit: Double?

    @Option(name: .customLong("write-rate-burst"), help: "Writes one client address may make at once under --write-rate-limit (default 100).")
    var writeRateBurst: Int?

    @Option(name: .customLong("trusted-proxy"), help: "A reverse proxy (address or range, e.g. 127.0.0.1 or 10.0.0.0/8) whose forwarding header names the client (repeatable).")
    var trustedProxies: [String] = []

    @Option(name: .customLong("proxy-header"), help: "The header trusted proxies name the client in: x-forwarded-for (default) or forwarded.")
    var proxyHeader: String?

    @Flag(name: .customLong("create-namespaces"), inversion: .prefixedNo, help: "Let any request create a namespace by naming it (default: only the admin; always on in emulator mode).")
    var createNamespaces: Bool?

    @Option(name: .customLong("metrics-address"), help: "host:port of a second listener serving /.metrics without a credential, e.g. 127.0.0.1:9091 (default: none; /.metrics on the main port needs the admin token).")
    var metricsAddress: String?

    @Option(name: .customLong("keep-alive-seconds"), help: "Seconds between keep-alive events on streams (default 30).")
    var keepAliveSeconds: Double?

    @Option(name: .customLong("stream-outbox-bytes"), help: "Bytes a slow stream may have queued before it is resynchronised (default 4 MiB).")
    var streamOutboxBytes: Int?

    @Option(name: .customLong("stream-history"), help: "Changes kept per namespace for Last-Event-ID resumes (default 10,000).")
    var streamHistory: Int?

    @Flag(name: .customLong("compress-streams"), inversion: .prefixedNo, help: "gzip event streams for clients that accept it (default on).")
    var compressStreams: Bool?

    @Option(name: .customLong("cors-origin"), help: "An origin browsers may call from, e.g. https://dash.example.com (repeatable; default: any).")
    var corsOrigins: [String] = []

    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain: serve HTTPS (TLS 1.2+, HTTP/2 by ALPN).")
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key for --tls-cert.")
    var tlsKey: String?

    @OptionGroup(title: "Security rules and authentication (Docs/RULES.md)")
    var auth: AuthOptions

    /// The flags given on the command line, by setting name.
    var flagValues: [String: ConfigContent] {
        var flags: [String: ConfigContent] = [:]
        flags["host"] = host.map { .string($0) }
        flags["port"] = port.map { .int($0) }
        flags["data-dir"] = dataDirectory.map { .string($0) }
        flags["storage"] = storage.map { .string($0) }
        flags["follow"] = follow.map { .bool($0) }
        flags["advertise-url"] = advertiseURL.map { .string($0) }
        flags["in-memory"] = inMemory.map { .bool($0) }
        flags["default-namespace"] = defaultNamespace.map { .string($0) }
        flags["emulator"] = emulator.map { .bool($0) }
        flags["log-level"] = logLevel.map { .string($0) }
        flags["log-format"] = logFormat.map { .string($0) }
        flags["fsync"] = fsync.map { .string($0) }
        flags["segment-bytes"] = segmentBytes.map { .int($0) }
        flags["snapshot-after-records"] = snapshotAfterRecords.map { .int($0) }
        flags["snapshot-after-bytes"] = snapshotAfterBytes.map { .int($0) }
        flags["max-body-bytes"] = maxBodyBytes.map { .int($0) }
        flags["max-header-bytes"] = maxHeaderBytes.map { .int($0) }
        flags["max-connections"] = maxConnections.map { .int($0) }
        flags["request-timeout-seconds"] = requestTimeoutSeconds.map { .double($0) }
        flags["max-streams-per-client"] = maxStreamsPerClient.map { .int($0) }
        flags["max-listens-per-connection"] = maxListensPerConnection.map { .int($0) }
        flags["max-realtime-message-bytes"] = maxRealtimeMessageBytes.map { .int($0) }
        flags["shutdown-timeout-seconds"] = shutdownTimeoutSeconds.map { .double($0) }
        flags["write-rate-limit"] = writeRateLimit.map { .double($0) }
        flags["write-rate-burst"] = writeRateBurst.map { .int($0) }
        if !trustedProxies.isEmpty { flags["trusted-proxy"] = .stringArray(trustedProxies) }
        flags["proxy-header"] = proxyHeader.map { .string($0) }
        flags["create-namespaces"] = createNamespaces.map { .bool($0) }
        flags["metrics-address"] = metricsAddress.map { .string($0) }
        flags["keep-alive-seconds"] = keepAliveSeconds.map { .double($0) }
        flags["stream-outbox-bytes"] = streamOutboxBytes.map { .int($0) }
        flags["stream-history"] = streamHistory.map { .int($0) }
        flags["compress-streams"] = compressStreams.map { .bool($0) }
        if !corsOrigins.isEmpty { flags["cors-origin"] = .stringArray(corsOrigins) }
        flags["tls-cert"] = tlsCertificate.map { .string($0) }
        flags["tls-key"] = tlsKey.map { .string($0) }
        auth.flagValues(into: &flags)
        return flags
    }

    /// Flags, environment and configuration file, layered; checked.
    func resolveSettings() async throws -> ResolvedSettings {
        let environment = ProcessInfo.processInfo.environment
        do {
            return try await ResolvedSettings.resolve(
                flags: flagValues, environment: environment, configFile: config ?? environment["HEARTH_CONFIG"])
        } catch {
            // `resolve` throws only `SettingsError`: a message for the operator.
            FileHandle.standardError.write(Data("hearth serve: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }

    func run() async throws {
        let resolved = try await resolveSettings()
        if printConfig {
            FileHandle.standardOutput.write(Data(resolved.printable().utf8))
            return
        }
        let settings = resolved.settings
        let logger = HearthLogging.bootstrap(level: settings.logLevel, format: settings.logFormat)
        for warning in resolved.warnings { logger.warning("\(warning)") }
        // The JSON code reads strings' bytes through the standard library's frozen layout;
        // a runtime with another layout must not serve data.
        if let mismatch = StringLayout.checkLayout() {
            logger.critical("Hearth cannot start: this Swift runtime's string layout is not the one Hearth was built for (\(mismatch)).")
            throw ExitCode(2)
        }
        // The data directory is the database: only its owner may look inside.
        try FileManager.default.createDirectory(
            atPath: settings.dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let options = StorageOptions(
            fsync: FsyncPolicy(settings.fsync)!, segmentBytes: settings.segmentBytes,
            snapshotAfterBytes: settings.snapshotAfterBytes, snapshotAfterRecords: settings.snapshotAfterRecords)
        let backend: (any NamespaceBackend)?
        let location = PostgresLocation(url: settings.storage)
        do {
            if let location {
                backend = settings.follow
                    ? try PostgresFollower(location: location, logger: logger)
                    : try PostgresBackend(location: location, logger: logger, advertise: settings.advertisedURL)
            } else {
                backend = nil
            }
        } catch {
            logger.critical("Hearth cannot start: PostgreSQL storage: \(error)")
            throw ExitCode(2)
        }
        let storage = StorageEngine(
            directory: settings.inMemory ? nil : settings.dataDir, backend: backend, options: options, logger: logger)
        let security: AuthOptions.Loaded
        do {
            // The directory's lock first, so a second server never touches the admin token.
            try storage.lockDirectory()
            security = try await AuthOptions.load(settings)
        } catch {
            logger.critical("Hearth cannot start: \(error)")
            throw ExitCode(2)
        }
        var configuration = ServerConfiguration(
            host: settings.host, port: settings.port, maxBodyBytes: settings.maxBodyBytes,
            defaultNamespace: settings.defaultNamespace, emulator: settings.emulator, rules: security.rules,
            adminToken: security.adminToken, tokenVerifier: security.verifier)
        if let certificate = settings.tlsCert, let key = settings.tlsKey {
            do {
                configuration.tls = try TLSIdentity(certificateFile: certificate, privateKeyFile: key)
            } catch {
                logger.critical("Hearth cannot start: \(error)")
                throw ExitCode(2)
            }
        }
        if !settings.corsOrigin.isEmpty { configuration.corsOrigins = settings.corsOrigin }
        configuration.limits = ServerLimits(
            maxHeaderBytes: settings.maxHeaderBytes, maxConnections: settings.maxConnections,
            requestTimeout: .milliseconds(Int64(settings.requestTimeoutSeconds * 1000)),
            maxStreamsPerClient: settings.maxStreamsPerClient, maxListensPerConnection: settings.maxListensPerConnection,
            maxRealtimeMessageBytes: settings.maxRealtimeMessageBytes)
        configuration.streams.keepAliveSeconds = settings.keepAliveSeconds
        configuration.streams.outboxBytes = settings.streamOutboxBytes
        configuration.streams.historyChanges = settings.streamHistory
        configuration.compressStreams = settings.compressStreams
        configuration.createNamespaces = settings.createNamespaces
        configuration.followsWriter = settings.follow
        configuration.streamHistoryFromOpen = location != nil
        configuration.writeRateLimit = settings.writeLimit
        configuration.clientAddresses = settings.clientAddresses
        configuration.metricsAddress = settings.metricsAddress.flatMap(ListenAddress.init)
        if settings.emulator {
            logger.warning(
                "EMULATOR MODE: 'Authorization: Bearer owner' is admin and unsigned tokens are accepted. Never expose this server.")
        }
        security.announce(logger: logger, emulator: settings.emulator)
        let services = try Result { try HearthApplication.services(configuration: configuration, storage: storage, logger: logger) }
            .mapError { error -> ExitCode in
                logger.critical("Hearth cannot start: \(error)")
                return ExitCode(2)
            }
            .get()
        logger.info(
            "Hearth listening on \(configuration.tls == nil ? "http" : "https")://\(settings.host):\(settings.port)",
            metadata: [
                "data": "\(location?.description ?? (settings.inMemory ? "in memory" : settings.dataDir))",
                "fsync": "\(location == nil ? "\(options.fsync)" : settings.follow ? "none (following)" : "PostgreSQL commit")",
            ])
        if let metricsAddress = configuration.metricsAddress {
            logger.info("metrics for Prometheus on http://\(metricsAddress)/.metrics (no credential)")
        }
        let reloader = CertificateReloader(identity: configuration.tls, logger: logger)
        defer { reloader.cancel() }
        // SIGTERM or SIGINT: stop accepting, finish the requests in flight, end the streams;
        // whatever is still running after shutdown-timeout-seconds is cancelled.
        var group = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .milliseconds(Int64(settings.shutdownTimeoutSeconds * 1000))
        do {
            try await ServiceGroup(configuration: group).run()
        } catch {
            logger.warning("shutdown: \(error); requests still running were cancelled")
        }
        // Every write acknowledged was durable already (fsync=always); the others are flushed now.
        storage.close()
        logger.info(settings.inMemory ? "Hearth stopped (in memory: the data is gone)" : "Hearth stopped: every acknowledged write is in the log")
    }
}

import ArgumentParser
import Foundation
import HearthServer
import HearthStorage
import Hummingbird
import Logging

/// `hearth serve`: runs the server.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start the HTTP server.")

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on.")
    var port = 9000

    @Option(name: .customLong("data-dir"), help: "Directory for the database files.")
    var dataDirectory = "./hearth-data"

    @Option(name: .customLong("max-body-bytes"), help: "Largest request body accepted, in bytes.")
    var maxBodyBytes = 256 * 1024 * 1024

    @Option(name: .customLong("default-namespace"), help: "Namespace used when a request names none.")
    var defaultNamespace = "default"

    @Flag(help: "Emulator mode: accept 'Authorization: Bearer owner' as admin, like Firebase's emulator.")
    var emulator = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @Option(help: "When to fdatasync the log: always (default; group commit), interval[:<ms>], none. See Docs/DURABILITY.md.")
    var fsync = "always"

    @Option(name: .customLong("segment-bytes"), help: "Start a new log segment after this many bytes.")
    var segmentBytes = 64 << 20

    @Option(name: .customLong("snapshot-after-records"), help: "Snapshot after this many log records.")
    var snapshotAfterRecords = 1_000_000

    @Option(name: .customLong("snapshot-after-bytes"), help: "Snapshot after this many log bytes.")
    var snapshotAfterBytes = 256 << 20

    @Flag(name: .customLong("in-memory"), help: "Keep data in memory only (nothing is written; a restart starts empty).")
    var inMemory = false

    @Option(name: .customLong("keep-alive-seconds"), help: "Seconds between keep-alive events on streams.")
    var keepAliveSeconds = 30.0

    @Option(name: .customLong("stream-outbox-bytes"), help: "Bytes a slow stream may have queued before it is resynchronised.")
    var streamOutboxBytes = 4 << 20

    @Option(name: .customLong("stream-history"), help: "Changes kept per namespace for Last-Event-ID resumes.")
    var streamHistory = 10_000

    @Option(name: .customLong("cors-origin"), help: "An origin browsers may call from, e.g. https://dash.example.com (repeatable; default: any).")
    var corsOrigins: [String] = []

    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain: serve HTTPS (TLS 1.2+, HTTP/2 by ALPN).")
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key for --tls-cert.")
    var tlsKey: String?

    @OptionGroup(title: "Security rules and authentication (Docs/RULES.md)")
    var auth: AuthOptions

    func validate() throws {
        guard NamespaceRegistry.isValidName(defaultNamespace) else {
            throw ValidationError("--default-namespace must be 1-63 characters of a-z, 0-9, '-' and '_'.")
        }
        guard (1...65535).contains(port) || port == 0 else { throw ValidationError("--port must be 0-65535.") }
        guard maxBodyBytes > 0 else { throw ValidationError("--max-body-bytes must be positive.") }
        guard (tlsCertificate == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together.") }
        guard keepAliveSeconds >= 0.05, streamOutboxBytes >= 1024, streamHistory >= 0 else {
            throw ValidationError("--keep-alive-seconds must be at least 0.05, --stream-outbox-bytes at least 1024.")
        }
        guard FsyncPolicy(fsync) != nil else { throw ValidationError("--fsync must be always, none, interval or interval:<ms>.") }
        guard segmentBytes >= 4096, snapshotAfterRecords > 0, snapshotAfterBytes > 0 else {
            throw ValidationError("--segment-bytes must be at least 4096, snapshot thresholds positive.")
        }
    }

    func run() async throws {
        var logger = Logger(label: "hearth")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        // The data directory is the database: only its owner may look inside.
        try FileManager.default.createDirectory(
            atPath: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let options = StorageOptions(
            fsync: FsyncPolicy(fsync)!, segmentBytes: segmentBytes, snapshotAfterBytes: snapshotAfterBytes,
            snapshotAfterRecords: snapshotAfterRecords)
        let storage = StorageEngine(directory: inMemory ? nil : dataDirectory, options: options, logger: logger)
        let security: AuthOptions.Loaded
        do {
            // The directory's lock first, so a second server never touches the admin token.
            try storage.lockDirectory()
            security = try await auth.load(dataDirectory: inMemory ? nil : dataDirectory, emulator: emulator)
        } catch {
            logger.critical("Hearth cannot start: \(error)")
            throw ExitCode(2)
        }
        var configuration = ServerConfiguration(
            host: host, port: port, dataDirectory: dataDirectory, maxBodyBytes: maxBodyBytes,
            defaultNamespace: defaultNamespace, emulator: emulator, rules: security.rules, adminToken: security.adminToken,
            tokenVerifier: security.verifier)
        if let tlsCertificate, let tlsKey { configuration.tls = TLSFiles(certificate: tlsCertificate, privateKey: tlsKey) }
        if !corsOrigins.isEmpty { configuration.corsOrigins = corsOrigins }
        configuration.streams.keepAliveSeconds = keepAliveSeconds
        configuration.streams.outboxBytes = streamOutboxBytes
        configuration.streams.historyChanges = streamHistory
        if emulator {
            logger.warning(
                "EMULATOR MODE: 'Authorization: Bearer owner' is admin and unsigned tokens are accepted. Never expose this server.")
        }
        security.announce(logger: logger, emulator: emulator)
        let application = try Result { try HearthApplication.make(configuration: configuration, storage: storage, logger: logger) }
            .mapError { error -> ExitCode in
                logger.critical("Hearth cannot start: \(error)")
                return ExitCode(2)
            }
            .get()
        logger.info(
            "Hearth listening on \(configuration.tls == nil ? "http" : "https")://\(host):\(port)",
            metadata: ["data": "\(inMemory ? "in memory" : dataDirectory)", "fsync": "\(options.fsync)"])
        try await application.runService()
        // Graceful shutdown: the server has stopped accepting and finished its requests.
        storage.close()
    }
}

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

    func validate() throws {
        guard NamespaceRegistry.isValidName(defaultNamespace) else {
            throw ValidationError("--default-namespace must be 1-63 characters of a-z, 0-9, '-' and '_'.")
        }
        guard (1...65535).contains(port) || port == 0 else { throw ValidationError("--port must be 0-65535.") }
        guard maxBodyBytes > 0 else { throw ValidationError("--max-body-bytes must be positive.") }
    }

    func run() async throws {
        var logger = Logger(label: "hearth")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let configuration = ServerConfiguration(
            host: host, port: port, dataDirectory: dataDirectory, maxBodyBytes: maxBodyBytes,
            defaultNamespace: defaultNamespace, emulator: emulator)
        if emulator {
            logger.warning("EMULATOR MODE: 'Authorization: Bearer owner' is accepted as admin. Never expose this server.")
        }
        let storage = StorageEngine(directory: dataDirectory)
        let application = try HearthApplication.make(configuration: configuration, storage: storage, logger: logger)
        logger.info("Hearth listening on http://\(host):\(port) with data in \(dataDirectory)")
        try await application.runService()
    }
}

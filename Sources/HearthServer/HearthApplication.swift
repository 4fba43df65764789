import HearthCore
import HearthStorage
import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import Logging

/// Builds the Hummingbird application for a configuration.
public enum HearthApplication {
    /// Plain HTTP/1.1, or TLS with HTTP/2 offered through ALPN (and HTTP/1.1 for clients
    /// that do not ask for it).
    static func serverBuilder(_ configuration: ServerConfiguration) throws -> HTTPServerBuilder {
        guard let files = configuration.tls else { return .http1() }
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(files.certificate)
        } catch {
            throw TLSSetupError("cannot read the certificate chain in \(files.certificate): \(error)")
        }
        do {
            key = try NIOSSLPrivateKey(file: files.privateKey, format: .pem)
        } catch {
            throw TLSSetupError("cannot read the private key in \(files.privateKey): \(error)")
        }
        guard !chain.isEmpty else { throw TLSSetupError("\(files.certificate) holds no certificate") }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        return try .http2Upgrade(tlsConfiguration: tls)
    }

    /// The application, with every namespace already in the data directory opened and its
    /// stored rules loaded.
    public static func make(
        configuration: ServerConfiguration, storage: StorageEngine, logger: Logger = Logger(label: "hearth")
    ) throws -> some ApplicationProtocol {
        try storage.lockDirectory()
        let rules = RulesRegistry(fallback: configuration.fallbackRules, storage: storage)
        // A namespace keeps the indexes its rules declare from the moment it opens.
        let namespaces = NamespaceRegistry { name in
            let database = try storage.open(namespace: name)
            database.declareIndexes(rules.rules(for: name).concreteIndexes)
            return database
        }
        for name in try storage.existingNamespaces() {
            try rules.loadStored(namespace: name)
            _ = try namespaces.database(name)
        }
        let streams = StreamRegistry(options: configuration.streams)
        let responder = HearthResponder(
            configuration: configuration, namespaces: namespaces, rules: rules, streams: streams, logger: logger)
        return Application(
            responder: responder,
            server: try serverBuilder(configuration),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Hearth"),
            logger: logger
        )
    }
}

/// The TLS files could not be used.
public struct TLSSetupError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

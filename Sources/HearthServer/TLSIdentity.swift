import NIOSSL
import Synchronization

/// The server's TLS certificate chain and private key, read from PEM files and re-read on
/// demand (`hearth serve` does so on SIGHUP): new connections get the new identity, open ones
/// keep theirs. A reload that fails leaves the previous identity in place.
public final class TLSIdentity: Sendable {
    /// PEM file with the certificate chain, leaf first.
    public let certificateFile: String
    /// PEM file with the private key.
    public let privateKeyFile: String
    private let current: Mutex<(chain: [NIOSSLCertificate], key: NIOSSLPrivateKey)>

    /// Reads both files; throws ``TLSSetupError`` if either cannot be used.
    public init(certificateFile: String, privateKeyFile: String) throws {
        self.certificateFile = certificateFile
        self.privateKeyFile = privateKeyFile
        current = Mutex(try TLSIdentity.load(certificateFile: certificateFile, privateKeyFile: privateKeyFile))
    }

    /// Reads the files again and, if they hold a usable identity, serves it from the next
    /// handshake on. Returns the new leaf certificate's subject, for the log.
    @discardableResult
    public func reload() throws -> String {
        let loaded = try TLSIdentity.load(certificateFile: certificateFile, privateKeyFile: privateKeyFile)
        current.withLock { $0 = loaded }
        return String(describing: loaded.chain[0])
    }

    /// The identity for a handshake starting now.
    var override: NIOSSLContextConfigurationOverride {
        let (chain, key) = current.withLock { $0 }
        var override = NIOSSLContextConfigurationOverride()
        override.certificateChain = chain.map { .certificate($0) }
        override.privateKey = .privateKey(key)
        return override
    }

    /// A server TLS configuration (TLS 1.2 and up) that asks this identity at every handshake.
    func serverConfiguration() -> TLSConfiguration {
        let (chain, key) = current.withLock { $0 }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        tls.sslContextCallback = { [self] _, promise in promise.succeed(override) }
        return tls
    }

    private static func load(
        certificateFile: String, privateKeyFile: String
    ) throws -> (chain: [NIOSSLCertificate], key: NIOSSLPrivateKey) {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
        } catch {
            throw TLSSetupError("cannot read the certificate chain in \(certificateFile): \(error)")
        }
        do {
            key = try NIOSSLPrivateKey(file: privateKeyFile, format: .pem)
        } catch {
            throw TLSSetupError("cannot read the private key in \(privateKeyFile): \(error)")
        }
        guard !chain.isEmpty else { throw TLSSetupError("\(certificateFile) holds no certificate") }
        // The key must belong to the leaf (a context refuses a mismatch): otherwise it would only
        // show at the first handshake.
        do {
            _ = try NIOSSLContext(configuration: .makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key)))
        } catch {
            throw TLSSetupError("the private key in \(privateKeyFile) does not fit the certificate in \(certificateFile): \(error)")
        }
        return (chain, key)
    }
}

/// The TLS files could not be used.
public struct TLSSetupError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

import Foundation
import NIOSSL
import PostgresNIO

/// Where a server's PostgreSQL is: `postgres://user[:password]@host[:port]/database`, the
/// `storage` setting's value. The password may be given percent-encoded.
///
/// TLS as libpq's `sslmode` names it, in the URL's query: `?sslmode=disable` (the default),
/// `prefer` (TLS when the server offers it, unverified), `require` (TLS, unverified),
/// `verify-ca` (TLS, the server's certificate signed by a trusted authority) or `verify-full`
/// (that, and the certificate names the host). `sslrootcert=<file>` gives the authorities
/// (PEM) to trust; without it, the system's.
public struct PostgresLocation: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var tlsMode: TLSMode
    /// A PEM file of the certificate authorities to trust for `verify-ca` and `verify-full`.
    public var rootCertificates: String?

    /// libpq's `sslmode` values that Hearth takes.
    public enum TLSMode: String, Sendable, Equatable {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    /// Parses a `postgres://` (or `postgresql://`) URL; nil when `text` is not one (or names
    /// an `sslmode` that is not one of ``TLSMode``'s).
    public init?(url text: String) {
        guard let components = URLComponents(string: text), components.scheme == "postgres" || components.scheme == "postgresql",
            let host = components.host, !host.isEmpty, let user = components.user, !user.isEmpty
        else { return nil }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else { return nil }
        self.host = host
        port = components.port ?? 5432
        self.user = user
        password = components.password
        self.database = database
        let query = components.queryItems ?? []
        guard let mode = TLSMode(rawValue: query.last(where: { $0.name == "sslmode" })?.value ?? "disable") else { return nil }
        tlsMode = mode
        rootCertificates = query.last(where: { $0.name == "sslrootcert" })?.value
        let known: Set<String> = ["sslmode", "sslrootcert"]
        guard query.allSatisfy({ known.contains($0.name) }) else { return nil }
    }

    /// The connection settings; throws if the TLS settings cannot be made (a root certificate
    /// file that cannot be read, for instance).
    func configuration() throws -> PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: .disable)
        guard tlsMode != .disable else { return configuration }
        var tls = TLSConfiguration.makeClientConfiguration()
        switch tlsMode {
        case .disable, .prefer, .require: tls.certificateVerification = .none
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .verifyFull: tls.certificateVerification = .fullVerification
        }
        if let rootCertificates { tls.trustRoots = .file(rootCertificates) }
        let context = try NIOSSLContext(configuration: tls)
        configuration.tls = tlsMode == .prefer ? .prefer(context) : .require(context)
        return configuration
    }

    /// The URL with the password hidden, for logs.
    public var description: String {
        "postgres://\(user)@\(host):\(port)/\(database)" + (tlsMode == .disable ? "" : "?sslmode=\(tlsMode.rawValue)")
    }
}

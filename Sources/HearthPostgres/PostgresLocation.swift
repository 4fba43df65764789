import Foundation
import PostgresNIO

/// Where a server's PostgreSQL is: `postgres://user[:password]@host[:port]/database`, the
/// `storage` setting's value. The password may be given percent-encoded.
public struct PostgresLocation: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String

    /// Parses a `postgres://` (or `postgresql://`) URL; nil when `text` is not one.
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
    }

    /// The connection settings (plain TCP: put PostgreSQL on a private network or the loopback).
    var configuration: PostgresConnection.Configuration {
        PostgresConnection.Configuration(host: host, port: port, username: user, password: password, database: database, tls: .disable)
    }

    /// The URL with the password hidden, for logs.
    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }
}

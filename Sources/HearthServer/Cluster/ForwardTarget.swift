import Foundation

/// Where a node is reached for forwarded writes: an `http://host:port` URL (a node's
/// `advertise-url`).
public struct ForwardTarget: Sendable, Equatable {
    public let host: String
    public let port: Int

    /// Parses `http://host:port` (a path or query is not allowed); nil for anything else.
    public init?(_ url: String) {
        guard let components = URLComponents(string: url), components.scheme == "http",
            let host = components.host, !host.isEmpty, let port = components.port, (1...65535).contains(port),
            components.path.isEmpty || components.path == "/", components.query == nil, components.user == nil
        else { return nil }
        self.host = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        self.port = port
    }

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

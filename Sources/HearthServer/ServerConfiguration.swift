import HearthCore

/// Settings for one `hearth serve`.
public struct ServerConfiguration: Sendable {
    /// Address to listen on.
    public var host: String
    public var port: Int
    /// Largest request body accepted, in bytes (Firebase: 256 MB).
    public var maxBodyBytes: Int
    /// The namespace used when neither `ns=` nor the Host header names one.
    public var defaultNamespace: String
    /// Emulator mode, like Firebase's emulator: `Authorization: Bearer owner` is admin,
    /// unsigned mock tokens are accepted, and without rules everything is allowed.
    public var emulator: Bool
    /// Rules for every namespace that has none uploaded (`--rules`). Nil: deny every
    /// non-admin request (allow everything in emulator mode).
    public var rules: RuleSet?
    /// The admin credential; nil accepts none (except `owner` in emulator mode).
    public var adminToken: String?
    /// Verifies user JWTs.
    public var tokenVerifier: TokenVerifier
    /// Realtime streams: keep-alive interval, outbox size, resume history.
    public var streams = StreamOptions()
    /// Origins browsers may call from (`Access-Control-Allow-Origin`); `["*"]`, the default,
    /// allows any, as Firebase does.
    public var corsOrigins: [String] = ["*"]
    /// HTTPS: the certificate chain and private key. With them the server speaks TLS
    /// (1.2 and up) and offers HTTP/2 through ALPN, falling back to HTTP/1.1.
    public var tls: TLSIdentity?
    /// Connection, header, timeout and stream limits.
    public var limits = ServerLimits()
    /// Whether event streams are gzipped for clients that accept it (other responses are,
    /// when large enough, regardless).
    public var compressStreams = true
    /// Whether a request may create a namespace by naming it (`ns=`, or the `Host` header)
    /// without the admin token. Off by default: a write to an unknown namespace is answered
    /// `404`. Emulator mode always allows it, as Firebase's emulator does.
    public var createNamespaces = false
    /// The node follows another node's writes to PostgreSQL (`--follow`): it takes no writes,
    /// no rules and no on-disconnect registrations (`503`).
    public var followsWriter = false
    /// Each namespace keeps its stream history (`--stream-history`) from the moment it opens,
    /// not from its first stream: on a node sharing PostgreSQL with others, a stream that was
    /// on another node resumes here with `Last-Event-ID` although nothing streamed here before.
    public var streamHistoryFromOpen = false
    /// Writes per client address (token buckets; `429` with `Retry-After` beyond them); nil
    /// for no limit. Admin callers are not limited.
    public var writeRateLimit: WriteRateLimit?
    /// Who a request comes from: the peer, or the client a trusted proxy names.
    public var clientAddresses = ClientAddressResolver()
    /// A second listener that serves only `/.metrics` (and `/.health`) without a credential,
    /// for Prometheus; nil serves metrics only on the main port, to the admin.
    public var metricsAddress: ListenAddress?

    public init(
        host: String = "127.0.0.1", port: Int = 9000,
        maxBodyBytes: Int = 256 * 1024 * 1024, defaultNamespace: String = "default", emulator: Bool = false,
        rules: RuleSet? = nil, adminToken: String? = nil, tokenVerifier: TokenVerifier = TokenVerifier()
    ) {
        self.host = host
        self.port = port
        self.maxBodyBytes = maxBodyBytes
        self.defaultNamespace = defaultNamespace
        self.emulator = emulator
        self.rules = rules
        self.adminToken = adminToken
        self.tokenVerifier = tokenVerifier
    }

    /// Whether a caller who is not the admin may create a namespace by naming it.
    public var anyoneCreatesNamespaces: Bool { createNamespaces || emulator }

    /// The rules of namespaces without their own.
    public var fallbackRules: RuleSet {
        rules ?? (emulator ? .allowAll : .denyAll)
    }
}

/// A host and port to listen on, written `host:port` (`[::1]:9091` for IPv6).
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`; nil if there is no port or it is out of range.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = text[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty else { return nil }
        self.host = String(host)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

import Configuration
import HearthPostgres
import HearthServer
import HearthStorage

/// Everything `hearth serve` can be told, with its defaults.
///
/// Each setting has one name, used three ways (Docs/OPERATIONS.md lists them all):
/// the flag `--<name>`, the environment variable `HEARTH_<NAME>` (upper case, `-` as `_`)
/// and the key `"<name>"` in the JSON file given by `--config` (or `HEARTH_CONFIG`).
/// A flag beats the environment, which beats the file, which beats the default.
struct ServeSettings: Sendable {
    // Listening
    var host = "127.0.0.1"
    var port = 9000
    var tlsCert: String?
    var tlsKey: String?
    var corsOrigin: [String] = []

    // Data
    var dataDir = "./hearth-data"
    var inMemory = false
    /// `file` (the data directory), or a `postgres://user[:password]@host[:port]/database` URL.
    var storage = "file"
    /// With PostgreSQL storage: follow another node's writes and take none.
    var follow = false
    var advertiseURL: String?
    var defaultNamespace = "default"
    var fsync = "always"
    var segmentBytes = 64 << 20
    var snapshotAfterRecords = 1_000_000
    var snapshotAfterBytes = 256 << 20

    // Limits
    var maxBodyBytes = 256 * 1024 * 1024
    var maxHeaderBytes = 64 * 1024
    var maxConnections = 4096
    var requestTimeoutSeconds = 60.0
    var maxStreamsPerClient = 256
    var maxListensPerConnection = 1000
    var maxRealtimeMessageBytes = 17 << 20
    var shutdownTimeoutSeconds = 10.0
    var writeRateLimit = 0.0
    var writeRateBurst = 100
    var trustedProxy: [String] = []
    var proxyHeader = "x-forwarded-for"

    // Streams
    var keepAliveSeconds = 30.0
    var streamOutboxBytes = 4 << 20
    var streamHistory = 10_000
    var compressStreams = true

    // Security
    var emulator = false
    var createNamespaces = false
    var rules: String?
    var adminToken: String?
    var adminTokenFile: String?
    var jwtSecretFile: [String] = []
    var jwtPublicKey: [String] = []
    var jwksFile: String?
    var jwtIssuer: String?
    var jwtAudience: String?
    var jwtLeeway = 60

    // Logging and metrics
    var logLevel = "info"
    var logFormat = "text"
    var metricsAddress: String?

    /// The settings, in the order `--print-config` shows them.
    static let fields: [SettingField] = [
        .string("host", \.host),
        .int("port", \.port),
        .optionalString("tls-cert", \.tlsCert),
        .optionalString("tls-key", \.tlsKey),
        .strings("cors-origin", \.corsOrigin),
        .string("data-dir", \.dataDir),
        .bool("in-memory", \.inMemory),
        .string("storage", \.storage, secret: true),
        .bool("follow", \.follow),
        .optionalString("advertise-url", \.advertiseURL),
        .string("default-namespace", \.defaultNamespace),
        .string("fsync", \.fsync),
        .int("segment-bytes", \.segmentBytes),
        .int("snapshot-after-records", \.snapshotAfterRecords),
        .int("snapshot-after-bytes", \.snapshotAfterBytes),
        .int("max-body-bytes", \.maxBodyBytes),
        .int("max-header-bytes", \.maxHeaderBytes),
        .int("max-connections", \.maxConnections),
        .double("request-timeout-seconds", \.requestTimeoutSeconds),
        .int("max-streams-per-client", \.maxStreamsPerClient),
        .int("max-listens-per-connection", \.maxListensPerConnection),
        .int("max-realtime-message-bytes", \.maxRealtimeMessageBytes),
        .double("shutdown-timeout-seconds", \.shutdownTimeoutSeconds),
        .double("write-rate-limit", \.writeRateLimit),
        .int("write-rate-burst", \.writeRateBurst),
        .strings("trusted-proxy", \.trustedProxy),
        .string("proxy-header", \.proxyHeader),
        .double("keep-alive-seconds", \.keepAliveSeconds),
        .int("stream-outbox-bytes", \.streamOutboxBytes),
        .int("stream-history", \.streamHistory),
        .bool("compress-streams", \.compressStreams),
        .bool("emulator", \.emulator),
        .bool("create-namespaces", \.createNamespaces),
        .optionalString("rules", \.rules),
        .optionalString("admin-token", \.adminToken, secret: true),
        .optionalString("admin-token-file", \.adminTokenFile),
        .strings("jwt-secret-file", \.jwtSecretFile),
        .strings("jwt-public-key", \.jwtPublicKey),
        .optionalString("jwks-file", \.jwksFile),
        .optionalString("jwt-issuer", \.jwtIssuer),
        .optionalString("jwt-audience", \.jwtAudience),
        .int("jwt-leeway", \.jwtLeeway),
        .string("log-level", \.logLevel),
        .string("log-format", \.logFormat),
        .optionalString("metrics-address", \.metricsAddress),
    ]

    /// The environment variable for a setting: `max-body-bytes` → `HEARTH_MAX_BODY_BYTES`.
    static func environmentName(_ name: String) -> String {
        "HEARTH_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// Checks values no single type can: ranges and combinations. The messages name the setting.
    func validate() throws(SettingsError) {
        func require(_ condition: Bool, _ message: String) throws(SettingsError) {
            if !condition { throw SettingsError(message) }
        }
        try require((0...65535).contains(port), "port must be 0-65535.")
        try require(
            NamespaceRegistry.isValidName(defaultNamespace),
            "default-namespace must be 1-63 characters of a-z, 0-9, '-' and '_'.")
        try require(FsyncPolicy(fsync) != nil, "fsync must be always, none, interval or interval:<ms>.")
        try require(
            storage == "file" || PostgresLocation(url: storage) != nil,
            "storage must be file or a postgres://user[:password]@host[:port]/database URL (its query may give sslmode=disable, prefer, require, verify-ca or verify-full, and sslrootcert=<file>).")
        try require(!(inMemory && storage != "file"), "in-memory and a postgres storage exclude each other.")
        try require(!follow || storage != "file", "follow needs a postgres storage: it follows the node writing there.")
        try require((tlsCert == nil) == (tlsKey == nil), "tls-cert and tls-key go together.")
        try require(maxBodyBytes > 0, "max-body-bytes must be positive.")
        try require(maxHeaderBytes >= 1024, "max-header-bytes must be at least 1024.")
        try require(maxConnections >= 1, "max-connections must be at least 1.")
        try require(
            requestTimeoutSeconds.isFinite && (0.1...86_400).contains(requestTimeoutSeconds),
            "request-timeout-seconds must be between 0.1 and 86400.")
        try require(maxStreamsPerClient >= 1, "max-streams-per-client must be at least 1.")
        try require(maxListensPerConnection >= 1, "max-listens-per-connection must be at least 1.")
        try require(
            (1024...(1 << 30)).contains(maxRealtimeMessageBytes), "max-realtime-message-bytes must be between 1024 and 1073741824.")
        try require(
            shutdownTimeoutSeconds.isFinite && (0...86_400).contains(shutdownTimeoutSeconds),
            "shutdown-timeout-seconds must be between 0 and 86400.")
        try require(
            keepAliveSeconds.isFinite && (0.05...86_400).contains(keepAliveSeconds),
            "keep-alive-seconds must be between 0.05 and 86400.")
        try require(streamOutboxBytes >= 1024, "stream-outbox-bytes must be at least 1024.")
        try require(streamHistory >= 0, "stream-history must not be negative.")
        try require(segmentBytes >= 4096, "segment-bytes must be at least 4096.")
        try require(snapshotAfterRecords > 0 && snapshotAfterBytes > 0, "snapshot thresholds must be positive.")
        try require(
            writeRateLimit.isFinite && writeRateLimit >= 0, "write-rate-limit must be a number of writes per second, 0 for none.")
        try require(writeRateBurst >= 1, "write-rate-burst must be at least 1.")
        for proxy in trustedProxy {
            try require(IPNetwork(proxy) != nil, "trusted-proxy \(proxy) is not an IP address or a range such as 10.0.0.0/8.")
        }
        try require(
            ForwardedHeader(rawValue: proxyHeader.lowercased()) != nil, "proxy-header must be x-forwarded-for or forwarded.")
        if let advertiseURL {
            try require(
                ForwardTarget(advertiseURL) != nil, "advertise-url must be http://host:port, the address other nodes reach this one at.")
        }
        if let metricsAddress {
            let address = ListenAddress(metricsAddress)
            try require(address != nil, "metrics-address must be host:port, for example 127.0.0.1:9091.")
            try require(
                address != ListenAddress(host: host, port: port) || port == 0,
                "metrics-address must differ from the server's own host and port.")
        }
        try require(jwtLeeway >= 0, "jwt-leeway must not be negative.")
        try require(adminToken == nil || adminTokenFile == nil, "give admin-token or admin-token-file, not both.")
        try require(adminToken.map { $0.count >= 16 } ?? true, "admin-token must be at least 16 characters.")
        try require(
            ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel),
            "log-level must be trace, debug, info, notice, warning, error or critical.")
        try require(["text", "json"].contains(logFormat), "log-format must be text or json.")
    }
}

/// A setting that cannot be used, with a message for the operator.
struct SettingsError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One setting: its name, the type it is read as, whether it is a secret, and where it lives in
/// ``ServeSettings``.
struct SettingField: Sendable {
    let name: String
    let type: ConfigType
    /// Secrets are masked by `--print-config`.
    let secret: Bool
    let read: @Sendable (ServeSettings) -> ConfigContent?
    let write: @Sendable (inout ServeSettings, ConfigContent) -> Void

    static func string(_ name: String, _ key: WritableKeyPath<ServeSettings, String> & Sendable, secret: Bool = false) -> SettingField {
        SettingField(name: name, type: .string, secret: secret, read: { .string($0[keyPath: key]) }) { settings, value in
            if case .string(let string) = value { settings[keyPath: key] = string }
        }
    }

    static func optionalString(
        _ name: String, _ key: WritableKeyPath<ServeSettings, String?> & Sendable, secret: Bool = false
    ) -> SettingField {
        SettingField(name: name, type: .string, secret: secret, read: { $0[keyPath: key].map { .string($0) } }) { settings, value in
            if case .string(let string) = value { settings[keyPath: key] = string }
        }
    }

    static func int(_ name: String, _ key: WritableKeyPath<ServeSettings, Int> & Sendable) -> SettingField {
        SettingField(name: name, type: .int, secret: false, read: { .int($0[keyPath: key]) }) { settings, value in
            if case .int(let int) = value { settings[keyPath: key] = int }
        }
    }

    static func double(_ name: String, _ key: WritableKeyPath<ServeSettings, Double> & Sendable) -> SettingField {
        SettingField(name: name, type: .double, secret: false, read: { .double($0[keyPath: key]) }) { settings, value in
            switch value {
            case .double(let double): settings[keyPath: key] = double
            case .int(let int): settings[keyPath: key] = Double(int)
            default: break
            }
        }
    }

    static func bool(_ name: String, _ key: WritableKeyPath<ServeSettings, Bool> & Sendable) -> SettingField {
        SettingField(name: name, type: .bool, secret: false, read: { .bool($0[keyPath: key]) }) { settings, value in
            if case .bool(let bool) = value { settings[keyPath: key] = bool }
        }
    }

    static func strings(_ name: String, _ key: WritableKeyPath<ServeSettings, [String]> & Sendable) -> SettingField {
        SettingField(name: name, type: .stringArray, secret: false, read: { .stringArray($0[keyPath: key]) }) { settings, value in
            if case .stringArray(let strings) = value { settings[keyPath: key] = strings }
        }
    }
}

extension ServeSettings {
    /// The write limit, nil when `write-rate-limit` is 0.
    var writeLimit: WriteRateLimit? {
        writeRateLimit > 0 ? WriteRateLimit(perSecond: writeRateLimit, burst: writeRateBurst) : nil
    }

    /// Who requests come from: `trusted-proxy` and `proxy-header`.
    var clientAddresses: ClientAddressResolver {
        ClientAddressResolver(
            trustedProxies: trustedProxy.compactMap(IPNetwork.init),
            header: ForwardedHeader(rawValue: proxyHeader.lowercased()) ?? .xForwardedFor)
    }
}

extension ServeSettings {
    /// The URL other nodes forward writes to: `advertise-url`, else `http://<host>:<port>`
    /// when that names one machine (not a wildcard address, nor port 0), else none.
    var advertisedURL: String? {
        if let advertiseURL { return advertiseURL }
        guard !["0.0.0.0", "::", "[::]", ""].contains(host), port != 0, tlsCert == nil else { return nil }
        return host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)"
    }
}

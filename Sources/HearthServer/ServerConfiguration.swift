import HearthCore

/// Settings for one `hearth serve`.
public struct ServerConfiguration: Sendable {
    /// Address to listen on.
    public var host: String
    public var port: Int
    /// Where namespaces keep their data; nil keeps everything in memory.
    public var dataDirectory: String?
    /// Largest request body accepted, in bytes (Firebase: 256 MB).
    public var maxBodyBytes: Int
    /// The namespace used when neither `ns=` nor the Host header names one.
    public var defaultNamespace: String
    /// Emulator mode: accept `Authorization: Bearer owner` as admin, like Firebase's emulator.
    public var emulator: Bool

    public init(
        host: String = "127.0.0.1", port: Int = 9000, dataDirectory: String? = nil,
        maxBodyBytes: Int = 256 * 1024 * 1024, defaultNamespace: String = "default", emulator: Bool = false
    ) {
        self.host = host
        self.port = port
        self.dataDirectory = dataDirectory
        self.maxBodyBytes = maxBodyBytes
        self.defaultNamespace = defaultNamespace
        self.emulator = emulator
    }
}

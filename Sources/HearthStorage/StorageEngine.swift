import HearthCore

/// Opens the namespaces of a data directory.
///
/// This is the seam between the server and durable storage. Until the append-only log lands,
/// every namespace is held in memory with a ``MemoryWriteLog`` and the data directory is only
/// created, not written: a restart starts empty.
public struct StorageEngine: Sendable {
    /// The data directory, or nil for a purely in-memory server.
    public let directory: String?

    public init(directory: String?) {
        self.directory = directory
    }

    /// Opens (or creates) the database for `namespace`.
    public func open(namespace: String) throws -> Database {
        Database(name: namespace, log: MemoryWriteLog())
    }

    /// The namespaces that already exist in the data directory.
    public func existingNamespaces() throws -> [String] { [] }
}

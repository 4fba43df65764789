import HearthCore

/// Where namespaces live when they are not in the data directory: PostgreSQL (HearthPostgres),
/// behind a ``StorageEngine`` made with `backend:`. The engine keeps what is per node (the data
/// directory's lock, and what the server keeps beside it) and hands the namespaces to this.
///
/// The calls are synchronous, as the engine's are: they happen at start, when a namespace is
/// first opened, and when rules are stored.
public protocol NamespaceBackend: Sendable {
    /// Opens (recovering) or creates the database for `namespace`, with its write log.
    func open(namespace: String, options: StorageOptions, observer: StorageObserver) throws -> Database
    /// The namespaces that already exist.
    func existingNamespaces() throws -> [String]
    /// The security rules document stored for `namespace`, if any.
    func storedRules(namespace: String) throws -> String?
    /// Stores `namespace`'s rules document durably.
    func storeRules(_ text: String, namespace: String) throws
    /// The bytes of log and snapshots stored now.
    func diskUsage() -> StorageDiskUsage
    /// Takes a snapshot of every open namespace now.
    func compactAll() throws
    /// Makes every log durable and closes (graceful shutdown).
    func close()
    /// For a node that follows writes made elsewhere: `handler` is told of each namespace that
    /// appears there and of each rules document stored there, so that the server opens the
    /// namespace or takes the rules.
    func onFollowedChange(_ handler: @escaping @Sendable (FollowedChange) -> Void)
    /// Which node should write `namespace` (several nodes sharing the storage): this one, or
    /// the one at an address, which REST writes are forwarded to.
    func writeOwner(of namespace: String) -> WriteOwner
    /// The owner at `address` did not answer a forwarded write: this node writes `namespace`
    /// itself for now.
    func ownerUnreachable(_ namespace: String, address: String)
    /// Where this node keeps its sessions' on-disconnect writes, when not in the data
    /// directory: shared storage, from which other nodes make them if this node dies.
    func sessionStore() -> (any SessionStore)?
    /// `handler` gets the on-disconnect entries of nodes found dead (they stopped renewing
    /// their presence), now this node's to make and then remove from ``sessionStore()``.
    func onOrphanedSessions(_ handler: @escaping @Sendable ([String: [UInt8]]) -> Void)
}

/// Which node should write a namespace (see ``NamespaceBackend/writeOwner(of:)``).
public enum WriteOwner: Sendable, Equatable {
    case thisNode
    /// The node that holds the namespace's lease, at the URL it gave (`http://host:port`).
    case node(address: String)
}

/// What a following node learns besides data (see ``NamespaceBackend/onFollowedChange(_:)``).
public enum FollowedChange: Sendable, Equatable {
    case namespaceAppeared(String)
    case rulesStored(String)
}

extension NamespaceBackend {
    public func onFollowedChange(_ handler: @escaping @Sendable (FollowedChange) -> Void) {}
    public func writeOwner(of namespace: String) -> WriteOwner { .thisNode }
    public func ownerUnreachable(_ namespace: String, address: String) {}
    public func sessionStore() -> (any SessionStore)? { nil }
    public func onOrphanedSessions(_ handler: @escaping @Sendable ([String: [UInt8]]) -> Void) {}
}

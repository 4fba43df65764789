import Foundation
import HearthCore
import Logging
import Synchronization

/// Settings for durable storage.
public struct StorageOptions: Sendable {
    public var fsync: FsyncPolicy
    /// A segment is closed and a new one started once it passes this size.
    public var segmentBytes: Int
    /// Take a snapshot once this many log bytes were written since the last one...
    public var snapshotAfterBytes: Int
    /// ...or this many records.
    public var snapshotAfterRecords: Int

    public init(
        fsync: FsyncPolicy = .always, segmentBytes: Int = 64 << 20, snapshotAfterBytes: Int = 256 << 20,
        snapshotAfterRecords: Int = 1_000_000
    ) {
        self.fsync = fsync
        self.segmentBytes = segmentBytes
        self.snapshotAfterBytes = snapshotAfterBytes
        self.snapshotAfterRecords = snapshotAfterRecords
    }
}

/// Opens the namespaces of a data directory (`<directory>/<namespace>/`), recovering each from
/// its snapshot and log; or keeps everything in memory when there is no directory; or, with a
/// ``NamespaceBackend``, opens them there (the data directory then holds only what is per node).
public final class StorageEngine: Sendable {
    /// The data directory, or nil for a purely in-memory server.
    public let directory: String?
    /// Where the namespaces are when not in the data directory.
    public let backend: (any NamespaceBackend)?
    public let options: StorageOptions
    let logger: Logger
    /// Reports what the storage does (sync durations) to the server's metrics.
    public let observer = StorageObserver()
    let stores = LockedStores()
    /// The lock on the data directory, taken by the first `open` and kept until `close`.
    let directoryLock = Mutex<DirectoryLock?>(nil)

    public init(
        directory: String?, backend: (any NamespaceBackend)? = nil, options: StorageOptions = StorageOptions(),
        logger: Logger = Logger(label: "hearth.storage")
    ) {
        self.directory = directory
        self.backend = backend
        self.options = options
        self.logger = logger
    }

    /// Takes the data directory's lock (a server does this at start, before listening), so a
    /// second process is refused at once rather than at its first write.
    public func lockDirectory() throws {
        guard let directory else { return }
        try directoryLock.withLock { lock in
            if lock == nil { lock = try DirectoryLock(directory: directory) }
        }
    }

    /// Opens (recovering) or creates the database for `namespace`.
    public func open(namespace: String) throws -> Database {
        if let backend { return try backend.open(namespace: namespace, options: options, observer: observer) }
        guard let directory else { return Database(name: namespace, log: MemoryWriteLog()) }
        try lockDirectory()
        let store = try NamespaceStore.open(
            directory: NamespaceFiles(dataDirectory: directory, namespace: namespace).directory, namespace: namespace, options: options, logger: logger,
            observer: observer)
        stores.add(store)
        return store.database
    }

    /// The namespaces that already exist in the data directory (those with a MANIFEST).
    public func existingNamespaces() throws -> [String] {
        if let backend { return try backend.existingNamespaces() }
        guard let directory, FileIO.exists(directory) else { return [] }
        return try FileIO.list(directory).filter {
            FileIO.exists(NamespaceFiles(dataDirectory: directory, namespace: $0).manifest)
        }
    }

    /// The security rules document stored for `namespace` (`<ns>/rules.json`), if any.
    public func storedRules(namespace: String) throws -> String? {
        if let backend { return try backend.storedRules(namespace: namespace) }
        guard let directory else { return nil }
        let path = NamespaceFiles(dataDirectory: directory, namespace: namespace).rules
        guard FileIO.exists(path) else { return nil }
        return String(decoding: try FileIO.read(path), as: UTF8.self)
    }

    /// Stores `namespace`'s rules document durably (temp file, fsync, rename, fsync of the
    /// directory). The namespace must have been opened. Nothing is stored without a directory.
    public func storeRules(_ text: String, namespace: String) throws {
        if let backend { return try backend.storeRules(text, namespace: namespace) }
        guard let directory else { return }
        let files = NamespaceFiles(dataDirectory: directory, namespace: namespace)
        try FileIO.writeAtomically(Array(text.utf8), to: files.rules, directory: files.directory)
    }

    /// The bytes of log segments and snapshots in the data directory now (zero in memory).
    public func diskUsage() -> StorageDiskUsage {
        if let backend { return backend.diskUsage() }
        var usage = StorageDiskUsage()
        guard let directory, let namespaces = try? existingNamespaces() else { return usage }
        for namespace in namespaces {
            let files = NamespaceFiles(dataDirectory: directory, namespace: namespace)
            for name in (try? FileIO.list(files.directory)) ?? [] {
                let size = (try? FileIO.size(files.path(name))) ?? 0
                if name.hasSuffix(StorageFormat.segmentSuffix) { usage.logBytes += size }
                if name.hasSuffix(StorageFormat.snapshotSuffix) { usage.snapshotBytes += size }
            }
        }
        return usage
    }

    /// Takes a snapshot of every open namespace now.
    public func compactAll() throws {
        if let backend { return try backend.compactAll() }
        for store in stores.all { try store.writeSnapshot() }
    }

    /// Tells `handler` of namespaces and rules that appear in a followed store (see
    /// ``NamespaceBackend/onFollowedChange(_:)``); never for a data directory.
    public func onFollowedChange(_ handler: @escaping @Sendable (FollowedChange) -> Void) {
        backend?.onFollowedChange(handler)
    }

    /// Which node should write `namespace` (see ``NamespaceBackend/writeOwner(of:)``); always
    /// this one for a data directory.
    public func writeOwner(of namespace: String) -> WriteOwner {
        backend?.writeOwner(of: namespace) ?? .thisNode
    }

    /// Where on-disconnect writes are kept when not in the data directory (see
    /// ``NamespaceBackend/sessionStore()``).
    public func sessionStore() -> (any SessionStore)? { backend?.sessionStore() }

    /// See ``NamespaceBackend/onOrphanedSessions(_:)``.
    public func onOrphanedSessions(_ handler: @escaping @Sendable ([String: [UInt8]]) -> Void) {
        backend?.onOrphanedSessions(handler)
    }

    /// A forwarded write found no node at `address` (see ``NamespaceBackend/ownerUnreachable(_:address:)``).
    public func ownerUnreachable(_ namespace: String, address: String) {
        backend?.ownerUnreachable(namespace, address: address)
    }

    /// Flushes and closes every log (graceful shutdown).
    public func close() {
        backend?.close()
        for store in stores.all { store.close() }
        directoryLock.withLock { $0 = nil }
    }
}

/// The open namespace stores, for shutdown and compaction.
final class LockedStores: @unchecked Sendable {
    private let lock = NSLock()
    private var stores: [NamespaceStore] = []

    func add(_ store: NamespaceStore) {
        lock.lock()
        stores.append(store)
        lock.unlock()
    }

    var all: [NamespaceStore] {
        lock.lock()
        defer { lock.unlock() }
        return stores
    }
}

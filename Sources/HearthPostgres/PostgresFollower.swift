import Foundation
import HearthCore
import HearthStorage
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// A node that follows what the other nodes write to PostgreSQL (`--follow`) and writes
/// nothing: it loads every namespace, then applies the records the writing nodes commit as
/// they appear (``PostgresTail``), so its REST reads, SSE streams and realtime listens see
/// them in order, with the writers' sequence numbers as event ids. Writes get `503` naming
/// the reason.
public final class PostgresFollower: NamespaceBackend, Sendable {
    public let location: PostgresLocation
    let logger: Logger
    let connection: BlockingConnection
    let followed = Followed()
    let tail: PostgresTail

    /// The namespaces followed, by name (shared with the tail).
    final class Followed: Sendable {
        let databases = Mutex<[String: Database]>([:])
    }

    /// Why a follower refuses writes.
    public struct ReadOnly: Error, CustomStringConvertible {
        public var description: String { "this node follows PostgreSQL and takes no writes: send writes to a writing node" }
    }

    /// Connects and checks Hearth's tables (a follower creates nothing), then starts following.
    public init(location: PostgresLocation, logger: Logger) throws {
        self.location = location
        self.logger = logger
        connection = try PostgresSchema.readerConnection(to: location, logger: logger)
        tail = PostgresTail(location: location, nodeID: UUID().uuidString, logger: logger) { [followed] in
            followed.databases.withLock { $0 }
        }
    }

    public func open(namespace: String, options: StorageOptions, observer: StorageObserver) throws -> Database {
        if let open = followed.databases.withLock({ $0[namespace] }) { return open }
        let loaded = try PostgresNamespace.load(namespace, from: connection)
        let database = Database(
            name: namespace, root: loaded.root, sequence: loaded.sequence, log: ReadOnlyLog(), lastPushTime: loaded.pushTime)
        followed.databases.withLock { $0[namespace] = database }
        return database
    }

    public func existingNamespaces() throws -> [String] {
        try connection.namespaceNames()
    }

    public func storedRules(namespace: String) throws -> String? {
        try connection.storedRules(namespace: namespace)
    }

    public func storeRules(_ text: String, namespace: String) throws { throw ReadOnly() }

    public func diskUsage() -> StorageDiskUsage { StorageDiskUsage() }

    public func compactAll() throws {}

    public func onFollowedChange(_ handler: @escaping @Sendable (FollowedChange) -> Void) {
        tail.onFollowedChange(handler)
    }

    public func close() {
        tail.close()
        connection.close()
    }
}

/// The log of a followed namespace: it refuses every write.
struct ReadOnlyLog: WriteLog {
    func append(_ record: LogRecord, pushTime: Int64) throws -> UInt64 { throw PostgresFollower.ReadOnly() }
    func waitUntilDurable(_ sequence: UInt64, ticket: UInt64) async throws {}
    func recover(from failure: any Error) -> UInt64? { nil }
}

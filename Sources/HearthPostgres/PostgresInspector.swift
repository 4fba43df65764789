import HearthCore
import Logging

/// Reads what a PostgreSQL database holds without taking the node's lock or changing
/// anything, for the offline tools (`hearth verify`, `hearth export`): a running node's
/// committed data can be read this way too.
public struct PostgresInspector: Sendable {
    let connection: BlockingConnection

    /// What one namespace's rows amount to.
    public struct Report: Sendable {
        public var root: Node
        public var lastSequence: UInt64
        public var snapshotSequence: UInt64?
        public var replayedRecords: Int
    }

    /// Connects, and checks that the database holds Hearth's tables in a layout this build
    /// reads.
    public init(location: PostgresLocation, logger: Logger) throws {
        connection = try PostgresSchema.readerConnection(to: location, logger: logger)
    }

    public func namespaces() throws -> [String] {
        try connection.namespaceNames()
    }

    /// The namespace's tree, loaded as a node loads it (a gap in the log is an error).
    public func load(namespace: String) throws -> Report {
        let loaded = try PostgresNamespace.load(namespace, from: connection)
        return Report(
            root: loaded.root, lastSequence: loaded.sequence, snapshotSequence: loaded.snapshotSequence,
            replayedRecords: loaded.replayed)
    }

    /// The namespace's rules document, if one was stored.
    public func rules(namespace: String) throws -> String? {
        try connection.storedRules(namespace: namespace)
    }

    public func close() {
        connection.close()
    }
}

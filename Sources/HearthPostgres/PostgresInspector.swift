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
        connection = BlockingConnection(location: location, logger: logger)
        let version = try connection.query(
            "SELECT max(version) FROM hearth_schema"
        ).first?.decode(Int32?.self) ?? nil
        guard let version else {
            connection.close()
            throw NoTables(location: location)
        }
        guard version <= PostgresSchema.version else {
            connection.close()
            throw PostgresSchema.TooNew(found: version)
        }
    }

    struct NoTables: Error, CustomStringConvertible {
        let location: PostgresLocation
        var description: String { "\(location.description) holds no Hearth tables" }
    }

    public func namespaces() throws -> [String] {
        try connection.query("SELECT name FROM hearth_namespaces ORDER BY name").map { try $0.decode(String.self) }
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
        try connection.query("SELECT source FROM hearth_rules WHERE namespace = \(namespace)").first?.decode(String.self)
    }

    public func close() {
        connection.close()
    }
}

import Logging
import PostgresNIO

/// The tables Hearth keeps in PostgreSQL, created and migrated by Hearth itself. The version
/// in `hearth_schema` says which layout a database has; a server refuses a database made by a
/// newer Hearth. See Docs/CLUSTER.md.
enum PostgresSchema {
    /// The layout this build writes.
    static let version: Int32 = 1

    struct TooNew: Error, CustomStringConvertible {
        let found: Int32
        var description: String {
            "the PostgreSQL database has Hearth schema version \(found); this Hearth knows up to \(PostgresSchema.version): upgrade Hearth"
        }
    }

    /// Version 1: namespaces; their log records (the file log's record payloads, by sequence);
    /// their latest snapshot (the snapshot file's bytes); their rules documents.
    static let version1 = [
        """
        CREATE TABLE hearth_namespaces (
            name text PRIMARY KEY,
            created_at timestamptz NOT NULL DEFAULT now())
        """,
        """
        CREATE TABLE hearth_log (
            namespace text NOT NULL REFERENCES hearth_namespaces (name),
            sequence bigint NOT NULL,
            push_time bigint NOT NULL,
            record bytea NOT NULL,
            PRIMARY KEY (namespace, sequence))
        """,
        """
        CREATE TABLE hearth_snapshots (
            namespace text PRIMARY KEY REFERENCES hearth_namespaces (name),
            sequence bigint NOT NULL,
            push_time bigint NOT NULL,
            data bytea NOT NULL,
            taken_at timestamptz NOT NULL DEFAULT now())
        """,
        """
        CREATE TABLE hearth_rules (
            namespace text PRIMARY KEY REFERENCES hearth_namespaces (name),
            source text NOT NULL,
            stored_at timestamptz NOT NULL DEFAULT now())
        """,
    ]

    /// Creates the tables, or checks their version. Nodes starting together take turns (the
    /// version table is locked for the transaction).
    static func migrate(_ connection: BlockingConnection, logger: Logger) throws {
        do {
            _ = try connection.query("CREATE TABLE IF NOT EXISTS hearth_schema (version integer NOT NULL)")
        } catch {
            // Two nodes creating it at once: one gets a duplicate-key error; it exists now.
            _ = try connection.query("CREATE TABLE IF NOT EXISTS hearth_schema (version integer NOT NULL)")
        }
        try connection.transaction { run in
            _ = try run("LOCK TABLE hearth_schema IN EXCLUSIVE MODE")
            let rows = try run("SELECT max(version) FROM hearth_schema")
            guard try checked(rows.first?.decode(Int32?.self) ?? nil) == nil else { return }
            for statement in version1 { _ = try run(PostgresQuery(unsafeSQL: statement)) }
            _ = try run("INSERT INTO hearth_schema (version) VALUES (\(version))")
            logger.notice("created Hearth's tables in PostgreSQL", metadata: ["schema": "\(version)"])
        }
    }

    /// The layout a database holds (nil: none yet); a newer one than this build's is refused.
    static func checked(_ found: Int32?) throws -> Int32? {
        if let found, found > version { throw TooNew(found: found) }
        return found
    }

    struct NoTables: Error, CustomStringConvertible {
        let location: PostgresLocation
        var description: String { "\(location.description) holds no Hearth tables" }
    }

    /// For nodes and tools that only read: the database must hold Hearth's tables, in a layout
    /// this build reads.
    static func requireTables(on connection: BlockingConnection) throws {
        let found = try connection.query("SELECT max(version) FROM hearth_schema").first?.decode(Int32?.self) ?? nil
        guard try checked(found) != nil else { throw NoTables(location: connection.location) }
    }
}

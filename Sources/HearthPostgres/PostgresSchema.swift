import Logging
import PostgresNIO

/// The tables Hearth keeps in PostgreSQL, created and migrated by Hearth itself. The version
/// in `hearth_schema` says which layout a database has; a server refuses a database made by a
/// newer Hearth. See Docs/CLUSTER.md.
enum PostgresSchema {
    /// The layout this build writes.
    static let version: Int32 = 2

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

    /// Version 2: each log row says which commit wrote it (a random id per batch, so that a
    /// node that lost a commit's answer finds exactly its own rows) and when (the snapshot
    /// trims only rows older than ``PostgresNamespace/trimAge``, so that such a node still finds
    /// them); each namespace's write lease (``PostgresLeases``); the nodes' presence and their
    /// sessions' on-disconnect writes (``PostgresSessions``).
    static let version2 = [
        "ALTER TABLE hearth_log ADD COLUMN commit_id uuid",
        "ALTER TABLE hearth_log ADD COLUMN committed_at timestamptz NOT NULL DEFAULT now()",
        """
        CREATE TABLE hearth_leases (
            namespace text PRIMARY KEY,
            node text NOT NULL,
            address text NOT NULL,
            expires_at timestamptz NOT NULL)
        """,
        "CREATE TABLE hearth_nodes (node text PRIMARY KEY, seen_at timestamptz NOT NULL)",
        """
        CREATE TABLE hearth_sessions (
            node text NOT NULL,
            key text NOT NULL,
            value bytea NOT NULL,
            PRIMARY KEY (node, key))
        """,
    ]

    /// The statements that bring a database from version `found` (nil: no tables) to this
    /// build's.
    static func migrations(from found: Int32?) -> [String] {
        var statements: [String] = []
        if found == nil { statements += version1 }
        if (found ?? 0) < 2 { statements += version2 }
        return statements
    }

    /// Creates the tables, or checks their version and migrates older ones. Nodes starting together take turns (the
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
            let found = try checked(rows.first?.decode(Int32?.self) ?? nil)
            guard found != version else { return }
            for statement in migrations(from: found) { _ = try run(PostgresQuery(unsafeSQL: statement)) }
            _ = try run("INSERT INTO hearth_schema (version) VALUES (\(version))")
            logger.notice(found == nil ? "created Hearth's tables in PostgreSQL" : "migrated Hearth's tables in PostgreSQL",
                          metadata: ["schema": "\(version)", "from": "\(found.map(String.init) ?? "none")"])
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

    /// A connection to `location` for a node or tool that only reads, once ``requireTables(on:)``
    /// found the tables (closed again if not).
    static func readerConnection(to location: PostgresLocation, logger: Logger) throws -> BlockingConnection {
        let connection = BlockingConnection(location: location, logger: logger)
        do {
            try requireTables(on: connection)
        } catch {
            connection.close()
            throw error
        }
        return connection
    }
}

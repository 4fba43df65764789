import Foundation
import HearthCore
import HearthStorage
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// Namespaces in PostgreSQL (`--storage postgres://…`): their logs, snapshots and rules in
/// the tables of ``PostgresSchema``, for a ``StorageEngine`` made with `backend:`.
///
/// Any number of nodes may serve one database, each writing any namespace: each holds every
/// namespace in memory and follows what the others commit (``PostgresTail``), and
/// the fence in ``PostgresWriteLog`` makes the writes of a namespace linear across nodes (a
/// write judged against a state another node has since moved past is applied again to the
/// newer one). See Docs/CLUSTER.md.
public final class PostgresBackend: NamespaceBackend, Sendable {
    public let location: PostgresLocation
    let logger: Logger
    /// For opening namespaces, rules and snapshots; it also holds the node's advisory lock.
    let control: BlockingConnection
    let namespaces = Mutex<[String: PostgresNamespace]>([:])
    /// Names this node in the notifications it sends (it ignores its own).
    let nodeID = UUID().uuidString
    /// A serving node's: tells the others of its commits, and follows theirs (from the moment
    /// the server asks to be told, ``onFollowedChange(_:)``). A tool has neither.
    let notifier: PostgresNotifier?
    let tail = Mutex<PostgresTail?>(nil)
    /// A serving node's with an address the others can reach: who writes which namespace.
    let leases: PostgresLeases?
    /// A serving node's: its sessions' on-disconnect writes, and those of dead nodes.
    let sessions: PostgresSessions?

    /// The advisory lock key: "hearth" in ASCII. Serving nodes share it; a tool that must be
    /// alone (import, compact, move-namespace) takes it exclusively.
    static let lockKey: Int64 = 0x6865_6172_7468

    struct InUse: Error, CustomStringConvertible {
        let location: PostgresLocation
        let exclusive: Bool
        var description: String {
            exclusive
                ? "another Hearth node uses \(location.description): stop the nodes serving it first"
                : "a Hearth tool (import, compact, move-namespace) is using \(location.description) alone: wait for it to finish"
        }
    }

    /// Connects, creates or checks the tables, and takes the advisory lock: shared for a
    /// serving node, `exclusive` for a tool that must be alone. A serving node that gives the
    /// URL others reach it at (`advertise`) takes write leases, and others forward writes to
    /// it. Throws if PostgreSQL cannot be reached, its tables are from a newer Hearth, or the
    /// lock cannot be had.
    public init(location: PostgresLocation, logger: Logger, exclusive: Bool = false, advertise: String? = nil) throws {
        self.location = location
        self.logger = logger
        // The lock is a session's: the control connection takes it whenever it (re)connects.
        control = BlockingConnection(location: location, logger: logger) { connection in
            let function = exclusive ? "pg_try_advisory_lock" : "pg_try_advisory_lock_shared"
            let locked = try connection.query(
                "SELECT \(unescaped: function)(\(PostgresBackend.lockKey))", logger: logger
            ).wait().first?.decode(Bool.self)
            guard locked == true else { throw InUse(location: location, exclusive: exclusive) }
        }
        do {
            // Its first statement connects, and so takes the lock.
            try PostgresSchema.migrate(control, logger: logger)
        } catch {
            control.close()
            throw error
        }
        notifier = exclusive ? nil : PostgresNotifier(location: location, nodeID: nodeID, logger: logger)
        do {
            sessions = exclusive ? nil : try PostgresSessions(location: location, nodeID: nodeID, logger: logger)
        } catch {
            notifier?.close()
            control.close()
            throw error
        }
        if !exclusive, let advertise {
            leases = PostgresLeases(location: location, nodeID: nodeID, address: advertise, logger: logger)
        } else {
            leases = nil
        }
    }

    public func writeOwner(of namespace: String) -> WriteOwner {
        leases?.owner(of: namespace) ?? .thisNode
    }

    public func ownerUnreachable(_ namespace: String, address: String) {
        leases?.holderUnreachable(namespace, address: address)
    }

    public func sessionStore() -> (any SessionStore)? { sessions }

    public func onOrphanedSessions(_ handler: @escaping @Sendable ([String: [UInt8]]) -> Void) {
        sessions?.onOrphaned(handler)
    }

    public func open(namespace: String, options: StorageOptions, observer: StorageObserver) throws -> Database {
        if let open = namespaces.withLock({ $0[namespace] }) { return open.database }
        let opened = try PostgresNamespace.open(
            namespace, control: control, options: options, observer: observer, notifier: notifier, logger: logger)
        namespaces.withLock { $0[namespace] = opened }
        return opened.database
    }

    public func existingNamespaces() throws -> [String] {
        try control.namespaceNames()
    }

    public func storedRules(namespace: String) throws -> String? {
        try control.storedRules(namespace: namespace)
    }

    public func storeRules(_ text: String, namespace: String) throws {
        try control.transaction { run in
            _ = try run("INSERT INTO hearth_namespaces (name) VALUES (\(namespace)) ON CONFLICT DO NOTHING")
            _ = try run("""
                INSERT INTO hearth_rules (namespace, source) VALUES (\(namespace), \(text))
                ON CONFLICT (namespace) DO UPDATE SET source = excluded.source, stored_at = now()
                """)
        }
        notifier?.notify(.rules, namespace)
    }

    public func diskUsage() -> StorageDiskUsage {
        guard let row = try? control.query(
            "SELECT pg_total_relation_size('hearth_log'), pg_total_relation_size('hearth_snapshots')"
        ).first, let (log, snapshots) = try? row.decode((Int64, Int64).self) else { return StorageDiskUsage() }
        return StorageDiskUsage(logBytes: Int(log), snapshotBytes: Int(snapshots))
    }

    public func compactAll() throws {
        for namespace in namespaces.withLock({ Array($0.values) }) { try namespace.writeSnapshot() }
    }

    public func onFollowedChange(_ handler: @escaping @Sendable (FollowedChange) -> Void) {
        let tail = self.tail.withLock { tail in
            if tail == nil {
                tail = PostgresTail(location: location, nodeID: nodeID, logger: logger) { [unowned self] in
                    namespaces.withLock { $0.mapValues(\.database) }
                }
            }
            return tail!
        }
        tail.onFollowedChange(handler)
    }

    public func close() {
        sessions?.close()
        leases?.close()
        tail.withLock { $0 }?.close()
        for namespace in namespaces.withLock({ Array($0.values) }) { namespace.close() }
        notifier?.close()
        control.close()
    }
}

/// One namespace in PostgreSQL: its database, its log, and its snapshots.
final class PostgresNamespace: Sendable {
    let name: String
    let database: Database
    let log: PostgresWriteLog
    let control: BlockingConnection
    let options: StorageOptions
    let notifier: PostgresNotifier?
    let logger: Logger
    /// Records and bytes committed since the last snapshot, and whether one is being taken.
    let sinceSnapshot = Mutex<(records: Int, bytes: Int, taking: Bool)>((0, 0, false))

    init(
        name: String, database: Database, log: PostgresWriteLog, control: BlockingConnection, options: StorageOptions,
        notifier: PostgresNotifier?, logger: Logger
    ) {
        self.name = name
        self.database = database
        self.log = log
        self.control = control
        self.options = options
        self.notifier = notifier
        self.logger = logger
    }

    /// What a namespace's rows amount to: the tree, its last sequence, the newest push time,
    /// and how many log rows were replayed after the snapshot.
    struct Loaded {
        var root = Node.null
        var sequence: UInt64 = 0
        var pushTime: Int64 = -1
        var replayed = 0
        var snapshotSequence: UInt64?
    }

    /// Reads a namespace: its snapshot, then the log rows after it, in sequence order (a gap
    /// is an error: something removed rows it should not have).
    static func load(_ name: String, from connection: BlockingConnection) throws -> Loaded {
        // One snapshot of the database: a snapshot taken meanwhile (by a running node, when a
        // tool reads) cannot delete rows between reading the snapshot and reading the log.
        try connection.transaction(repeatableRead: true) { run in
            var loaded = Loaded()
            if let row = try run("SELECT data FROM hearth_snapshots WHERE namespace = \(name)").first {
                let snapshot = try SnapshotFile.decode(Array(buffer: try row.decode(ByteBuffer.self)))
                loaded.root = snapshot.root
                loaded.sequence = snapshot.sequence
                loaded.pushTime = snapshot.pushTime
                loaded.snapshotSequence = snapshot.sequence
            }
            let rows = try run("""
                SELECT record FROM hearth_log WHERE namespace = \(name) AND sequence > \(Int64(loaded.sequence)) ORDER BY sequence
                """)
            for row in rows {
                let bytes = try row.decode(ByteBuffer.self)
                let entry = try bytes.readableBytesView.withUnsafeBytes { try LogRecordCodec.decodePayload($0) }
                guard entry.record.sequence == loaded.sequence + 1 else {
                    throw LoadError(namespace: name, reason: "log row \(entry.record.sequence) follows \(loaded.sequence)")
                }
                entry.record.change.apply(to: &loaded.root)
                loaded.sequence = entry.record.sequence
                loaded.pushTime = max(loaded.pushTime, entry.pushTime)
                loaded.replayed += 1
            }
            return loaded
        }
    }

    /// Opens the namespace for writing: registered, loaded, with its log.
    static func open(
        _ name: String, control: BlockingConnection, options: StorageOptions, observer: StorageObserver,
        notifier: PostgresNotifier?, logger: Logger
    ) throws -> PostgresNamespace {
        // Registered as it opens (as a namespace's directory is created), so that it is still
        // there after a restart even if nothing was written to it.
        _ = try control.query("INSERT INTO hearth_namespaces (name) VALUES (\(name)) ON CONFLICT DO NOTHING")
        let loaded = try load(name, from: control)
        let (root, sequence, pushTime) = (loaded.root, loaded.sequence, loaded.pushTime)
        let link = Link()
        let log = PostgresWriteLog(
            namespace: name, durable: sequence,
            connection: BlockingConnection(location: control.location, logger: logger, tracksSessions: true), observer: observer, logger: logger
        ) { records, bytes in
            link.namespace.withLock { $0 }?.committed(records: records, bytes: bytes)
        }
        let database = Database(name: name, root: root, sequence: sequence, log: log, lastPushTime: pushTime)
        let namespace = PostgresNamespace(
            name: name, database: database, log: log, control: control, options: options, notifier: notifier, logger: logger)
        link.namespace.withLock { $0 = namespace }
        logger.info("namespace loaded from PostgreSQL", metadata: ["namespace": "\(name)", "sequence": "\(sequence)", "replayed": "\(loaded.replayed)"])
        return namespace
    }

    /// Seconds a log row stays after a snapshot holds it: longer than a recovery takes to
    /// look for its own rows (the statement timeout, and ending a broken session).
    static let trimAge: Double = 600

    /// How the log's commits reach the namespace made after it.
    final class Link: Sendable {
        let namespace = Mutex<PostgresNamespace?>(nil)
    }

    struct LoadError: Error, CustomStringConvertible {
        let namespace: String
        let reason: String
        var description: String { "namespace \(namespace) cannot be loaded from PostgreSQL: \(reason)" }
    }

    /// Counts committed records; past the snapshot thresholds, takes a snapshot on a thread of
    /// its own (commits go on meanwhile).
    func committed(records: Int, bytes: Int) {
        notifier?.notify(.log, name)
        let due = sinceSnapshot.withLock { state -> Bool in
            state.records += records
            state.bytes += bytes
            guard !state.taking, state.records >= options.snapshotAfterRecords || state.bytes >= options.snapshotAfterBytes else {
                return false
            }
            state.taking = true
            return true
        }
        guard due else { return }
        let thread = Thread { [self] in
            do {
                try writeSnapshot(claimed: true)
            } catch {
                logger.error("PostgreSQL snapshot failed", metadata: ["namespace": "\(name)", "error": "\(error)"])
                sinceSnapshot.withLock { $0.taking = false }
            }
        }
        thread.name = "hearth-pg-snapshot"
        thread.start()
    }

    /// Stores the durable tree as the namespace's snapshot and deletes the log rows it holds,
    /// in one transaction.
    func writeSnapshot(claimed: Bool = false) throws {
        if !claimed {
            let claimedNow = sinceSnapshot.withLock { state -> Bool in
                guard !state.taking else { return false }
                state.taking = true
                return true
            }
            guard claimedNow else { return }
        }
        let (root, sequence) = database.snapshot
        let pushTime = database.lastPushTime
        let data = ByteBuffer(bytes: try SnapshotFile(sequence: sequence, pushTime: pushTime, root: root).encode())
        let (name, logger) = (self.name, self.logger)
        try control.transaction { run in
            // The namespace's row exists: `open` registered it.
            _ = try run("""
                INSERT INTO hearth_snapshots (namespace, sequence, push_time, data)
                VALUES (\(name), \(Int64(sequence)), \(pushTime), \(data))
                ON CONFLICT (namespace) DO UPDATE
                SET sequence = excluded.sequence, push_time = excluded.push_time, data = excluded.data, taken_at = now()
                WHERE hearth_snapshots.sequence <= excluded.sequence
                """)
            // Rows committed in the last trimAge stay (a node that lost a commit's answer looks
            // for its rows); the next snapshot deletes them.
            _ = try run("""
                DELETE FROM hearth_log WHERE namespace = \(name) AND sequence <= \(Int64(sequence))
                AND committed_at < now() - make_interval(secs => \(PostgresNamespace.trimAge))
                """)
        }
        sinceSnapshot.withLock { $0 = (0, 0, false) }
        logger.info("PostgreSQL snapshot taken", metadata: ["namespace": "\(name)", "sequence": "\(sequence)"])
    }

    func close() {
        log.close()
        log.connection.close()
    }
}

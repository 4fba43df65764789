import Foundation
import HearthCore
import HearthStorage
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// A node that follows what another node writes to PostgreSQL (`--follow`): it loads every
/// namespace, then applies the records the writer commits as they appear (every
/// ``PostgresFollower/interval``), so its REST reads, SSE streams and realtime listens see
/// them in order, with the writer's sequence numbers as event ids. It takes no writes (they
/// get `503` naming the reason) and stores nothing.
///
/// When the writer's snapshot has trimmed records the follower had not read yet, the
/// follower takes the snapshot as one change that sets the whole tree, then the records
/// after it.
public final class PostgresFollower: NamespaceBackend, Sendable {
    public let location: PostgresLocation
    let logger: Logger
    let connection: BlockingConnection
    let followed = Mutex<[String: Database]>([:])
    let handler = Mutex<(@Sendable (FollowedChange) -> Void)?>(nil)
    /// When each namespace's rules were last stored, as last seen; and the namespaces whose
    /// following fails (each logged once until it recovers).
    let rulesSeen = Mutex<[String: String]>([:])
    let failing = Mutex<Set<String>>([])
    let stopping = Atomic<Bool>(false)
    let done = NSCondition()
    let finished = Mutex(false)

    /// How often the follower asks PostgreSQL for new records.
    public static let interval = Duration.milliseconds(50)

    /// Why a follower refuses writes.
    public struct ReadOnly: Error, CustomStringConvertible {
        public var description: String { "this node follows PostgreSQL and takes no writes: send writes to the writer node" }
    }

    /// Connects and checks Hearth's tables (a follower creates nothing), then starts following.
    public init(location: PostgresLocation, logger: Logger) throws {
        self.location = location
        self.logger = logger
        connection = BlockingConnection(location: location, logger: logger)
        do {
            try PostgresSchema.requireTables(on: connection)
        } catch {
            connection.close()
            throw error
        }
        let thread = Thread { [self] in follow() }
        thread.name = "hearth-pg-follower"
        thread.start()
    }

    public func open(namespace: String, options: StorageOptions, observer: StorageObserver) throws -> Database {
        if let open = followed.withLock({ $0[namespace] }) { return open }
        let loaded = try PostgresNamespace.load(namespace, from: connection)
        let database = Database(
            name: namespace, root: loaded.root, sequence: loaded.sequence, log: ReadOnlyLog(), lastPushTime: loaded.pushTime)
        followed.withLock { $0[namespace] = database }
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
        // The rules stored now are the ones the server loads at start: only later ones count.
        if let stamps = try? connection.rulesStamps() { rulesSeen.withLock { $0 = stamps } }
        self.handler.withLock { $0 = handler }
    }

    public func close() {
        stopping.store(true, ordering: .relaxed)
        done.lock()
        while !finished.withLock({ $0 }) { done.wait() }
        done.unlock()
        connection.close()
    }

    // MARK: Following

    func follow() {
        defer {
            done.lock()
            finished.withLock { $0 = true }
            done.broadcast()
            done.unlock()
        }
        var failing = false
        while !stopping.load(ordering: .relaxed) {
            do {
                try followOnce()
                if failing { logger.notice("following PostgreSQL again") }
                failing = false
            } catch {
                if !failing { logger.error("cannot follow PostgreSQL; retrying", metadata: ["error": "\(String(reflecting: error))"]) }
                failing = true
            }
            Thread.sleep(forTimeInterval: Double(PostgresFollower.interval.components.attoseconds) / 1e18)
        }
    }

    /// One round: namespaces that appeared and rules stored since are announced; each followed
    /// namespace gets the records committed since its sequence (a namespace that fails is
    /// logged and retried next round; the others go on).
    func followOnce() throws {
        if let handler = handler.withLock({ $0 }) {
            let known = followed.withLock { Set($0.keys) }
            for name in try existingNamespaces() where !known.contains(name) { handler(.namespaceAppeared(name)) }
            let stamps = try connection.rulesStamps()
            let changed = rulesSeen.withLock { seen in
                defer { seen = stamps }
                return stamps.filter { seen[$0.key] != $0.value }.map(\.key)
            }
            for name in changed { handler(.rulesStored(name)) }
        }
        for (name, database) in followed.withLock({ Array($0) }) {
            do {
                let records = try newRecords(name, after: database.snapshot.sequence)
                if !records.isEmpty { _ = database.applyFollowed(records) }
                if failing.withLock({ $0.remove(name) }) != nil { logger.notice("following namespace again", metadata: ["namespace": "\(name)"]) }
            } catch {
                if failing.withLock({ $0.insert(name).inserted }) {
                    logger.error("cannot follow a namespace; retrying", metadata: ["namespace": "\(name)", "error": "\(String(reflecting: error))"])
                }
            }
        }
    }

    /// The most log rows read for one namespace in one round (a follower far behind catches
    /// up over several rounds, each within the statement timeout).
    static let batchLimit = 10_000

    /// The records after `sequence`; when the writer's snapshot has trimmed some of them, the
    /// snapshot first (as a change that sets the whole tree). One statement: one view.
    func newRecords(_ name: String, after sequence: UInt64) throws -> [LogRecord] {
        let rows = try connection.query("""
            (SELECT sequence, record, NULL::bytea FROM hearth_log WHERE namespace = \(name) AND sequence > \(Int64(sequence))
             ORDER BY sequence LIMIT \(PostgresFollower.batchLimit))
            UNION ALL
            SELECT sequence, NULL::bytea, data FROM hearth_snapshots WHERE namespace = \(name) AND sequence > \(Int64(sequence))
            ORDER BY 1
            """)
        var log: [LogRecord] = []
        var snapshot: SnapshotFile?
        for row in rows {
            let (_, record, data) = try row.decode((Int64, ByteBuffer?, ByteBuffer?).self)
            if let record {
                log.append(try record.readableBytesView.withUnsafeBytes { try LogRecordCodec.decodePayload($0) }.record)
            } else if let data {
                snapshot = try SnapshotFile.decode(Array(buffer: data))
            }
        }
        if let first = log.first, first.sequence == sequence + 1 { return log }
        guard let snapshot else {
            if let first = log.first {
                throw PostgresNamespace.LoadError(namespace: name, reason: "log row \(first.sequence) follows \(sequence)")
            }
            return []
        }
        let whole = LogRecord(
            sequence: snapshot.sequence, change: Change(kind: .set, path: .root, mutations: [.set(.root, snapshot.root)]))
        return [whole] + log.filter { $0.sequence > snapshot.sequence }
    }
}

/// The log of a followed namespace: it refuses every write.
struct ReadOnlyLog: WriteLog {
    func append(_ record: LogRecord, pushTime: Int64) throws -> UInt64 { throw PostgresFollower.ReadOnly() }
    func waitUntilDurable(_ sequence: UInt64, ticket: UInt64) async throws {}
    func recover(from failure: any Error) -> UInt64? { nil }
}

import Foundation
import HearthStorage
import Logging
import PostgresNIO
import Synchronization

/// The on-disconnect writes of a node's realtime sessions, kept in PostgreSQL
/// (`hearth_sessions`, by node and key) rather than in its data directory, with the node's
/// presence (`hearth_nodes`, renewed every ``PostgresSessions/beat``). A node that has not
/// renewed its presence for ``PostgresSessions/deadAfter``, while another has reached PostgreSQL
/// throughout, is dead: that living node adopts its
/// entries (one statement, so only one node does) and makes their writes, as a restarted node
/// makes its own. So a presence flag set with `onDisconnect` is cleared even when its node
/// never comes back.
final class PostgresSessions: SessionStore, Sendable {
    let connection: BlockingConnection
    /// The presence's own connection, so that a slow registration never delays a beat.
    let beats: BlockingConnection
    /// Since when this node's beats have succeeded without a break: it adopts only after a
    /// whole ``deadAfter`` of them (after PostgreSQL was unreachable, every node's presence
    /// is old, and the others must have had the time to renew theirs).
    let reachableSince = Mutex<ContinuousClock.Instant?>(nil)
    let nodeID: String
    let logger: Logger
    let handler = Mutex<(@Sendable ([String: [UInt8]]) -> Void)?>(nil)
    let beating = Mutex<PeriodicThread?>(nil)

    static let beat = Duration.seconds(3)
    static let deadAfter = Duration.seconds(20)

    init(location: PostgresLocation, nodeID: String, logger: Logger) throws {
        connection = BlockingConnection(location: location, logger: logger)
        beats = BlockingConnection(location: location, logger: logger)
        self.nodeID = nodeID
        self.logger = logger
        try renewPresence()
        reachableSince.withLock { $0 = .now }
        beating.withLock { $0 = PeriodicThread(name: "hearth-pg-sessions", every: PostgresSessions.beat) { [self] in beat() } }
    }

    func put(_ key: String, _ value: [UInt8]) throws {
        _ = try connection.query("""
            INSERT INTO hearth_sessions (node, key, value) VALUES (\(nodeID), \(key), \(ByteBuffer(bytes: value)))
            ON CONFLICT (node, key) DO UPDATE SET value = excluded.value
            """)
    }

    func remove(_ key: String) throws {
        _ = try connection.query("DELETE FROM hearth_sessions WHERE node = \(nodeID) AND key = \(key)")
    }

    /// Starts handing the entries of dead nodes to `handler`.
    func onOrphaned(_ handler: @escaping @Sendable ([String: [UInt8]]) -> Void) {
        self.handler.withLock { $0 = handler }
    }

    func renewPresence() throws {
        _ = try beats.query("""
            INSERT INTO hearth_nodes (node, seen_at) VALUES (\(nodeID), now()) ON CONFLICT (node) DO UPDATE SET seen_at = now()
            """)
    }

    /// Adopts the entries of dead nodes (and of nodes that stopped and left some behind):
    /// they become this node's, then go to the handler.
    func adoptOrphans() throws -> [String: [UInt8]] {
        let seconds = Double(PostgresSessions.deadAfter.components.seconds)
        let rows = try beats.query("""
            WITH dead AS (
                DELETE FROM hearth_nodes WHERE seen_at < now() - make_interval(secs => \(seconds)) AND node <> \(nodeID)
                RETURNING node)
            UPDATE hearth_sessions SET node = \(nodeID)
            WHERE node IN (SELECT node FROM dead) OR node NOT IN (SELECT node FROM hearth_nodes)
            RETURNING key, value
            """)
        var adopted: [String: [UInt8]] = [:]
        for row in rows {
            let (key, value) = try row.decode((String, ByteBuffer).self)
            adopted[key] = Array(buffer: value)
        }
        return adopted
    }

    /// Renews this node's presence, then adopts what dead nodes left.
    func beat() {
        do {
            try renewPresence()
            let since = reachableSince.withLock { since in
                if since == nil { since = .now }
                return since!
            }
            guard ContinuousClock.now - since >= PostgresSessions.deadAfter, let handler = handler.withLock({ $0 }) else { return }
            let adopted = try adoptOrphans()
            if !adopted.isEmpty { handler(adopted) }
        } catch {
            reachableSince.withLock { $0 = nil }
            logger.warning("cannot renew this node's presence in PostgreSQL", metadata: ["error": "\(error)"])
        }
    }

    /// Stops renewing; the node's presence goes (what it left behind is adopted by others).
    func close() {
        beating.withLock { $0 }?.stop()
        _ = try? beats.query("DELETE FROM hearth_nodes WHERE node = \(nodeID)")
        beats.close()
        connection.close()
    }
}

import Foundation
import HearthStorage
import Logging
import PostgresNIO
import Synchronization

/// The on-disconnect writes of a node's realtime sessions, kept in PostgreSQL
/// (`hearth_sessions`, by node and key) rather than in its data directory, with the node's
/// presence (`hearth_nodes`, renewed every ``PostgresSessions/beat``). A node that has not
/// renewed its presence for ``PostgresSessions/deadAfter`` is dead: a living node adopts its
/// entries (one statement, so only one node does) and makes their writes, as a restarted node
/// makes its own. So a presence flag set with `onDisconnect` is cleared even when its node
/// never comes back.
final class PostgresSessions: SessionStore, Sendable {
    let connection: BlockingConnection
    let nodeID: String
    let logger: Logger
    let handler = Mutex<(@Sendable ([String: [UInt8]]) -> Void)?>(nil)
    let beats = Mutex<PeriodicThread?>(nil)

    static let beat = Duration.seconds(3)
    static let deadAfter = Duration.seconds(10)

    init(location: PostgresLocation, nodeID: String, logger: Logger) throws {
        connection = BlockingConnection(location: location, logger: logger)
        self.nodeID = nodeID
        self.logger = logger
        try renewPresence()
        beats.withLock { $0 = PeriodicThread(name: "hearth-pg-sessions", every: PostgresSessions.beat) { [self] in beat() } }
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
        _ = try connection.query("""
            INSERT INTO hearth_nodes (node, seen_at) VALUES (\(nodeID), now()) ON CONFLICT (node) DO UPDATE SET seen_at = now()
            """)
    }

    /// Adopts the entries of dead nodes (and of nodes that stopped and left some behind):
    /// they become this node's, then go to the handler.
    func adoptOrphans() throws -> [String: [UInt8]] {
        let seconds = Double(PostgresSessions.deadAfter.components.seconds)
        let rows = try connection.query("""
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
            guard let handler = handler.withLock({ $0 }) else { return }
            let adopted = try adoptOrphans()
            if !adopted.isEmpty { handler(adopted) }
        } catch {
            logger.warning("cannot renew this node's presence in PostgreSQL", metadata: ["error": "\(error)"])
        }
    }

    /// Stops renewing; the node's presence goes (what it left behind is adopted by others).
    func close() {
        beats.withLock { $0 }?.stop()
        _ = try? connection.query("DELETE FROM hearth_nodes WHERE node = \(nodeID)")
        connection.close()
    }
}

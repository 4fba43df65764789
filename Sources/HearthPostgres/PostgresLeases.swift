import Foundation
import HearthStorage
import Logging
import PostgresNIO
import Synchronization

/// Which node normally writes each namespace: a lease per namespace in `hearth_leases`
/// (node, address, expiry), taken by the first node that writes the namespace when no other
/// node holds it, renewed every ``PostgresLeases/renewInterval`` while the node runs, released
/// when it stops, and taken by another node once it has expired. Other nodes forward REST
/// writes to the holder (HearthServer's `WriteForwarder`), so that a namespace's commits do not
/// race at the fence.
///
/// The lease is an optimisation, never what makes writes correct: two nodes that both believe
/// they hold it (a paused node, clocks, a partition) are kept linear by the fence.
final class PostgresLeases: Sendable {
    let connection: BlockingConnection
    let nodeID: String
    /// The URL other nodes forward writes to.
    let address: String
    let logger: Logger
    /// What this node knows of each namespace's lease, and until when (its own clock).
    let known = Mutex<[String: Lease]>([:])
    /// Holders that could not be reached, by address, until when this node writes their
    /// namespaces itself (their leases' expiry, when it takes them).
    let unreachable = Mutex<[String: ContinuousClock.Instant]>([:])
    let renewals = Mutex<PeriodicThread?>(nil)

    struct Lease {
        let node: String
        let address: String
        let until: ContinuousClock.Instant
    }

    /// How long a lease lasts without renewal: how long a dead node's namespaces are
    /// forwarded to it (each forward is refused at once, and written here instead).
    static let duration = Duration.seconds(10)
    static let renewInterval = Duration.seconds(3)

    init(location: PostgresLocation, nodeID: String, address: String, logger: Logger) {
        connection = BlockingConnection(location: location, logger: logger)
        self.nodeID = nodeID
        self.address = address
        self.logger = logger
        renewals.withLock { $0 = PeriodicThread(name: "hearth-pg-leases", every: PostgresLeases.renewInterval) { [self] in renew() } }
    }

    /// Who writes `namespace`: this node, or the node at an address. Takes the lease when no
    /// live node holds it. When PostgreSQL cannot be asked, this node (the fence decides).
    func owner(of namespace: String) -> WriteOwner {
        let now = ContinuousClock.now
        if let lease = known.withLock({ $0[namespace] }), lease.until > now {
            return lease.node == nodeID ? .thisNode : owner(at: lease.address, now: now)
        }
        do {
            let seconds = Double(PostgresLeases.duration.components.seconds)
            let taken = try connection.query("""
                INSERT INTO hearth_leases (namespace, node, address, expires_at)
                VALUES (\(namespace), \(nodeID), \(address), now() + make_interval(secs => \(seconds)))
                ON CONFLICT (namespace) DO UPDATE
                SET node = excluded.node, address = excluded.address, expires_at = excluded.expires_at
                WHERE hearth_leases.expires_at < now() OR hearth_leases.node = excluded.node
                RETURNING node
                """)
            if taken.first != nil {
                // A second less than PostgreSQL's expiry: this node stops writing as the holder
                // before another can take the lease.
                remember(namespace, Lease(node: nodeID, address: address, until: now + PostgresLeases.duration - .seconds(1)))
                logger.info("took the namespace's write lease", metadata: ["namespace": "\(namespace)"])
                return .thisNode
            }
            guard let row = try connection.query("""
                SELECT node, address, extract(epoch FROM expires_at - now())::float8 FROM hearth_leases WHERE namespace = \(namespace)
                """).first
            else { return .thisNode }
            let (node, holder, left) = try row.decode((String, String, Double).self)
            remember(namespace, Lease(node: node, address: holder, until: now + .milliseconds(Int64(max(0, left) * 1000))))
            return node == nodeID ? .thisNode : owner(at: holder, now: now)
        } catch {
            // Not asked again for a second (each write would wait for PostgreSQL otherwise).
            remember(namespace, Lease(node: nodeID, address: address, until: now + .seconds(1)))
            return .thisNode
        }
    }

    /// The node at `address`, unless it could not be reached lately: then this one.
    func owner(at address: String, now: ContinuousClock.Instant) -> WriteOwner {
        // Another node giving this node's own address (two machines advertising the same
        // loopback address, say) would have this node forward to itself: it writes instead.
        if address == self.address { return .thisNode }
        if let until = unreachable.withLock({ $0[address] }), until > now { return .thisNode }
        return .node(address: address)
    }

    /// The holder at `address` could not be reached (stopped, or dead): this node writes its
    /// namespaces itself until their leases expire, then takes them. A lease it released
    /// (a graceful stop) is taken at once.
    func holderUnreachable(_ namespace: String, address: String) {
        let until = known.withLock { known -> ContinuousClock.Instant in
            defer { known[namespace] = nil }
            return known[namespace]?.until ?? ContinuousClock.now + PostgresLeases.duration
        }
        unreachable.withLock { $0[address] = max($0[address] ?? until, until) }
        // Taken now if it was released (or has expired).
        _ = owner(of: namespace)
        logger.notice("the lease holder of a namespace cannot be reached; writing it here",
                      metadata: ["namespace": "\(namespace)", "holder": "\(address)"])
    }

    func remember(_ namespace: String, _ lease: Lease) {
        known.withLock { $0[namespace] = lease }
    }

    /// Extends this node's leases; those it no longer holds (it was paused past their
    /// expiry, and another node took them) are forgotten, as are expired leases of others.
    func renew() {
        let started = ContinuousClock.now
        let seconds = Double(PostgresLeases.duration.components.seconds)
        guard let rows = try? connection.query("""
            UPDATE hearth_leases SET expires_at = now() + make_interval(secs => \(seconds))
            WHERE node = \(nodeID) RETURNING namespace
            """), let held = try? Set(rows.map { try $0.decode(String.self) })
        else { return }
        known.withLock { known in
            for (namespace, lease) in known {
                if lease.node == nodeID {
                    known[namespace] = held.contains(namespace)
                        ? Lease(node: nodeID, address: address, until: started + PostgresLeases.duration - .seconds(1)) : nil
                } else if lease.until <= started {
                    known[namespace] = nil
                }
            }
        }
        unreachable.withLock { $0 = $0.filter { $0.value > started } }
    }

    /// Releases this node's leases (a graceful stop: the others take its namespaces at once).
    func close() {
        renewals.withLock { $0 }?.stop()
        _ = try? connection.query("DELETE FROM hearth_leases WHERE node = \(nodeID)")
        connection.close()
    }
}

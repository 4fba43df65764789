import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// One PostgreSQL connection used synchronously (the storage calls are synchronous, like file
/// I/O): each query waits for its answer on the calling thread (a flusher or snapshot thread,
/// or a request's task for rules, metrics and opening a namespace; never an event loop).
/// Connects on first use and again after a failure. A statement that takes longer than
/// ``statementTimeout`` (PostgreSQL hung, packets silently dropped) closes the connection, so
/// the caller gets an error instead of waiting for TCP to give up.
final class BlockingConnection: Sendable {
    let location: PostgresLocation
    let logger: Logger
    /// Run on every new connection before it is used (the control connection takes the node's
    /// advisory lock there); a throw closes it and fails the query.
    let prepare: @Sendable (PostgresConnection) throws -> Void
    static let statementTimeout = TimeAmount.seconds(15)
    let connection = Mutex<PostgresConnection?>(nil)
    let nextID = Atomic<Int>(0)
    /// Serialises the queries of the threads sharing this connection.
    let queries = NSLock()
    /// The server session of the open connection, and those of connections dropped after a
    /// failure that may still be running a statement (see ``endDroppedSessions()``).
    let session = Mutex<Session?>(nil)
    let dropped = Mutex<[Session]>([])

    /// A PostgreSQL backend: its process id and when it started (together, unique).
    struct Session: Sendable {
        let connection: ObjectIdentifier
        let pid: Int32
        /// `backend_start`, in microseconds since the epoch.
        let started: Int64
    }

    /// A dropped session that would not end.
    struct SessionStillRunning: Error, CustomStringConvertible {
        let pid: Int32
        var description: String { "PostgreSQL session \(pid) of a broken connection is still running" }
    }

    /// Whether the server sessions of connections dropped after a failure are remembered, for
    /// ``endDroppedSessions()`` (a log's connection, whose commits must be final before its
    /// recovery looks).
    let tracksSessions: Bool

    init(
        location: PostgresLocation, logger: Logger, tracksSessions: Bool = false,
        prepare: @escaping @Sendable (PostgresConnection) throws -> Void = { _ in }
    ) {
        self.location = location
        self.logger = logger
        self.tracksSessions = tracksSessions
        self.prepare = prepare
    }

    /// Waits for `future`, closing the connection if it takes longer than the timeout.
    func wait<Value: Sendable>(_ future: EventLoopFuture<Value>, on open: PostgresConnection) throws -> Value {
        let timer = future.eventLoop.scheduleTask(in: BlockingConnection.statementTimeout) {
            let closing: EventLoopFuture<Void> = open.close()
            _ = closing
        }
        defer { timer.cancel() }
        return try future.wait()
    }

    /// Runs `query` and collects its rows. Throws on any failure (and reconnects next time).
    func query(_ query: PostgresQuery) throws -> PostgresQueryResult {
        queries.lock()
        defer { queries.unlock() }
        let open = try connected()
        do {
            return try wait(open.query(query, logger: logger), on: open)
        } catch {
            dropIfBroken(open, after: error)
            throw error
        }
    }

    /// Drops `open` unless it is still good after `error` (see ``leavesConnectionUsable(_:)``).
    func dropIfBroken(_ open: PostgresConnection, after error: any Error) {
        if !BlockingConnection.leavesConnectionUsable(error) || open.isClosed { drop(open, broken: true) }
    }

    /// Whether the connection is still good after `error`: PostgreSQL answered the statement
    /// with an error of its own (a constraint, a syntax error). Anything else (a timeout, a
    /// connection closed or failing, perhaps not yet marked closed) drops the connection.
    static func leavesConnectionUsable(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError else { return false }
        return error.code == .server && error.serverInfo != nil
    }

    /// Runs `body`'s queries in one transaction (BEGIN … COMMIT, ROLLBACK on a throw).
    /// `body` runs its statements with `run`, which applies the statement timeout. A
    /// `repeatableRead` transaction reads one snapshot of the database throughout.
    func transaction<Result>(
        repeatableRead: Bool = false, _ body: (_ run: (PostgresQuery) throws -> PostgresQueryResult) throws -> Result
    ) throws -> Result {
        queries.lock()
        defer { queries.unlock() }
        let open = try connected()
        let run = { (query: PostgresQuery) throws -> PostgresQueryResult in
            try self.wait(open.query(query, logger: self.logger), on: open)
        }
        do {
            _ = try run(repeatableRead ? "BEGIN ISOLATION LEVEL REPEATABLE READ" : "BEGIN")
            let result: Result
            do {
                result = try body(run)
            } catch {
                // A connection that cannot even roll back is not used again.
                if (try? run("ROLLBACK")) == nil { drop(open, broken: true) }
                throw error
            }
            _ = try run("COMMIT")
            return result
        } catch {
            dropIfBroken(open, after: error)
            throw error
        }
    }

    /// Connects if not connected; returns whether it made a new connection.
    func connect() throws -> Bool {
        queries.lock()
        defer { queries.unlock() }
        if let open = connection.withLock({ $0 }), !open.isClosed { return false }
        _ = try connected()
        return true
    }

    func connected() throws -> PostgresConnection {
        if let open = connection.withLock({ $0 }), !open.isClosed { return open }
        if let closed = connection.withLock({ $0 }) { drop(closed, broken: true) }
        let id = nextID.add(1, ordering: .relaxed).newValue
        let open = try PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.next(), configuration: try location.configuration(), id: id, logger: logger
        ).wait()
        do {
            try prepare(open)
            if tracksSessions {
                let row = try wait(open.query("""
                    SELECT pid, (extract(epoch FROM backend_start) * 1000000)::int8 FROM pg_stat_activity WHERE pid = pg_backend_pid()
                    """, logger: logger), on: open).first
                if let (pid, started) = try row?.decode((Int32, Int64).self) {
                    session.withLock { $0 = Session(connection: ObjectIdentifier(open), pid: pid, started: started) }
                }
            }
        } catch {
            _ = try? open.close().wait()
            throw error
        }
        connection.withLock { $0 = open }
        return open
    }

    /// Closes `open`; a `broken` one's server session (when tracked) is remembered, for
    /// ``endDroppedSessions()``.
    func drop(_ open: PostgresConnection, broken: Bool) {
        connection.withLock { if $0 === open { $0 = nil } }
        let ended = session.withLock { current -> Session? in
            guard let session = current, session.connection == ObjectIdentifier(open) else { return nil }
            current = nil
            return session
        }
        if let ended, broken { dropped.withLock { $0.append(ended) } }
        _ = try? open.close().wait()
    }

    /// Ends the server sessions of the connections dropped after a failure, and waits until
    /// they are gone: a statement sent on a connection that broke may still be running on the
    /// server (and commit later). Once this returns, what PostgreSQL shows is all that such a
    /// statement did. Throws if PostgreSQL cannot be asked or a session will not end.
    func endDroppedSessions() throws {
        while let session = dropped.withLock({ $0.first }) {
            let deadline = ContinuousClock.now + .seconds(10)
            while true {
                let running = try query("""
                    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                    WHERE pid = \(session.pid) AND (extract(epoch FROM backend_start) * 1000000)::int8 = \(session.started)
                    """)
                if running.isEmpty { break }
                guard ContinuousClock.now < deadline else { throw SessionStillRunning(pid: session.pid) }
                Thread.sleep(forTimeInterval: 0.02)
            }
            dropped.withLock { $0.removeAll { $0.pid == session.pid && $0.started == session.started } }
        }
    }

    func close() {
        queries.lock()
        defer { queries.unlock() }
        if let open = connection.withLock({ $0 }) { drop(open, broken: false) }
    }
}

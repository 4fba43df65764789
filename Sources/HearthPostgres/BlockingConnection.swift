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

    init(location: PostgresLocation, logger: Logger, prepare: @escaping @Sendable (PostgresConnection) throws -> Void = { _ in }) {
        self.location = location
        self.logger = logger
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
            if open.isClosed { drop(open) }
            throw error
        }
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
                if (try? run("ROLLBACK")) == nil { drop(open) }
                throw error
            }
            _ = try run("COMMIT")
            return result
        } catch {
            if open.isClosed { drop(open) }
            throw error
        }
    }

    func connected() throws -> PostgresConnection {
        if let open = connection.withLock({ $0 }), !open.isClosed { return open }
        let id = nextID.add(1, ordering: .relaxed).newValue
        let open = try PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.next(), configuration: location.configuration, id: id, logger: logger
        ).wait()
        do {
            try prepare(open)
        } catch {
            _ = try? open.close().wait()
            throw error
        }
        connection.withLock { $0 = open }
        return open
    }

    func drop(_ open: PostgresConnection) {
        connection.withLock { if $0 === open { $0 = nil } }
        _ = try? open.close().wait()
    }

    func close() {
        queries.lock()
        defer { queries.unlock() }
        if let open = connection.withLock({ $0 }) { drop(open) }
    }
}

/// One atomic change to a namespace's tree, with every server value already resolved.
///
/// A change is what the log stores and what subscribers are told: the request's location and
/// kind, and the mutations that make it up, applied in order.
public struct Change: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        /// `PUT`, `POST`, `DELETE`: the value at `path` replaced.
        case set = 1
        /// `PATCH`: several paths below `path` replaced at once.
        case update = 2
    }

    /// One primitive step of a change.
    public enum Mutation: Sendable, Equatable {
        /// Replace the value at an absolute path (`.null` deletes).
        case set(Path, Node)
        /// Set or clear the priority of the node at an absolute path.
        case setPriority(Path, Priority?)

        public var path: Path {
            switch self {
            case .set(let path, _), .setPriority(let path, _): return path
            }
        }
    }

    public var kind: Kind
    /// The location the request was made at.
    public var path: Path
    public var mutations: [Mutation]

    public init(kind: Kind, path: Path, mutations: [Mutation]) {
        self.kind = kind
        self.path = path
        self.mutations = mutations
    }

    /// The tree after this change; `root` itself is unchanged (shared pages are copied).
    public func applied(to root: Node) -> Node {
        var copy = root
        apply(to: &copy)
        return copy
    }

    /// Applies the change in place: pages that only `root` references are changed without
    /// copying (recovery replays millions of records this way).
    public func apply(to root: inout Node) {
        for mutation in mutations {
            switch mutation {
            case .set(let path, let value): root.set(path, to: value)
            case .setPriority(let path, let priority): root = root.settingPriority(path, to: priority)
            }
        }
    }
}

/// A change with its place in the namespace's history.
public struct LogRecord: Sendable, Equatable {
    /// Sequence numbers start at 1 and increase by one per change.
    public var sequence: UInt64
    public var change: Change

    public init(sequence: UInt64, change: Change) {
        self.sequence = sequence
        self.change = change
    }
}

/// What the namespace's writer needs from storage: append records in order, and wait until
/// a record is durable. HearthStorage implements it; tests may use ``MemoryWriteLog``.
public protocol WriteLog: Sendable {
    /// Appends a record. Called by the single writer of a namespace, in sequence order, with
    /// the newest push-ID timestamp issued so far. Throwing means the record was not appended
    /// and the write must fail with nothing changed. Returns a ticket for `waitUntilDurable`.
    func append(_ record: LogRecord, pushTime: Int64) throws -> UInt64
    /// Returns once the record appended with `ticket` at `sequence` is durable under the log's
    /// policy. Throws if the log failed before that (for example the disk is full); then the
    /// record is lost, even if a later record reuses its sequence number.
    func waitUntilDurable(_ sequence: UInt64, ticket: UInt64) async throws
    /// ``waitUntilDurable(_:ticket:)`` without a task: calls `notify` once the record is durable
    /// (or the log failed before that), on whatever thread learns it (the log's flusher, or the
    /// caller's when it is durable already), with a sequence through which every record is
    /// durable (at least `sequence`: a batch's waiters all learn the batch's last). `notify`
    /// must only hand the news on.
    func whenDurable(_ sequence: UInt64, ticket: UInt64, notify: @escaping @Sendable (Result<UInt64, any Error>) -> Void)
    /// After `waitUntilDurable` threw `failure`: drops every record after the last durable one
    /// and accepts appends again. Returns that last durable sequence if this call did the reset
    /// (the caller then rolls its tree back to it), or nil if the failure was already handled.
    /// Called by the namespace's writer, under its lock.
    func recover(from failure: any Error) -> UInt64?
    /// Whether several nodes write this log (PostgreSQL): after a recovery the writer then
    /// takes ``recordsWrittenElsewhere(after:)`` and applies the writes the recovery dropped
    /// again (their records are known not to be committed, and never will be). False for a
    /// node's own log: its dropped writes fail.
    var isShared: Bool { get }
    /// For a shared log: the records other nodes committed after `sequence`, in order, right
    /// after ``recover(from:)`` returned `sequence`. A record may jump ahead (a snapshot, as a
    /// change that sets the whole tree).
    func recordsWrittenElsewhere(after sequence: UInt64) throws -> [LogRecord]
}

extension WriteLog {
    public var isShared: Bool { false }
    /// In a task that waits with ``waitUntilDurable(_:ticket:)``, for logs that wait only that way.
    public func whenDurable(_ sequence: UInt64, ticket: UInt64, notify: @escaping @Sendable (Result<UInt64, any Error>) -> Void) {
        Task {
            do {
                try await waitUntilDurable(sequence, ticket: ticket)
                notify(.success(sequence))
            } catch {
                notify(.failure(error))
            }
        }
    }
    public func recordsWrittenElsewhere(after sequence: UInt64) throws -> [LogRecord] { [] }
}

/// A log that keeps nothing: every record is "durable" at once. For tests and in-memory servers.
/// ``WriteLog/whenDurable(_:ticket:notify:)`` calls back in a task of its own, so that the
/// write's publication (indexes, the streams' feed) runs on the pool, as a file log's runs on
/// its flusher, not on the event loop that applied the write: there it delayed the streams'
/// events (a stream's event came 0.5 ms later at the median, measured).
public struct MemoryWriteLog: WriteLog {
    public init() {}
    public func append(_ record: LogRecord, pushTime: Int64) throws -> UInt64 { 0 }
    public func waitUntilDurable(_ sequence: UInt64, ticket: UInt64) async throws {}
    public func recover(from failure: any Error) -> UInt64? { nil }
}

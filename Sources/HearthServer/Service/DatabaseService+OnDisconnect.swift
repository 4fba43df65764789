import HearthCore
import HearthStorage
import Synchronization

/// A realtime session (one client connection), whose on-disconnect writes are made when it
/// ends.
public struct SessionID: Hashable, Sendable, CustomStringConvertible {
    public let value: Int

    public init(_ value: Int) { self.value = value }

    public var description: String { "session \(value)" }
}

/// What a session asks to happen when it ends: the wire actions `o` (set, or remove with
/// null), `om` (update) and `oc` (cancel).
public enum OnDisconnectOperation: Sendable {
    case set(ParsedNode)
    case update([UpdateEntry])
    case cancel
}

/// Every session's pending on-disconnect writes, per namespace, with the caller who asked;
/// each change is in the ``SessionStore`` (the data directory's journal, or PostgreSQL) before
/// it is acknowledged, so the writes of sessions a crash or restart ended are made when the
/// server starts again (or, with PostgreSQL, by another node once this one is found dead).
final class OnDisconnectRegistry: Sendable {
    struct Pending: Sendable {
        var writes = OnDisconnectWrites()
        var caller: Caller
    }

    let sessions = Mutex<[SessionID: [String: Pending]]>([:])
    let journal: any SessionStore
    /// Session numbers start again at every run: the journal's keys carry the run too.
    let run = UInt64.random(in: 1...UInt64.max)

    init(journal: any SessionStore) {
        self.journal = journal
    }

    /// The journal's key of `session`'s writes in `namespace`.
    func key(_ session: SessionID, _ namespace: String) -> String {
        "\(String(run, radix: 16))-\(session.value)/\(namespace)"
    }

    /// Changes the session's pending writes in `namespace` (made durable before this
    /// returns); `caller`, if given, is who they will be made as (the latest registration's
    /// caller; a cancel does not change it).
    func change(_ session: SessionID, namespace: String, caller: Caller?, _ body: (inout OnDisconnectWrites) throws(DataError) -> Void) throws {
        try sessions.withLock { sessions in
            var pending = sessions[session, default: [:]][namespace] ?? Pending(caller: caller ?? .anonymous)
            if let caller { pending.caller = caller }
            try body(&pending.writes)
            let key = key(session, namespace)
            do {
                if pending.writes.isEmpty {
                    try journal.remove(key)
                } else {
                    try journal.put(key, OnDisconnectRecord(namespace: namespace, pending: pending).encoded())
                }
            } catch {
                throw StorageUnavailable(
                    reason: "the on-disconnect write could not be kept (\(error)); nothing was registered.",
                    outOfSpace: StorageIOError.isOutOfSpace(error))
            }
            sessions[session, default: [:]][namespace] = pending.writes.isEmpty ? nil : pending
            if sessions[session]?.isEmpty == true { sessions[session] = nil }
        }
    }

    /// Takes every pending write of the session away (it fires once); ``made(_:)`` then
    /// forgets each in the journal.
    func take(_ session: SessionID) -> [String: Pending] {
        sessions.withLock { $0.removeValue(forKey: session) ?? [:] }
    }

    /// The writes under `key` were made (or given up): the journal forgets them. If it cannot,
    /// they are made again after the next start (at least once, never lost).
    func made(_ key: String) {
        try? journal.remove(key)
    }
}

extension DatabaseService {
    /// Registers (or cancels) a write to make when `session` ends. A set or update is judged
    /// now, as if it happened now with the caller's identity (bad data, or the rules refusing,
    /// throw and store nothing); it is judged again when it fires. Server values are resolved
    /// when it fires.
    public func onDisconnect(
        _ operation: OnDisconnectOperation, at path: Path, in namespace: String, session: SessionID, as caller: Caller,
        now: Int64
    ) throws {
        try refuseIfFollowing()
        try checkNamespaceExists(namespace, caller: caller)
        let root = namespaces.existing(namespace)?.root ?? .null
        switch operation {
        case .set(let value):
            try WriteRequest(path: path, operation: .set(value), access: access(namespace, caller: caller, now: now))
                .check(on: root, now: now)
        case .update(let entries):
            try UpdateEntry.checkNoOverlap(entries)
            try WriteRequest(path: path, operation: .update(entries), access: access(namespace, caller: caller, now: now))
                .check(on: root, now: now)
        case .cancel:
            break
        }
        let registering: Caller? = if case .cancel = operation { nil } else { caller }
        try onDisconnectWrites.change(session, namespace: namespace, caller: registering) { writes throws(DataError) in
            switch operation {
            case .set(let value): writes.set(path, to: value)
            case .update(let entries): try writes.update(path, with: entries)
            case .cancel: writes.cancel(path)
            }
        }
    }

    /// The session ended: makes its on-disconnect writes, once, each namespace's as one
    /// update, with the rules judged again. A write that fails now is logged, not retried.
    public func sessionEnded(_ session: SessionID, now: Int64) async {
        for (namespace, pending) in onDisconnectWrites.take(session).sorted(by: { $0.key < $1.key }) {
            if await make(pending, in: namespace, now: now, session: "\(session.value)") {
                onDisconnectWrites.made(onDisconnectWrites.key(session, namespace))
            }
        }
    }

    /// Makes the on-disconnect writes the journal still held when the server started: their
    /// sessions ended with the previous run (a crash, a restart) without the server seeing it.
    /// A record that cannot be read is logged and dropped.
    public func sessionsEndedBeforeStart(_ left: [String: [UInt8]], now: Int64) async {
        for (key, bytes) in left.sorted(by: { $0.key < $1.key }) {
            do {
                let record = try OnDisconnectRecord(decoding: bytes)
                guard await make(record.pending, in: record.namespace, now: now, session: key) else { continue }
            } catch {
                logger.error("an on-disconnect record could not be read; it is dropped", metadata: ["key": "\(key)", "error": "\(error)"])
            }
            onDisconnectWrites.made(key)
        }
    }

    /// One session's writes in one namespace, as one update at the root, with the rules
    /// judged again. A write refused now (the rules, bad data) is logged, not retried; false
    /// if storage could not make it, so the journal keeps it for the next start.
    func make(_ pending: OnDisconnectRegistry.Pending, in namespace: String, now: Int64, session: String) async -> Bool {
        guard let request = pending.writes.request(firingAt: now, access: nil) else { return true }
        metrics.realtime.onDisconnectRuns.increment()
        do {
            _ = try await write(request, in: namespace, as: pending.caller, now: now)
            return true
        } catch {
            logger.notice(
                "on-disconnect writes not made", metadata: ["namespace": "\(namespace)", "session": "\(session)", "error": "\(error)"])
            return !(error is StorageUnavailable)
        }
    }
}

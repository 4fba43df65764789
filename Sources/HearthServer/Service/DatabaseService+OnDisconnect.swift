import HearthCore
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

/// Every session's pending on-disconnect writes, per namespace, with the caller who asked.
final class OnDisconnectRegistry: Sendable {
    struct Pending: Sendable {
        var writes = OnDisconnectWrites()
        var caller: Caller
    }

    let sessions = Mutex<[SessionID: [String: Pending]]>([:])

    /// Changes the session's pending writes in `namespace`; `caller`, if given, is who they
    /// will be made as (the latest registration's caller; a cancel does not change it).
    func change(_ session: SessionID, namespace: String, caller: Caller?, _ body: (inout OnDisconnectWrites) throws(DataError) -> Void) throws(DataError) {
        try sessions.withLock { sessions throws(DataError) in
            var pending = sessions[session, default: [:]][namespace] ?? Pending(caller: caller ?? .anonymous)
            if let caller { pending.caller = caller }
            try body(&pending.writes)
            sessions[session, default: [:]][namespace] = pending.writes.isEmpty ? nil : pending
            if sessions[session]?.isEmpty == true { sessions[session] = nil }
        }
    }

    /// Takes every pending write of the session away (it fires once).
    func take(_ session: SessionID) -> [String: Pending] {
        sessions.withLock { $0.removeValue(forKey: session) ?? [:] }
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
            guard let request = pending.writes.request(firingAt: now, access: nil) else { continue }
            metrics.realtime.onDisconnectRuns.increment()
            do {
                _ = try await write(request, in: namespace, as: pending.caller, now: now)
            } catch {
                logger.notice(
                    "on-disconnect writes not made",
                    metadata: ["namespace": "\(namespace)", "session": "\(session.value)", "error": "\(error)"])
            }
        }
    }
}

import Foundation
import HearthCore
import HearthStorage
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// Follows what other nodes commit to PostgreSQL, for every namespace a node holds in memory:
/// their records are applied in order (``Database/applyFollowed(_:)``), with their sequence
/// numbers, so that reads, SSE streams and realtime listens here see them as the writing
/// node's do; namespaces that appear and rules stored elsewhere are announced to the server.
///
/// Woken by the notifications nodes send after their commits (``PostgresNotifier``), and
/// every ``PostgresTail/interval`` in any case: a notification only says where to look, the
/// records are read by sequence, so one that is lost (or sent while the listening connection
/// was down) delays a change by at most the interval and loses nothing.
final class PostgresTail: @unchecked Sendable {
    let connection: BlockingConnection
    let listener: BlockingConnection
    let nodeID: String
    let logger: Logger
    /// The namespaces this node holds, by name.
    let databases: @Sendable () -> [String: Database]
    let handler = Mutex<(@Sendable (FollowedChange) -> Void)?>(nil)
    /// When each namespace's rules were last stored, as last seen; and the namespaces whose
    /// following fails (each logged once until it recovers).
    let rulesSeen = Mutex<[String: String]>([:])
    let failing = Mutex<Set<String>>([])
    /// What notifications asked for since the last round, under `wakeup`.
    let wakeup = NSCondition()
    var notified = Notified()
    let stopping = Atomic<Bool>(false)
    let finished = Mutex(false)
    /// How notifications reach the tail (cleared at close, which ends the cycle through the
    /// listening connection's closure).
    let wake: Wake

    struct Notified {
        var namespaces: Set<String> = []
        var rules: Set<String> = []
        var any = false
    }

    /// The longest a change waits when its notification is lost.
    static let interval = Duration.milliseconds(250)

    init(location: PostgresLocation, nodeID: String, logger: Logger, databases: @escaping @Sendable () -> [String: Database]) {
        connection = BlockingConnection(location: location, logger: logger)
        self.nodeID = nodeID
        self.logger = logger
        self.databases = databases
        wake = Wake()
        listener = BlockingConnection(location: location, logger: logger) { [wake] open in
            // (Adding the first listener of a channel sends its LISTEN.)
            open.addListener(channel: PostgresNotifier.channel) { _, notification in
                wake.tail.withLock { $0 }?.notified(notification.payload)
            }
        }
        wake.tail.withLock { $0 = self }
        let thread = Thread { [self] in follow() }
        thread.name = "hearth-pg-tail"
        thread.start()
    }

    /// How the listening connection, made before the tail, reaches it.
    final class Wake: Sendable {
        let tail = Mutex<PostgresTail?>(nil)
    }

    /// Starts announcing namespaces that appear and rules stored elsewhere to `handler`.
    func onFollowedChange(_ handler: @escaping @Sendable (FollowedChange) -> Void) {
        // The rules stored now are the ones the server loads at start: only later ones count.
        if let stamps = try? connection.rulesStamps() { rulesSeen.withLock { $0 = stamps } }
        self.handler.withLock { $0 = handler }
    }

    /// A notification: "<node> <kind> <namespace>"; a node's own are ignored.
    func notified(_ payload: String) {
        let parts = payload.split(separator: " ", maxSplits: 2).map(String.init)
        guard parts.count == 3, parts[0] != nodeID else { return }
        wakeup.lock()
        if parts[1] == PostgresNotifier.Kind.rules.rawValue {
            notified.rules.insert(parts[2])
        } else {
            notified.namespaces.insert(parts[2])
        }
        notified.any = true
        wakeup.signal()
        wakeup.unlock()
    }

    func close() {
        stopping.store(true, ordering: .relaxed)
        wakeup.lock()
        notified.any = true
        wakeup.signal()
        wakeup.unlock()
        while !finished.withLock({ $0 }) { Thread.sleep(forTimeInterval: 0.005) }
        wake.tail.withLock { $0 = nil }
        listener.close()
        connection.close()
    }

    // MARK: Following

    func follow() {
        defer { finished.withLock { $0 = true } }
        var failing = false
        var lastFullRound = ContinuousClock.now
        while !stopping.load(ordering: .relaxed) {
            // A new listening connection may have missed notifications: a full round then; and
            // one every interval whatever the notifications (one may have been lost).
            let reconnected = (try? listener.connect()) ?? false
            let asked = waitForWork(full: reconnected)
            guard !stopping.load(ordering: .relaxed) else { return }
            let full = reconnected || ContinuousClock.now - lastFullRound >= PostgresTail.interval
            if full { lastFullRound = ContinuousClock.now }
            do {
                try followOnce(all: full, asked: asked)
                if failing { logger.notice("following PostgreSQL again") }
                failing = false
            } catch {
                if !failing { logger.error("cannot follow PostgreSQL; retrying", metadata: ["error": "\(String(reflecting: error))"]) }
                failing = true
            }
        }
    }

    /// Waits for a notification or the interval (not at all when a `full` round is due);
    /// returns what the notifications asked for.
    func waitForWork(full: Bool) -> Notified {
        wakeup.lock()
        defer { wakeup.unlock() }
        if !full && !notified.any {
            _ = wakeup.wait(until: Date(timeIntervalSinceNow: Double(PostgresTail.interval.components.attoseconds) / 1e18))
        }
        defer { notified = Notified() }
        return notified
    }

    /// One round: namespaces that appeared and rules stored since are announced; each followed
    /// namespace (`all`, or those `asked` for) gets the records committed since its sequence
    /// (a namespace that fails is logged and retried; the others go on).
    func followOnce(all: Bool, asked: Notified) throws {
        var followed = databases()
        if let handler = handler.withLock({ $0 }) {
            let appeared = all
                ? try connection.namespaceNames().filter { followed[$0] == nil }
                : asked.namespaces.filter { followed[$0] == nil }.sorted()
            for name in appeared { handler(.namespaceAppeared(name)) }
            if all || !asked.rules.isEmpty {
                let stamps = try connection.rulesStamps()
                let changed = rulesSeen.withLock { seen in
                    defer { seen = stamps }
                    return stamps.filter { seen[$0.key] != $0.value }.map(\.key)
                }
                for name in changed { handler(.rulesStored(name)) }
            }
            if !appeared.isEmpty { followed = databases() }
        }
        for (name, database) in followed where all || asked.namespaces.contains(name) {
            guard !stopping.load(ordering: .relaxed) else { return }
            do {
                let records = try connection.records(of: name, after: database.snapshot.sequence)
                // Not applied while this node's own writes are pending: they will meet the
                // fence and take these records then, or the next full round does.
                if !records.isEmpty { _ = database.applyFollowed(records) }
                if failing.withLock({ $0.remove(name) }) != nil { logger.notice("following namespace again", metadata: ["namespace": "\(name)"]) }
            } catch {
                if failing.withLock({ $0.insert(name).inserted }) {
                    logger.error("cannot follow a namespace; retrying", metadata: ["namespace": "\(name)", "error": "\(String(reflecting: error))"])
                }
            }
        }
    }
}

/// Tells the other nodes, after a commit, where to look: `NOTIFY hearth, '<node> <kind>
/// <namespace>'`, sent from a thread of its own on a connection of its own (never inside the
/// writing transaction, and never delaying the next commit); notifications asked for while
/// one is being sent are sent together.
final class PostgresNotifier: @unchecked Sendable {
    static let channel = "hearth"

    enum Kind: String {
        case log, rules
    }

    let connection: BlockingConnection
    let nodeID: String
    let condition = NSCondition()
    var queued: Set<String> = []
    var closing = false
    let finished = Mutex(false)

    init(location: PostgresLocation, nodeID: String, logger: Logger) {
        connection = BlockingConnection(location: location, logger: logger)
        self.nodeID = nodeID
        let thread = Thread { [self] in send() }
        thread.name = "hearth-pg-notify"
        thread.start()
    }

    /// Asks for a notification that `namespace` has new records (or rules).
    func notify(_ kind: Kind, _ namespace: String) {
        condition.lock()
        queued.insert("\(nodeID) \(kind.rawValue) \(namespace)")
        condition.signal()
        condition.unlock()
    }

    func send() {
        defer { finished.withLock { $0 = true } }
        while true {
            condition.lock()
            while queued.isEmpty && !closing { condition.wait() }
            if queued.isEmpty {
                condition.unlock()
                return
            }
            let payloads = Array(queued)
            queued = []
            condition.unlock()
            // A notification that cannot be sent is only a wake-up lost: the others poll.
            _ = try? connection.query("SELECT pg_notify(\(PostgresNotifier.channel), p) FROM unnest(\(payloads)::text[]) AS t(p)")
        }
    }

    func close() {
        condition.lock()
        closing = true
        condition.signal()
        condition.unlock()
        while !finished.withLock({ $0 }) { Thread.sleep(forTimeInterval: 0.005) }
        connection.close()
    }
}

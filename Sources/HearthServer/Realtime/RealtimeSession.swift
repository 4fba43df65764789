import HearthCore
import Synchronization

/// What a realtime connection shares with the namespace's fan-out: its outbox, its listens
/// (which a rules change may revoke from the hub's side) and its session number.
final class RealtimeSession: Sendable {
    let id: SessionID
    let namespace: String
    let outbox: RealtimeOutbox
    /// The connection's listens, by the identity the client unlistens them with.
    let listens = Mutex<[WireListen.Identity: Subscription]>([:])

    init(id: SessionID, namespace: String, outboxBytes: Int) {
        self.id = id
        self.namespace = namespace
        outbox = RealtimeOutbox(capacityBytes: outboxBytes)
    }

    /// The hub revoked `subscription`: the connection no longer has it.
    func forget(_ subscription: Subscription) {
        listens.withLock { listens in
            guard let entry = listens.first(where: { $0.value === subscription }) else { return }
            listens[entry.key] = nil
        }
    }

    /// Every listen, for a resync or a re-check.
    var allListens: [Subscription] { listens.withLock { Array($0.values) } }

    /// The session's `s` in the hello, which the client hands back as `ls` when it reconnects:
    /// 128 random bits, so that only the client that had the session can end it that way.
    let wireID: String = (0..<4).map { _ in
        let word = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return String(repeating: "0", count: 8 - word.count) + word
    }.joined()
}

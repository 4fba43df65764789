import NIOCore
import Synchronization

/// Counts the connections being served and decides, once per connection, whether it may be.
///
/// The decision is made when the connection (an HTTP/1 channel or an HTTP/2 connection, not
/// each of its streams) is first seen, and the slot is given back when it closes.
final class ConnectionLimiter: Sendable {
    let limit: Int
    private struct State {
        var admitted = 0
        var verdicts: [ObjectIdentifier: Bool] = [:]
    }
    private let state = Mutex(State())
    /// Where the number of admitted connections is shown (`hearth_connections_open`).
    private let metrics: ServerMetrics?

    init(limit: Int, metrics: ServerMetrics? = nil) {
        self.limit = limit
        self.metrics = metrics
    }

    /// The number of connections admitted and still open.
    var admittedCount: Int { state.withLock { $0.admitted } }

    /// Whether `connection` may be served; the first call for a connection decides.
    func admit(_ connection: any Channel) -> Bool {
        let id = ObjectIdentifier(connection)
        let (verdict, firstSight, open) = state.withLock { state -> (Bool, Bool, Int) in
            if let verdict = state.verdicts[id] { return (verdict, false, state.admitted) }
            let verdict = state.admitted < limit
            state.verdicts[id] = verdict
            if verdict { state.admitted += 1 }
            return (verdict, true, state.admitted)
        }
        if firstSight {
            if verdict { metrics?.setOpenConnections(open) }
            connection.closeFuture.whenComplete { [self] _ in
                let open = state.withLock { state -> Int? in
                    guard state.verdicts.removeValue(forKey: id) == true else { return nil }
                    state.admitted -= 1
                    return state.admitted
                }
                if let open { metrics?.setOpenConnections(open) }
            }
        }
        return verdict
    }

    /// The connection a request channel belongs to: the channel itself for HTTP/1, the parent
    /// for an HTTP/2 stream (whose parent, the connection, has the listening socket as its own).
    static func connection(of channel: any Channel) -> any Channel {
        if let parent = channel.parent, parent.parent != nil { return parent }
        return channel
    }
}

import Prometheus
import Synchronization

/// What the realtime protocol counts, beside the streams' own figures (realtime listens are
/// counted in `hearth_streams_open` and the stream event counters like SSE streams).
final class RealtimeMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let open = Atomic<Int>(0)
    let messagesIn: Counter
    let messagesOut: Counter
    let listensOpened: Counter
    let transactionsCommitted: Counter
    let transactionsStale: Counter
    let onDisconnectRuns: Counter

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        messagesIn = registry.makeCounter(
            name: "hearth_realtime_messages_total", labels: [("direction", "in")],
            help: "Realtime protocol messages received (in) and sent (out), frames joined.")
        messagesOut = registry.makeCounter(
            name: "hearth_realtime_messages_total", labels: [("direction", "out")],
            help: "Realtime protocol messages received (in) and sent (out), frames joined.")
        listensOpened = registry.makeCounter(name: "hearth_realtime_listens_total", help: "Realtime listens started.")
        transactionsCommitted = registry.makeCounter(
            name: "hearth_realtime_transactions_total", labels: [("outcome", "committed")],
            help: "Transactions (puts with a hash): committed, or stale (the SDK retries).")
        transactionsStale = registry.makeCounter(
            name: "hearth_realtime_transactions_total", labels: [("outcome", "stale")],
            help: "Transactions (puts with a hash): committed, or stale (the SDK retries).")
        onDisconnectRuns = registry.makeCounter(
            name: "hearth_on_disconnect_runs_total", help: "Sessions that ended with on-disconnect writes to make.")
        setOpen(0)
    }

    /// One more (or one fewer) realtime connection open.
    func connectionOpened() { setOpen(open.add(1, ordering: .relaxed).newValue) }
    func connectionClosed() { setOpen(open.subtract(1, ordering: .relaxed).newValue) }

    func setOpen(_ count: Int) {
        registry.makeGauge(name: "hearth_realtime_connections_open", help: "Realtime (WebSocket) connections open now.")
            .set(to: Double(count))
    }
}

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
    let polls: Counter

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        // A counter family with one label: the counter for each value.
        func family(_ name: String, label: String, help: String) -> (String) -> Counter {
            { value in registry.makeCounter(name: name, labels: [(label, value)], help: help) }
        }
        let message = family(
            "hearth_realtime_messages_total", label: "direction",
            help: "Realtime protocol messages received (in) and sent (out), frames joined.")
        messagesIn = message("in")
        messagesOut = message("out")
        listensOpened = registry.makeCounter(name: "hearth_realtime_listens_total", help: "Realtime listens started.")
        let transaction = family(
            "hearth_realtime_transactions_total", label: "outcome",
            help: "Transactions (puts with a hash): committed, or stale (the SDK retries).")
        transactionsCommitted = transaction("committed")
        transactionsStale = transaction("stale")
        onDisconnectRuns = registry.makeCounter(
            name: "hearth_on_disconnect_runs_total", help: "Sessions that ended with on-disconnect writes to make.")
        polls = registry.makeCounter(
            name: "hearth_realtime_long_polls_total", help: "Long polls answered (/.lp, the browser SDK's fallback transport).")
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

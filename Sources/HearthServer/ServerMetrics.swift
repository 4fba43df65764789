import HearthStorage
import Prometheus
import Synchronization

/// What the server counts, exposed at `/.metrics` in Prometheus' text format.
public final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let requestDuration: DurationHistogram
    let writeDuration: DurationHistogram
    let fsyncDuration: DurationHistogram
    let ruleDenials: Counter
    let streamEvents: Counter
    let streamResyncs: Counter
    let streamsOpened: Counter
    /// REST writes sent to the node holding their namespace's write lease.
    let forwardedWrites: Counter
    /// The realtime protocol's figures.
    let realtime: RealtimeMetrics
    /// `hearth_http_requests_total`'s series made so far, by method label and status: the
    /// registry's own lookup (labels built as strings, its lock, hashing) cost 1% of a small
    /// request.
    private let requestCounters = Mutex<[RequestSeries: Counter]>([:])

    private struct RequestSeries: Hashable {
        let method: String
        let status: Int
    }

    static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
    ]

    public init() {
        requestDuration = registry.makeDurationHistogram(
            name: "hearth_http_request_duration_seconds", buckets: ServerMetrics.latencyBuckets,
            help: "Time to answer a request (for streams: to start the stream).")
        writeDuration = registry.makeDurationHistogram(
            name: "hearth_write_duration_seconds", buckets: ServerMetrics.latencyBuckets,
            help: "Time from a write's start in its namespace to its acknowledgement (durable under the fsync policy).")
        fsyncDuration = registry.makeDurationHistogram(
            name: "hearth_fsync_duration_seconds", buckets: ServerMetrics.latencyBuckets,
            help: "Duration of each fdatasync of a namespace's log (one per group commit under fsync=always).")
        ruleDenials = registry.makeCounter(name: "hearth_rule_denials_total", help: "Requests the security rules refused.")
        streamEvents = registry.makeCounter(name: "hearth_stream_events_total", help: "Events queued for streams (one per stream).")
        streamResyncs = registry.makeCounter(
            name: "hearth_stream_resyncs_total", help: "Streams that fell behind and were sent a fresh put.")
        streamsOpened = registry.makeCounter(name: "hearth_streams_opened_total", help: "Streams opened.")
        forwardedWrites = registry.makeCounter(
            name: "hearth_forwarded_writes_total", help: "REST writes sent to the node holding their namespace's write lease.")
        realtime = RealtimeMetrics(registry: registry)
    }

    /// The methods counted by name; any other is counted as `other`, so that clients cannot
    /// make new series at will.
    static let knownMethods: Set<String> = ["GET", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "HEAD"]

    /// Counts one answered request.
    func countRequest(method: String, status: Int) {
        let series = RequestSeries(method: ServerMetrics.knownMethods.contains(method) ? method : "other", status: status)
        let counter = requestCounters.withLock { counters in
            if let counter = counters[series] { return counter }
            let counter = registry.makeCounter(
                name: "hearth_http_requests_total", labels: [("method", series.method), ("status", String(status))],
                help: "HTTP requests by method and status.")
            counters[series] = counter
            return counter
        }
        counter.increment()
    }

    /// Reasons a connection or request is refused by a limit, counted by name.
    enum RefusalReason: String {
        /// More connections than `max-connections`: answered 503.
        case connections
        /// A request head over `max-header-bytes`: answered 431.
        case headerSize = "header_size"
        /// A client that did not send its request (or body) in time: disconnected.
        case timeout
        /// More streams from one address than `max-streams-per-client`: answered 429.
        case streamsPerClient = "streams_per_client"
        /// A body over `max-body-bytes` (compressed bodies: once inflated), or a rules
        /// document over 256 KB: answered 413.
        case bodySize = "body_size"
        /// A write over a client's `write-rate-limit`: answered 429.
        case writeRate = "write_rate"
        /// A realtime listen over `max-listens-per-connection`: answered `too_many_listens`.
        case listensPerConnection = "listens_per_connection"
        /// A realtime message over `max-realtime-message-bytes`: the connection is closed.
        case messageSize = "message_size"
    }

    /// Shows the number of connections admitted and open (`max-connections` counts these).
    func setOpenConnections(_ count: Int) {
        registry.makeGauge(name: "hearth_connections_open", help: "Connections being served (HTTP/2: one per connection).")
            .set(to: Double(count))
    }

    /// Counts one ended stream.
    func countStreamEnd(_ reason: Outbox.EndReason) {
        registry.makeCounter(
            name: "hearth_streams_closed_total", labels: [("reason", reason.rawValue)],
            help: "Streams ended, by reason: client (went away), shutdown, cancelled (rules), auth_revoked."
        ).increment()
    }

    /// Counts one refusal by a limit.
    func countRefusal(_ reason: RefusalReason) {
        registry.makeCounter(
            name: "hearth_limit_refusals_total", labels: [("reason", reason.rawValue)],
            help: "Connections and requests refused by a limit, by reason."
        ).increment()
    }

    /// The text exposition, with the gauges read now.
    func exposition(openStreams: Int, namespaces: Int, disk: StorageDiskUsage) -> [UInt8] {
        registry.makeGauge(name: "hearth_streams_open", help: "Streams open now.").set(to: Double(openStreams))
        registry.makeGauge(name: "hearth_namespaces", help: "Namespaces open.").set(to: Double(namespaces))
        registry.makeGauge(name: "hearth_log_bytes", help: "Bytes of log segments on disk, all namespaces.")
            .set(to: Double(disk.logBytes))
        registry.makeGauge(name: "hearth_snapshot_bytes", help: "Bytes of snapshots on disk, all namespaces.")
            .set(to: Double(disk.snapshotBytes))
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}

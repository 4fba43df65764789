import Prometheus

/// What the server counts, exposed at `/.metrics` in Prometheus' text format.
public final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let requestDuration: DurationHistogram
    let writeDuration: DurationHistogram
    let ruleDenials: Counter
    let streamEvents: Counter
    let streamResyncs: Counter
    let streamsOpened: Counter

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
        ruleDenials = registry.makeCounter(name: "hearth_rule_denials_total", help: "Requests the security rules refused.")
        streamEvents = registry.makeCounter(name: "hearth_stream_events_total", help: "Events queued for streams (one per stream).")
        streamResyncs = registry.makeCounter(
            name: "hearth_stream_resyncs_total", help: "Streams that fell behind and were sent a fresh put.")
        streamsOpened = registry.makeCounter(name: "hearth_streams_opened_total", help: "Streams opened.")
    }

    /// The methods counted by name; any other is counted as `other`, so that clients cannot
    /// make new series at will.
    static let knownMethods: Set<String> = ["GET", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "HEAD"]

    /// Counts one answered request.
    func countRequest(method: String, status: Int) {
        let label = ServerMetrics.knownMethods.contains(method) ? method : "other"
        registry.makeCounter(
            name: "hearth_http_requests_total", labels: [("method", label), ("status", String(status))],
            help: "HTTP requests by method and status."
        ).increment()
    }

    /// The text exposition, with the gauges read now.
    func exposition(openStreams: Int, namespaces: Int) -> [UInt8] {
        registry.makeGauge(name: "hearth_streams_open", help: "Streams open now.").set(to: Double(openStreams))
        registry.makeGauge(name: "hearth_namespaces", help: "Namespaces open.").set(to: Double(namespaces))
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}

import HearthCore
import Synchronization

/// Settings of realtime streams.
public struct StreamOptions: Sendable {
    /// Seconds between `keep-alive` events (Firebase: about 30).
    public var keepAliveSeconds: Double = 30
    /// Bytes of frames a stream may have queued before it is resynchronised.
    public var outboxBytes: Int = 4 << 20
    /// Changes kept per namespace for `Last-Event-ID` resumes.
    public var historyChanges: Int = 10_000

    public init() {}
}

/// Every namespace's streams, created when the first stream of a namespace opens.
public final class StreamRegistry: Sendable {
    let options: StreamOptions
    /// Where events, resyncs and opened streams are counted.
    public let metrics: ServerMetrics
    let hubs = Mutex<[String: NamespaceStreams]>([:])
    let nextID = Atomic<Int>(0)
    let keepAliveTask = Mutex<Task<Void, Never>?>(nil)
    /// Open streams per client address, for `max-streams-per-client`.
    let streamsPerClient = Mutex<[String: Int]>([:])

    public init(options: StreamOptions = StreamOptions(), metrics: ServerMetrics = ServerMetrics()) {
        self.options = options
        self.metrics = metrics
    }

    func makeID() -> Int { nextID.add(1, ordering: .relaxed).newValue }

    /// The streams of `database`'s namespace; the first call attaches them to its changes.
    func hub(for database: Database) -> NamespaceStreams {
        hubs.withLock { hubs in
            if let hub = hubs[database.name] { return hub }
            let (changes, continuation) = AsyncStream<[PublishedChange]>.makeStream()
            let start = database.observe { continuation.yield($0) }
            let hub = NamespaceStreams(
                root: start.root, sequence: start.sequence, historyLimit: options.historyChanges, metrics: metrics)
            Task {
                for await batch in changes { await hub.publish(batch) }
            }
            hubs[database.name] = hub
            startKeepAlives()
            return hub
        }
    }

    func startKeepAlives() {
        keepAliveTask.withLock { task in
            guard task == nil else { return }
            let interval = options.keepAliveSeconds
            task = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(Int(interval * 1000)))
                    guard let self else { return }
                    for hub in self.hubs.withLock({ Array($0.values) }) { await hub.keepAlive() }
                }
            }
        }
    }

    /// The namespace's rules changed: cancel the streams that may no longer read.
    func rulesChanged(namespace: String, rules: RuleSet) async {
        guard let hub = hubs.withLock({ $0[namespace] }) else { return }
        await hub.rulesChanged(rules, now: Database.systemMilliseconds())
    }

    /// Ends every stream (graceful shutdown).
    public func endAll() async {
        keepAliveTask.withLock { $0?.cancel() }
        for hub in hubs.withLock({ Array($0.values) }) { await hub.endAll() }
    }

    /// Takes one of `client`'s stream slots, or nil if it holds `limit` already. The slot is
    /// given back when the lease is released (when the stream's response is gone).
    func leaseStream(for client: String, limit: Int) -> ClientStreamLease? {
        let granted = streamsPerClient.withLock { counts in
            let open = counts[client, default: 0]
            guard open < limit else { return false }
            counts[client] = open + 1
            return true
        }
        return granted ? ClientStreamLease(registry: self, client: client) : nil
    }

    func releaseStream(for client: String) {
        streamsPerClient.withLock { counts in
            let open = counts[client, default: 1] - 1
            counts[client] = open > 0 ? open : nil
        }
    }

    /// Open streams, over all namespaces.
    public func streamCount() async -> Int {
        var total = 0
        for hub in hubs.withLock({ Array($0.values) }) { total += await hub.subscriptionCount }
        return total
    }
}

/// One client's hold on a stream slot, given back when the lease is released: by the stream
/// when it ends, or when the stream's response is dropped without ever being sent.
final class ClientStreamLease: Sendable {
    let registry: StreamRegistry
    let client: String

    init(registry: StreamRegistry, client: String) {
        self.registry = registry
        self.client = client
    }

    deinit {
        registry.releaseStream(for: client)
    }
}

import Synchronization

/// How many writes one client may make: `perSecond` on average, up to `burst` at once.
public struct WriteRateLimit: Sendable, Equatable {
    /// Writes per second a client earns back.
    public var perSecond: Double
    /// Writes a client may make at once after a quiet spell (the bucket's size).
    public var burst: Int

    public init(perSecond: Double, burst: Int) {
        self.perSecond = perSecond
        self.burst = burst
    }

    /// The rate as people write it: `10`, `0.5`.
    var perSecondText: String {
        perSecond == perSecond.rounded() && perSecond < 1e15 ? String(Int64(perSecond)) : String(perSecond)
    }
}

/// One client's token bucket: it holds up to `burst` tokens, refills at `perSecond`, and every
/// write takes one.
struct TokenBucket: Equatable {
    private(set) var tokens: Double
    private(set) var updated: Double

    /// A full bucket at `now` (seconds on a monotonic clock).
    init(limit: WriteRateLimit, now: Double) {
        tokens = Double(limit.burst)
        updated = now
    }

    /// Takes a token. Returns nil if there was one, else the seconds until there will be.
    mutating func take(at now: Double, limit: WriteRateLimit) -> Double? {
        refill(at: now, limit: limit)
        if tokens >= 1 {
            tokens -= 1
            return nil
        }
        return (1 - tokens) / limit.perSecond
    }

    /// True if the bucket would be full at `now`: then it is the same as no bucket at all.
    func isFull(at now: Double, limit: WriteRateLimit) -> Bool {
        tokens + (now - updated) * limit.perSecond >= Double(limit.burst)
    }

    private mutating func refill(at now: Double, limit: WriteRateLimit) {
        let elapsed = max(0, now - updated)
        tokens = min(Double(limit.burst), tokens + elapsed * limit.perSecond)
        updated = now
    }
}

/// Limits writes per client address with token buckets, so that an endpoint open to anonymous
/// writers cannot be used to fill the disk. Refused writes are answered `429` with
/// `Retry-After`; nothing of them is read or stored.
///
/// Buckets are kept only for clients that have written recently: a bucket that has filled up
/// again is dropped when the table grows, so memory follows the number of active clients.
public final class WriteRateLimiter: Sendable {
    public let limit: WriteRateLimit
    private let state: Mutex<State>
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant

    private struct State {
        var buckets: [String: TokenBucket] = [:]
        /// The table size at which full buckets are dropped next.
        var pruneAt = WriteRateLimiter.minimumPruneSize
    }

    static let minimumPruneSize = 1024

    public init(limit: WriteRateLimit) {
        self.limit = limit
        state = Mutex(State())
        start = clock.now
    }

    /// Seconds since the limiter was made, on the monotonic clock.
    func now() -> Double {
        let elapsed = clock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    /// Takes one write from `client`'s bucket. Returns nil if the write may go ahead, else the
    /// seconds the client should wait.
    public func admit(_ client: String) -> Double? {
        admit(client, at: now())
    }

    func admit(_ client: String, at now: Double) -> Double? {
        let limit = self.limit
        return state.withLock { state in
            var bucket = state.buckets[client] ?? TokenBucket(limit: limit, now: now)
            let wait = bucket.take(at: now, limit: limit)
            state.buckets[client] = bucket
            if state.buckets.count >= state.pruneAt {
                state.buckets = state.buckets.filter { !$0.value.isFull(at: now, limit: limit) }
                state.pruneAt = max(WriteRateLimiter.minimumPruneSize, state.buckets.count * 2)
            }
            return wait
        }
    }

    /// Clients with a bucket (for tests).
    var trackedClients: Int { state.withLock { $0.buckets.count } }

    /// The `Retry-After` value for a wait: whole seconds, at least 1.
    static func retryAfterSeconds(_ wait: Double) -> Int {
        max(1, Int(wait.rounded(.up)))
    }
}

import HearthCore
import HearthServer
import HearthTestSupport
import Testing

@testable import HearthServer

@Suite("Write rate limits")
struct WriteRateLimitTests {
    let limit = WriteRateLimit(perSecond: 2, burst: 3)

    @Test func aBucketAllowsItsBurstThenRefills() {
        var bucket = TokenBucket(limit: limit, now: 100)
        #expect(bucket.take(at: 100, limit: limit) == nil)
        #expect(bucket.take(at: 100, limit: limit) == nil)
        #expect(bucket.take(at: 100, limit: limit) == nil)
        // Empty: one token comes back in half a second at 2 per second.
        #expect(bucket.take(at: 100, limit: limit) == 0.5)
        #expect(bucket.take(at: 100.25, limit: limit) == 0.25)
        #expect(bucket.take(at: 100.5, limit: limit) == nil)
        #expect(bucket.take(at: 100.5, limit: limit) == 0.5)
        // A long quiet spell fills it up to the burst, no further.
        #expect(bucket.isFull(at: 110, limit: limit))
        for _ in 0..<3 { #expect(bucket.take(at: 110, limit: limit) == nil) }
        #expect(bucket.take(at: 110, limit: limit) != nil)
        // A clock that goes backwards gives nothing back.
        #expect(bucket.take(at: 50, limit: limit) != nil)
    }

    @Test func retryAfterIsWholeSecondsAndAtLeastOne() {
        #expect(WriteRateLimiter.retryAfterSeconds(0.01) == 1)
        #expect(WriteRateLimiter.retryAfterSeconds(1) == 1)
        #expect(WriteRateLimiter.retryAfterSeconds(1.2) == 2)
        #expect(WriteRateLimiter.retryAfterSeconds(30) == 30)
    }

    @Test func clientsHaveBucketsOfTheirOwn() {
        let limiter = WriteRateLimiter(limit: limit)
        for _ in 0..<3 { #expect(limiter.admit("a", at: 0) == nil) }
        #expect(limiter.admit("a", at: 0) != nil)
        #expect(limiter.admit("b", at: 0) == nil)
        #expect(limiter.admit("a", at: 1) == nil)
    }

    @Test func idleClientsAreForgotten() {
        let limiter = WriteRateLimiter(limit: limit)
        let many = WriteRateLimiter.minimumPruneSize * 3
        for index in 0..<many { _ = limiter.admit("client-\(index)", at: Double(index) / 1000) }
        // Every bucket but the last few seconds' has refilled and was dropped along the way.
        #expect(limiter.trackedClients < WriteRateLimiter.minimumPruneSize * 2)
        // A forgotten client starts with a full bucket, as it would have had anyway.
        for _ in 0..<3 { #expect(limiter.admit("client-0", at: 100) == nil) }
        #expect(limiter.admit("client-0", at: 100) != nil)
    }

    static func configuration(perSecond: Double = 1, burst: Int = 2) -> ServerConfiguration {
        var configuration = ServerConfiguration.openForTests()
        configuration.writeRateLimit = WriteRateLimit(perSecond: perSecond, burst: burst)
        return configuration
    }

    @Test func writesOverTheLimitAre429WithRetryAfterAndChangeNothing() async throws {
        // One write back every 1000 s: none comes back while the test runs, however slow the machine.
        try await withTestServer(configuration: WriteRateLimitTests.configuration(perSecond: 0.001, burst: 2)) { client async throws in
            #expect(try await client.put("/a.json", "1").status == 200)
            #expect(try await client.post("/list.json", "1").status == 200)
            for attempt in [
                try await client.put("/a.json", "2"), try await client.post("/list.json", #"{"x":1}"#),
                try await client.patch("/a.json", #"{"b":1}"#), try await client.delete("/a.json"),
                try await client.request(.post, "/a.json", body: "3", headers: ["X-HTTP-Method-Override": "PUT"]),
            ] {
                #expect(attempt.status == 429)
                // The wait for the next write: 1000 s, less the time the test has taken.
                let retryAfter = try #require(attempt.header("Retry-After").flatMap { Int($0) })
                #expect((900...1000).contains(retryAfter))
                #expect(attempt.node?.child("error").stringValue?.hasPrefix("Too many writes") == true)
            }
            // Reads are not limited, and nothing of the refused writes was stored.
            #expect(try await client.get("/a.json").body == "1")
            #expect(try await client.get("/list.json?shallow=true").node?.children.count == 1)
            // The admin is not limited.
            #expect(try await client.put("/a.json", "4", headers: HearthTestClient.admin).status == 200)
            // A POST that is a read by method override is a read.
            #expect(try await client.request(.post, "/a.json", headers: ["X-HTTP-Method-Override": "GET"]).body == "4")
            let metrics = try await client.get("/.metrics", headers: HearthTestClient.admin).body
            #expect(metrics.contains(#"hearth_limit_refusals_total{reason="write_rate"} 5"#))
        }
    }

    @Test func theLimitCountsTheClientATrustedProxyNames() async throws {
        var configuration = WriteRateLimitTests.configuration(perSecond: 0.001, burst: 1)
        configuration.clientAddresses = ClientAddressResolver(trustedProxies: [IPNetwork("127.0.0.1")!, IPNetwork("::1")!])
        try await withTestServer(configuration: configuration, live: true) { client async throws in
            let first = ["X-Forwarded-For": "198.51.100.1"]
            let second = ["X-Forwarded-For": "198.51.100.2"]
            #expect(try await client.put("/a.json", "1", headers: first).status == 200)
            #expect(try await client.put("/a.json", "2", headers: first).status == 429)
            #expect(try await client.put("/b.json", "1", headers: second).status == 200)
            // Without the header, the proxy itself is the client.
            #expect(try await client.put("/c.json", "1").status == 200)
            #expect(try await client.put("/c.json", "2").status == 429)
        }
        // From an untrusted peer the header is ignored: one bucket for all.
        try await withTestServer(configuration: WriteRateLimitTests.configuration(perSecond: 0.001, burst: 1), live: true) { client async throws in
            #expect(try await client.put("/a.json", "1", headers: ["X-Forwarded-For": "198.51.100.1"]).status == 200)
            #expect(try await client.put("/a.json", "2", headers: ["X-Forwarded-For": "198.51.100.2"]).status == 429)
        }
    }
}

extension Node {
    /// The string, if the node is one.
    fileprivate var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }
}

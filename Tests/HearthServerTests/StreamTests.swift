import Foundation
import HearthCore
import HearthTestSupport
import NIOCore
import Synchronization
import Testing

@testable import HearthServer

// Realtime streams, in Swift: the hub (`NamespaceStreams`) and the outboxes driven directly,
// then whole streams over a live server's connections, read with `SSEStream`.
// (Tests/Compat/test_streaming.py covers the same ground with Firebase's own clients.)

// MARK: - Helpers

/// A `put` event as Hearth frames it: `data` is the value's compact JSON.
private func putEvent(_ path: String, _ data: String, id: UInt64) -> SSEEvent {
    SSEEvent(event: "put", data: #"{"path":"\#(path)","data":\#(data)}"#, id: "\(id)")
}

/// A `patch` event: `data` is the object of children, as compact JSON.
private func patchEvent(_ path: String, _ data: String, id: UInt64) -> SSEEvent {
    SSEEvent(event: "patch", data: #"{"path":"\#(path)","data":\#(data)}"#, id: "\(id)")
}

/// What the hub queues when a stream's read is refused by new rules.
private let cancelEvent = SSEEvent(event: "cancel", data: "\"Permission denied\"")

/// The changes a namespace published, until the test hands them to the hub.
private final class ChangeFeed: Sendable {
    let pending = Mutex<[PublishedChange]>([])

    func append(_ changes: [PublishedChange]) {
        pending.withLock { $0 += changes }
    }

    func take() -> [PublishedChange] {
        pending.withLock { pending in
            let taken = pending
            pending = []
            return taken
        }
    }
}

/// A namespace and a hub of its streams, without a server. Each write hands the change the
/// namespace published to the hub before it returns (what `StreamRegistry`'s task does, a
/// little later), so a test sees each outbox right after each write.
private final class HubFixture: Sendable {
    let database: Database
    let feed: ChangeFeed
    let hub: NamespaceStreams
    let lastID = Mutex(0)

    init(historyLimit: Int = 100) {
        let database = Database(name: "hub-test")
        let feed = ChangeFeed()
        let start = database.observe { feed.append($0) }
        self.database = database
        self.feed = feed
        self.hub = NamespaceStreams(
            root: start.root, sequence: start.sequence, historyLimit: historyLimit, metrics: ServerMetrics())
    }

    /// PUTs `json` at `path` (`""` is the root) with no rules, publishes the change to the
    /// hub, and returns its sequence number.
    @discardableResult
    func put(_ path: String, _ json: String) async throws -> UInt64 {
        let request = WriteRequest(path: try Path(validating: path), operation: .set(try JSONParser.parse(Array(json.utf8))))
        let outcome = try await database.write(request)
        guard case .written(let sequence, _) = outcome else {
            Issue.record("PUT \(path) was not written: \(outcome)")
            return 0
        }
        await hub.publish(feed.take())
        return sequence
    }

    /// A new stream of `path`, subscribed to the hub.
    func subscribe(
        _ path: String, auth: Node = .null, admin: Bool = false, outboxBytes: Int = 1 << 20, lastEventID: UInt64? = nil
    ) async throws -> Subscription {
        let id = lastID.withLock { id in
            id += 1
            return id
        }
        let subscription = Subscription(
            id: id, path: try Path(validating: path), auth: auth, bypassesRules: admin, query: nil,
            delivery: .events(Outbox(capacityBytes: outboxBytes)))
        await hub.subscribe(subscription, lastEventID: lastEventID)
        return subscription
    }
}

extension Subscription {
    /// The SSE outbox of a stream these tests opened.
    var sse: Outbox { outbox! }
}

/// The events queued in `subscription`'s outbox now, taken as its writer takes them (in one
/// batch); never waits.
private func queued(_ subscription: Subscription) async -> [SSEEvent] {
    let outbox = subscription.sse
    guard outbox.locked.withLock({ $0.machine.queuedBytes }) > 0 else { return [] }
    let item = await outbox.next()
    guard case .frame(let batch) = item else {
        Issue.record("frames were queued, but the writer was given \(item)")
        return []
    }
    var parser = SSEParser()
    return parser.feed(batch.readableBytesView)
}

/// The next batch of events the writer of `subscription` gets, waiting at most `timeout`;
/// after that the outbox is ended, so that the wait cannot hang (and the test fails).
private func nextEvents(_ subscription: Subscription, timeout: Duration = SSEStream.defaultTimeout) async -> [SSEEvent] {
    let outbox = subscription.sse
    let timer = Task {
        try await Task.sleep(for: timeout)
        outbox.end(.shutdown)
    }
    defer { timer.cancel() }
    let item = await outbox.next()
    guard case .frame(let batch) = item else {
        Issue.record("no frame within \(timeout): the writer was given \(item)")
        return []
    }
    var parser = SSEParser()
    return parser.feed(batch.readableBytesView)
}

private func json(_ text: String) throws -> Node {
    try JSONParser.parse(Array(text.utf8)).node
}

// MARK: - The hub and the outboxes, without HTTP

@Suite("Stream hub and outboxes", .timeLimit(.minutes(1)))
struct StreamHubTests {
    @Test func aStreamStartsWithTheWholeValueThenGetsTheEventsOfItsLocation() async throws {
        let fixture = HubFixture()
        try await fixture.put("x", #"{"a":1,"b":{"c":2}}"#)
        let start = try await fixture.put("other", "0")
        let x = try await fixture.subscribe("x")
        let alsoX = try await fixture.subscribe("x")
        let root = try await fixture.subscribe("")
        let below = try await fixture.subscribe("x/b")
        let elsewhere = try await fixture.subscribe("y")
        #expect(await fixture.hub.subscriptionCount == 5)

        // The first event: the whole value, with the id of the last change it includes.
        #expect(await queued(x) == [putEvent("/", #"{"a":1,"b":{"c":2}}"#, id: start)])
        #expect(await queued(alsoX) == [putEvent("/", #"{"a":1,"b":{"c":2}}"#, id: start)])
        #expect(await queued(root) == [putEvent("/", #"{"other":0,"x":{"a":1,"b":{"c":2}}}"#, id: start)])
        #expect(await queued(below) == [putEvent("/", #"{"c":2}"#, id: start)])
        #expect(await queued(elsewhere) == [putEvent("/", "null", id: start)])

        // A write below: each location gets it at its own relative path.
        let deep = try await fixture.put("x/b/c", "3")
        #expect(deep == start + 1)
        #expect(await queued(x) == [putEvent("/b/c", "3", id: deep)])
        #expect(await queued(alsoX) == [putEvent("/b/c", "3", id: deep)])
        #expect(await queued(root) == [putEvent("/x/b/c", "3", id: deep)])
        #expect(await queued(below) == [putEvent("/c", "3", id: deep)])
        #expect(await queued(elsewhere) == [])

        // A sibling: only the root hears of it.
        let sibling = try await fixture.put("other", "1")
        #expect(await queued(x) == [])
        #expect(await queued(root) == [putEvent("/other", "1", id: sibling)])

        // Above, leaving the value unchanged: nothing, even at the root.
        try await fixture.put("", #"{"other":1,"x":{"a":1,"b":{"c":3}}}"#)
        for subscription in [x, alsoX, root, below, elsewhere] { #expect(await queued(subscription) == []) }

        // Above, changing it: `put` at `/` of the new value (null where it went).
        let above = try await fixture.put("x", #"{"a":2}"#)
        #expect(await queued(x) == [putEvent("/", #"{"a":2}"#, id: above)])
        #expect(await queued(below) == [putEvent("/", "null", id: above)])
        #expect(await queued(root) == [putEvent("/x", #"{"a":2}"#, id: above)])
        #expect(await queued(elsewhere) == [])
    }

    @Test func framesQueueUntilTheWriterTakesThemInOneBatch() async throws {
        let fixture = HubFixture()
        let x = try await fixture.subscribe("x")
        #expect(await queued(x) == [putEvent("/", "null", id: 0)])
        let first = try await fixture.put("x/a", "1")
        let second = try await fixture.put("x/b", "2")
        await fixture.hub.keepAlive()
        #expect(
            await queued(x) == [
                putEvent("/a", "1", id: first), putEvent("/b", "2", id: second), SSEEvent(event: "keep-alive", data: "null"),
            ])
        #expect(await queued(x) == [])
    }

    @Test func lastEventIDResumesWithExactlyTheMissedEvents() async throws {
        let fixture = HubFixture()
        let k0 = try await fixture.put("log/k0", "0")
        let k1 = try await fixture.put("log/k1", "1")
        try await fixture.put("other", "1")  // not below /log
        try await fixture.put("", #"{"log":{"k0":0,"k1":1},"other":2}"#)  // /log unchanged
        let whole = try await fixture.put("log", #"{"k0":5}"#)

        // Each missed event is computed from the trees before and after its change, as a
        // stream open all along got it: the writes that did not change /log send nothing.
        let resumed = try await fixture.subscribe("log", lastEventID: k0)
        #expect(await queued(resumed) == [putEvent("/k1", "1", id: k1), putEvent("/", #"{"k0":5}"#, id: whole)])
        // From before the first change of the history: every change.
        let fromStart = try await fixture.subscribe("log", lastEventID: 0)
        #expect(await queued(fromStart).map(\.sequence) == [k0, k1, whole])
        // Nothing missed: nothing until the next change.
        let upToDate = try await fixture.subscribe("log", lastEventID: whole)
        #expect(await queued(upToDate) == [])
        // An id the namespace has not reached: a fresh put.
        let ahead = try await fixture.subscribe("log", lastEventID: whole + 100)
        #expect(await queued(ahead) == [putEvent("/", #"{"k0":5}"#, id: whole)])

        let next = try await fixture.put("log/k2", "2")
        for subscription in [resumed, fromStart, upToDate, ahead] {
            #expect(await queued(subscription) == [putEvent("/k2", "2", id: next)])
        }
    }

    @Test func aResumeBeyondTheHistoryGetsAFreshPut() async throws {
        let fixture = HubFixture(historyLimit: 4)
        var sequences: [UInt64] = []
        for index in 0..<10 { sequences.append(try await fixture.put("log/k\(index)", "\(index)")) }
        let value = "{" + (0..<10).map { #""k\#($0)":\#($0)"# }.joined(separator: ",") + "}"
        // The history keeps the last 4 changes (and at most a quarter more).
        let old = try await fixture.subscribe("log", lastEventID: sequences[2])
        #expect(await queued(old) == [putEvent("/", value, id: sequences[9])])
        let recent = try await fixture.subscribe("log", lastEventID: sequences[7])
        #expect(await queued(recent) == [putEvent("/k8", "8", id: sequences[8]), putEvent("/k9", "9", id: sequences[9])])
    }

    @Test func aSlowStreamWhoseOutboxOverflowsGetsOneFreshPut() async throws {
        let fixture = HubFixture()
        try await fixture.put("feed", #"{"start":0}"#)
        let filler = String(repeating: "x", count: 40)
        // Room for the first put and one event of about 95 bytes, not two.
        let slow = try await fixture.subscribe("feed", outboxBytes: 200)
        let healthy = try await fixture.subscribe("feed")
        _ = await queued(healthy)
        var last: UInt64 = 0
        for index in 0..<10 { last = try await fixture.put("feed/k\(index)", #""\#(index)\#(filler)""#) }
        #expect(await queued(healthy).count == 10)

        // Everything queued was dropped; the writer is told to resynchronise...
        let state = slow.sse.locked.withLock { $0.machine.state }
        #expect(state == .overflowed)
        #expect(slow.sse.push(ByteBuffer(string: "dropped")) == false)
        let item = await slow.sse.next()
        guard case .resync = item else {
            Issue.record("the writer of an overflowed outbox was given \(item)")
            return
        }
        // ...fetches one put of the current value, with the id of the latest change...
        await fixture.hub.resync(slow)
        let value = "{" + (0..<10).map { #""k\#($0)":"\#($0)\#(filler)""# }.joined(separator: ",") + #","start":0}"#
        #expect(await queued(slow) == [putEvent("/", value, id: last)])
        // ...and then gets live events again.
        let after = try await fixture.put("feed/after", "1")
        #expect(await queued(slow) == [putEvent("/after", "1", id: after)])
        #expect(await queued(healthy) == [putEvent("/after", "1", id: after)])
        #expect(slow.sse.endReason == nil)
    }

    @Test func newRulesCancelTheStreamsThatMayNoLongerRead() async throws {
        let fixture = HubFixture()
        try await fixture.put("room", #"{"public":{"n":0},"secret":{"n":0}}"#)
        let anonymousSecret = try await fixture.subscribe("room/secret")
        let anonymousPublic = try await fixture.subscribe("room/public")
        let adminSecret = try await fixture.subscribe("room/secret", admin: true)
        let ops = try await fixture.subscribe("room/secret", auth: try json(#"{"uid":"ops"}"#))
        let ada = try await fixture.subscribe("room/secret", auth: try json(#"{"uid":"ada"}"#))
        let all = [anonymousSecret, anonymousPublic, adminSecret, ops, ada]
        for subscription in all { #expect(await queued(subscription) == [putEvent("/", #"{"n":0}"#, id: 1)]) }

        let rules = try RuleSet.parse(
            #"{"rules": {"room": {"public": {".read": true}, "secret": {".read": "auth != null && auth.uid == 'ops'"}}}}"#)
        await fixture.hub.rulesChanged(rules, now: Database.systemMilliseconds())
        for cancelled in [anonymousSecret, ada] {
            #expect(cancelled.sse.endReason == .cancelled)
            // The writer sends `cancel` last, then ends; and again if asked again.
            for _ in 0..<2 {
                let item = await cancelled.sse.next()
                guard case .end(let frame?) = item else {
                    Issue.record("a cancelled stream's writer was given \(item)")
                    continue
                }
                var parser = SSEParser()
                #expect(parser.feed(frame.readableBytesView) == [cancelEvent])
            }
        }
        for kept in [anonymousPublic, adminSecret, ops] { #expect(kept.sse.endReason == nil) }

        let secret = try await fixture.put("room/secret/n", "1")
        let open = try await fixture.put("room/public/n", "1")
        #expect(await queued(adminSecret) == [putEvent("/n", "1", id: secret)])
        #expect(await queued(ops) == [putEvent("/n", "1", id: secret)])
        #expect(await queued(anonymousPublic) == [putEvent("/n", "1", id: open)])
        #expect(await queued(anonymousSecret) == [])
    }

    @Test func unsubscribedStreamsGetNothingAndShutdownEndsTheRest() async throws {
        let fixture = HubFixture()
        let kept = try await fixture.subscribe("x")
        let gone = try await fixture.subscribe("x")
        let other = try await fixture.subscribe("y/z")
        for subscription in [kept, gone, other] { _ = await queued(subscription) }

        await fixture.hub.unsubscribe(gone)
        #expect(await fixture.hub.subscriptionCount == 2)
        // A second unsubscribe of the same stream changes nothing.
        await fixture.hub.unsubscribe(gone)
        #expect(await fixture.hub.subscriptionCount == 2)

        let write = try await fixture.put("x", "1")
        #expect(await queued(kept) == [putEvent("/", "1", id: write)])
        #expect(await queued(gone) == [])
        await fixture.hub.keepAlive()
        #expect(await queued(kept) == [SSEEvent(event: "keep-alive", data: "null")])
        #expect(await queued(other) == [SSEEvent(event: "keep-alive", data: "null")])
        #expect(await queued(gone) == [])

        await fixture.hub.endAll()
        for ended in [kept, other] {
            #expect(ended.sse.endReason == .shutdown)
            let item = await ended.sse.next()
            guard case .end(.none) = item else {
                Issue.record("a stream ended by shutdown gave its writer \(item)")
                continue
            }
        }
        #expect(gone.sse.endReason == nil)
    }

    @Test func theRegistryGivesOneHubPerNamespaceThatFollowsItsChanges() async throws {
        let registry = StreamRegistry()
        let database = Database(name: "registry-test")
        _ = try await database.write(WriteRequest(path: try Path(validating: "a"), operation: .set(try JSONParser.parse(Array("1".utf8)))))
        let hub = registry.hub(for: database)
        #expect(registry.hub(for: database) === hub)
        #expect(registry.hub(for: Database(name: "another")) !== hub)

        let subscription = Subscription(
            id: registry.makeID(), path: try Path(validating: "a"), auth: .null, bypassesRules: false, query: nil,
            delivery: .events(Outbox(capacityBytes: 1 << 20)))
        await hub.subscribe(subscription, lastEventID: nil)
        #expect(await registry.streamCount() == 1)
        #expect(await nextEvents(subscription) == [putEvent("/", "1", id: 1)])
        // The hub hears of the write by itself (a little after it returns).
        _ = try await database.write(WriteRequest(path: try Path(validating: "a"), operation: .set(try JSONParser.parse(Array("2".utf8)))))
        #expect(await nextEvents(subscription) == [putEvent("/", "2", id: 2)])

        await registry.endAll()
        #expect(subscription.sse.endReason == .shutdown)
    }

    @Test func streamSlotsPerClientAreGivenBackWhenReleased() {
        let registry = StreamRegistry()
        var first = registry.leaseStream(for: "10.0.0.1", limit: 2)
        let second = registry.leaseStream(for: "10.0.0.1", limit: 2)
        #expect(first != nil)
        #expect(second != nil)
        #expect(registry.leaseStream(for: "10.0.0.1", limit: 2) == nil)
        #expect(registry.leaseStream(for: "10.0.0.2", limit: 2) != nil)
        first = nil
        let third = registry.leaseStream(for: "10.0.0.1", limit: 2)
        #expect(third != nil)
        #expect(registry.leaseStream(for: "10.0.0.1", limit: 2) == nil)
        withExtendedLifetime((first, second, third)) {}
    }
}

// MARK: - Streams over HTTP

/// Reads the next event (keep-alives aside) and checks its type, its exact `data` line and,
/// if given, its `id`; `put` and `patch` must carry an id.
@discardableResult
private func expectEvent(
    _ stream: SSEStream, _ expected: SSEEvent, sourceLocation: SourceLocation = #_sourceLocation
) async throws -> SSEEvent {
    let event = try await stream.next()
    #expect(event == expected, sourceLocation: sourceLocation)
    return event
}

/// Reads the next event, a `put` or `patch` with the given path and data, whatever its id;
/// returns its id.
private func expectEvent(
    _ stream: SSEStream, _ kind: String, _ path: String, _ data: String, sourceLocation: SourceLocation = #_sourceLocation
) async throws -> UInt64 {
    let event = try await stream.next()
    #expect(event.event == kind, "\(event)", sourceLocation: sourceLocation)
    #expect(event.data == #"{"path":"\#(path)","data":\#(data)}"#, sourceLocation: sourceLocation)
    return try #require(event.sequence, "no id: \(event)", sourceLocation: sourceLocation)
}

/// A write's result, checked to be `200`.
@discardableResult
private func accepted(_ result: HTTPResult, sourceLocation: SourceLocation = #_sourceLocation) -> HTTPResult {
    #expect(result.status == 200, "\(result.status) \(result.body)", sourceLocation: sourceLocation)
    return result
}

/// Reads `stream` until the event with id `sequence` (or a later one) has come.
private func read(_ stream: SSEStream, through sequence: UInt64) async throws {
    while true {
        let event = try await stream.next()
        let id = try #require(event.sequence, "no id: \(event)")
        if id >= sequence { return }
    }
}

private let admin = HearthTestClient.admin

@Suite("Realtime streams over HTTP", .timeLimit(.minutes(1)))
struct StreamHTTPTests {
    @Test func writesArriveAsPutAndPatchAtTheirRelativePaths() async throws {
        try await withTestServer(live: true) { client in
            accepted(try await client.put("/.json", #"{"x":{"a":1,"b":{"c":2}},"other":0}"#))
            try await client.withStream("/x.json") { stream in
                let head = try await stream.head()
                #expect(head.status == 200)
                #expect(head.header("Content-Type")?.hasPrefix("text/event-stream") == true)
                #expect(head.header("Cache-Control") == "no-cache")

                // The whole value first, with the id of the one change made so far.
                try await expectEvent(stream, putEvent("/", #"{"a":1,"b":{"c":2}}"#, id: 1))
                accepted(try await client.put("/x/b/c.json", "3"))
                try await expectEvent(stream, putEvent("/b/c", "3", id: 2))
                accepted(try await client.put("/x.json", #"{"a":2}"#))
                try await expectEvent(stream, putEvent("/", #"{"a":2}"#, id: 3))

                // Writes above that leave /x as it was, and a sibling's: no event (the next
                // event is the next write's, id 7).
                accepted(try await client.put("/.json", #"{"x":{"a":2},"other":1}"#))
                accepted(try await client.patch("/.json", #"{"x":{"a":2},"other":2}"#))
                accepted(try await client.put("/other.json", "3"))
                accepted(try await client.put("/x/a.json", "3"))
                try await expectEvent(stream, putEvent("/a", "3", id: 7))

                // PATCH at, below and above the location.
                accepted(try await client.patch("/x.json", #"{"b/c":4,"d":1}"#))
                try await expectEvent(stream, patchEvent("/", #"{"b/c":4,"d":1}"#, id: 8))
                accepted(try await client.patch("/x/n.json", #"{"m":2,"o":3}"#))
                try await expectEvent(stream, patchEvent("/n", #"{"m":2,"o":3}"#, id: 9))
                accepted(try await client.patch("/.json", #"{"x/a":5,"other":5}"#))
                try await expectEvent(stream, patchEvent("/", #"{"a":5}"#, id: 10))

                // POST: a put at the new child; DELETE: a put of null.
                let posted = accepted(try await client.post("/x/list.json", #""pushed""#))
                guard case .string(let name)? = posted.node?.child("name") else {
                    Issue.record("POST answered \(posted.body)")
                    return
                }
                try await expectEvent(stream, putEvent("/list/\(name)", #""pushed""#, id: 11))
                accepted(try await client.delete("/x/d.json"))
                try await expectEvent(stream, putEvent("/d", "null", id: 12))
                accepted(try await client.delete("/x.json"))
                try await expectEvent(stream, putEvent("/", "null", id: 13))
            }
        }
    }

    @Test func aStreamOfNothingStartsWithNullAndTheRootSeesEveryPath() async throws {
        try await withTestServer(live: true) { client in
            try await client.withStream("/nothing/here.json") { empty in
                try await client.withStream("/.json") { root in
                    // A namespace never written: id 0.
                    try await expectEvent(empty, putEvent("/", "null", id: 0))
                    try await expectEvent(root, putEvent("/", "null", id: 0))
                    accepted(try await client.put("/deep/er/still.json", #"{"v":true}"#))
                    try await expectEvent(root, putEvent("/deep/er/still", #"{"v":true}"#, id: 1))
                    // That write was not below /nothing/here: its next event is this one's.
                    accepted(try await client.put("/nothing/here.json", "1"))
                    try await expectEvent(empty, putEvent("/", "1", id: 2))
                    try await expectEvent(root, putEvent("/nothing/here", "1", id: 2))
                }
            }
        }
    }

    @Test func lastEventIDResumesWithExactlyTheMissedChanges() async throws {
        try await withTestServer(live: true) { client in
            accepted(try await client.put("/log.json", #"{"start":true}"#))
            // A stream of the root, open throughout: once it has a change's event, the hub has
            // processed that change, and a resume after it can be served from the history.
            try await client.withStream("/.json") { witness in
                let initial = try await expectEvent(witness, "put", "/", #"{"log":{"start":true}}"#)
                let seen = try await client.withStream("/log.json") { first in
                    try await expectEvent(first, "put", "/", #"{"start":true}"#)
                }
                #expect(seen == initial)
                for index in 0..<5 { accepted(try await client.put("/log/k\(index).json", "\(index)")) }
                try await read(witness, through: seen + 5)

                // After the second write: exactly the last three, with their ids, no first put;
                // then live events.
                try await client.withStream("/log.json", headers: ["Last-Event-ID": "\(seen + 2)"]) { resumed in
                    for index in 2..<5 {
                        try await expectEvent(resumed, putEvent("/k\(index)", "\(index)", id: seen + 1 + UInt64(index)))
                    }
                    accepted(try await client.put("/log/live.json", #""yes""#))
                    try await expectEvent(resumed, putEvent("/live", #""yes""#, id: seen + 6))
                }
                // Up to date: nothing until the next change.
                try await client.withStream("/log.json", headers: ["Last-Event-ID": "\(seen + 6)"]) { resumed in
                    accepted(try await client.put("/log/more.json", "1"))
                    try await expectEvent(resumed, putEvent("/more", "1", id: seen + 7))
                }
                // Not a number, or an id the namespace has not reached: a fresh put.
                let value = #"{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"live":"yes","more":1,"start":true}"#
                for id in ["soon", "\(seen + 1000)"] {
                    try await client.withStream("/log.json", headers: ["Last-Event-ID": id]) { fresh in
                        try await expectEvent(fresh, putEvent("/", value, id: seen + 7))
                    }
                }
            }
        }
    }

    @Test func aResumeBeyondTheHistoryGetsAFreshPut() async throws {
        var configuration = ServerConfiguration.openForTests()
        configuration.streams.historyChanges = 3
        try await withTestServer(configuration: configuration, live: true) { client in
            try await client.withStream("/.json") { witness in
                let seen = try await expectEvent(witness, "put", "/", "null")
                for index in 0..<10 { accepted(try await client.put("/log/k\(index).json", "\(index)")) }
                try await read(witness, through: seen + 10)
                let value = "{" + (0..<10).map { #""k\#($0)":\#($0)"# }.joined(separator: ",") + "}"
                try await client.withStream("/log.json", headers: ["Last-Event-ID": "\(seen)"]) { fresh in
                    try await expectEvent(fresh, putEvent("/", value, id: seen + 10))
                    accepted(try await client.put("/log/live.json", "1"))
                    try await expectEvent(fresh, putEvent("/live", "1", id: seen + 11))
                }
                // A gap still in the history is replayed.
                try await client.withStream("/log.json", headers: ["Last-Event-ID": "\(seen + 9)"]) { resumed in
                    try await expectEvent(resumed, putEvent("/k9", "9", id: seen + 10))
                    try await expectEvent(resumed, putEvent("/live", "1", id: seen + 11))
                }
            }
        }
    }

    @Test func aRulesChangeCancelsTheStreamsThatLoseReadAccess() async throws {
        var configuration = ServerConfiguration(
            port: 0, rules: try RuleSet.parse(#"{"rules": {"room": {".read": true}}}"#),
            adminToken: ServerConfiguration.testAdminToken)
        configuration.createNamespaces = true
        try await withTestServer(configuration: configuration, live: true) { client in
            accepted(try await client.put("/room.json", #"{"secret":{"n":0},"public":{"n":0}}"#, headers: admin))
            try await client.withStream("/room/secret.json") { secret in
                try await client.withStream("/room/public.json") { open in
                    try await client.withStream("/room/secret.json", headers: admin) { adminSecret in
                        for stream in [secret, open, adminSecret] { try await expectEvent(stream, putEvent("/", #"{"n":0}"#, id: 1)) }

                        let rules = #"{"rules": {"room": {"public": {".read": true}}}}"#
                        accepted(try await client.put("/.settings/rules.json", rules, headers: admin))
                        try await expectEvent(secret, cancelEvent)
                        // Then the stream ends, with nothing after the cancel.
                        #expect(try await secret.end() == [])

                        // The others go on.
                        accepted(try await client.put("/room/secret/n.json", "1", headers: admin))
                        accepted(try await client.put("/room/public/n.json", "1", headers: admin))
                        try await expectEvent(adminSecret, putEvent("/n", "1", id: 2))
                        try await expectEvent(open, putEvent("/n", "1", id: 3))
                    }
                }
            }
            // Opening it again is refused before any stream starts.
            try await client.withStream("/room/secret.json") { refused in
                let head = try await refused.head()
                #expect(head.status == 401)
                #expect(head.header("Content-Type")?.hasPrefix("text/event-stream") != true)
                try await refused.end()
                #expect(refused.body.contains("Permission denied"))
                #expect(refused.received == [])
            }
        }
    }

    @Test func anExpiredTokenRevokesTheStream() async throws {
        let secret = Array("a-secret-for-the-stream-tests-0123456789abcdef".utf8)
        var options = TokenVerifier.Options()
        options.hmacSecrets = [secret]
        options.leewaySeconds = 0
        var configuration = ServerConfiguration(
            port: 0, rules: try RuleSet.parse(#"{"rules": {".read": "auth != null"}}"#),
            adminToken: ServerConfiguration.testAdminToken, tokenVerifier: try await TokenVerifier(options: options))
        configuration.createNamespaces = true
        try await withTestServer(configuration: configuration, live: true) { client in
            accepted(try await client.put("/inbox.json", #"{"n":0}"#, headers: admin))
            // `exp` is in whole seconds: this token expires 2 to 3 seconds from now.
            let issued = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
            let short = try await TokenMinter.hs256(uid: "alice", secret: secret, lifetime: 3, now: issued)
            let expiry = issued.timeIntervalSince1970 + 3
            let lasting = try await TokenMinter.hs256(uid: "bob", secret: secret, lifetime: 3600)
            try await client.withStream("/inbox.json", headers: ["Authorization": "Bearer \(short)"]) { expiring in
                try await client.withStream("/inbox.json?auth=\(lasting)") { kept in
                    try await expectEvent(expiring, putEvent("/", #"{"n":0}"#, id: 1))
                    try await expectEvent(kept, putEvent("/", #"{"n":0}"#, id: 1))

                    try await expectEvent(expiring, SSEEvent(event: "auth_revoked", data: "credential is no longer valid"))
                    #expect(Date().timeIntervalSince1970 >= expiry - 0.05, "auth_revoked before the token expired")
                    #expect(try await expiring.end() == [])

                    accepted(try await client.put("/inbox/n.json", "1", headers: admin))
                    try await expectEvent(kept, putEvent("/n", "1", id: 2))
                }
            }
            let again = try await client.get(
                "/inbox.json", headers: ["Accept": "text/event-stream", "Authorization": "Bearer \(short)"])
            #expect(again.status == 401)
        }
    }

    @Test func keepAlivesArriveOnIdleStreams() async throws {
        var configuration = ServerConfiguration.openForTests()
        configuration.streams.keepAliveSeconds = 0.1
        try await withTestServer(configuration: configuration, live: true) { client in
            try await client.withStream("/room.json") { stream in
                try await expectEvent(stream, putEvent("/", "null", id: 0))
                for _ in 0..<2 {
                    let event = try await stream.next(keepAlives: true)
                    #expect(event == SSEEvent(event: "keep-alive", data: "null"))
                }
                // Keep-alives are no data events: the next one is the write's.
                accepted(try await client.put("/room.json", "1"))
                try await expectEvent(stream, putEvent("/", "1", id: 1))
            }
        }
    }

    @Test func aLiveQueryPatchesItsAnswer() async throws {
        try await withTestServer(live: true) { client in
            accepted(try await client.put("/scores.json", #"{"a":1,"b":2,"c":3}"#))
            try await client.withStream("/scores.json?orderBy=%22%24key%22&limitToLast=2") { stream in
                try await expectEvent(stream, putEvent("/", #"{"b":2,"c":3}"#, id: 1))
                // Entering the window pushes `b` out.
                accepted(try await client.put("/scores/d.json", "4"))
                try await expectEvent(stream, patchEvent("/", #"{"b":null,"d":4}"#, id: 2))
                // Outside the window: nothing (the next event is id 4's).
                accepted(try await client.put("/scores/a.json", "0"))
                accepted(try await client.put("/scores/c.json", "5"))
                try await expectEvent(stream, patchEvent("/", #"{"c":5}"#, id: 4))
                // Leaving it brings `b` back.
                accepted(try await client.delete("/scores/d.json"))
                try await expectEvent(stream, patchEvent("/", #"{"b":2,"d":null}"#, id: 5))
            }
        }
    }

    @Test func closedStreamsAreUnsubscribed() async throws {
        try await withTestServer(live: true) { client in
            @Sendable func openStreams() async throws -> Int64? {
                let result = try await client.get("/.inspect/streams.json", headers: admin)
                guard case .int(let open)? = result.node?.child("open") else { return nil }
                return open
            }
            #expect(try await openStreams() == 0)
            var streams: [SSEStream] = []
            for index in 0..<3 {
                let stream = try await client.openStream("/room/\(index).json")
                streams.append(stream)
                try await expectEvent(stream, putEvent("/", "null", id: 0))
            }
            #expect(try await openStreams() == 3)
            for stream in streams { await stream.close() }
            // The server notices each closed connection soon.
            let deadline = ContinuousClock.now + .seconds(10)
            var open = try await openStreams()
            while open != 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
                open = try await openStreams()
            }
            #expect(open == 0)
            // Streaming goes on.
            try await client.withStream("/room/0.json") { again in
                try await expectEvent(again, putEvent("/", "null", id: 0))
                accepted(try await client.put("/room/0.json", "1"))
                try await expectEvent(again, putEvent("/", "1", id: 1))
            }
        }
    }
}

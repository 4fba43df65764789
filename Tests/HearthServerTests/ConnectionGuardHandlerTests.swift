import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Testing

@testable import HearthServer

/// The request timeout as the guard keeps it: one scheduled check per connection that moves
/// with what the client owes (a request head, or the rest of a body), never the responses.
@Suite("Connection guard deadline")
struct ConnectionGuardHandlerTests {
    static let timeout = Duration.seconds(10)

    func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        let handler = ConnectionGuardHandler(
            limiter: ConnectionLimiter(limit: 10), timeout: ConnectionGuardHandlerTests.timeout, metrics: ServerMetrics())
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9000)).wait()
        return channel
    }

    func request(_ channel: EmbeddedChannel) throws {
        try channel.writeInbound(HTTPRequestPart.head(HTTPRequest(method: .get, scheme: "http", authority: "x", path: "/.health")))
        try channel.writeInbound(HTTPRequestPart.end(nil))
    }

    func answer(_ channel: EmbeddedChannel) throws {
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
    }

    @Test func anIdleConnectionIsClosedWhenTheTimeoutPasses() throws {
        let channel = try channel()
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive, "not yet")
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive, "no request head within the timeout")
    }

    @Test func requestsThatKeepComingKeepTheConnection() throws {
        let channel = try channel()
        // Each request comes 8 s after the previous answer: the first check, set for the
        // connection's start, fires before the deadline has been reached and moves itself on.
        for _ in 0..<5 {
            channel.embeddedEventLoop.advanceTime(by: .seconds(8))
            #expect(channel.isActive)
            try request(channel)
            try answer(channel)
        }
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive, "9 s after the last answer")
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive, "11 s after the last answer")
    }

    @Test func aSlowAnswerIsNeverTimed() throws {
        let channel = try channel()
        try request(channel)
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(channel.isActive, "the server owes the answer, not the client")
        try answer(channel)
        channel.embeddedEventLoop.advanceTime(by: .seconds(11))
        #expect(!channel.isActive, "from the answer on, the client owes the next head")
    }

    @Test func aPauseInsideABodyIsTimed() throws {
        let channel = try channel()
        try channel.writeInbound(HTTPRequestPart.head(HTTPRequest(method: .post, scheme: "http", authority: "x", path: "/a.json")))
        channel.embeddedEventLoop.advanceTime(by: .seconds(8))
        try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: "{")))
        channel.embeddedEventLoop.advanceTime(by: .seconds(8))
        #expect(channel.isActive, "each part moves the deadline")
        channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        #expect(!channel.isActive, "11 s without the rest of the body")
    }
}

import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Synchronization
import Testing

@testable import HearthServer

/// Event streams answered in a task of their own and written through the inline handler
/// (not Hummingbird's connection task), and the gate that holds that connection task back.
@Suite("Inline streams", .timeLimit(.minutes(1)))
struct InlineStreamTests {
    typealias Recorder = InlineWriteTests.Recorder

    /// What the stream's body does: its frames come from `frames`; it ends when that ends,
    /// or when its task is cancelled (as a stream's pump does on shutdown).
    final class Feed: Sendable {
        let frames: AsyncStream<String>
        let continuation: AsyncStream<String>.Continuation
        let cancelled = Atomic<Bool>(false)
        let bodyEnded = Atomic<Bool>(false)
        /// The body runs on the channel's event loop, as an uncompressed stream's pump does
        /// (else on the global pool, as a compressed one's).
        let onLoop: Bool

        init(onLoop: Bool = false) {
            self.onLoop = onLoop
            (frames, continuation) = AsyncStream<String>.makeStream()
        }

        /// Writes the frames until they end or the task is cancelled.
        func pump(into writer: inout any ResponseBodyWriter) async throws {
            defer { bodyEnded.store(true, ordering: .relaxed) }
            await withTaskCancellationHandler {
                for await frame in frames {
                    do { try await writer.write(ByteBuffer(string: frame)) } catch { return }
                }
            } onCancel: {
                cancelled.store(true, ordering: .relaxed)
                continuation.finish()
            }
            try await writer.finish(nil)
        }
    }

    /// A channel whose handler answers `GET /inline` at once and streams `feed` to a request
    /// that asks for `text/event-stream`; a `ConnectionTaskGate` in front, `appSide` after.
    /// Also returns the gate's `opened`.
    func channel(feed: Feed, appSide: Recorder) async throws -> (NIOAsyncTestingChannel, EventLoopFuture<Void>) {
        let channel = NIOAsyncTestingChannel()
        let opened = try await channel.testingEventLoop.executeInContext {
            let taskGate = ConnectionTaskGate(eventLoop: channel.eventLoop)
            let handler = InlineAnswerHandler(
                serverName: "Hearth", logger: Logger(label: "test"),
                answerWrite: { _, _ in Response(status: .internalServerError) },
                answerStream: { [loop = channel.eventLoop] request, _ in
                    if request.uri.path == "/throws.json" {
                        return Response(
                            status: .ok, headers: [.contentType: "text/event-stream"],
                            body: ResponseBody { writer in
                                try await writer.write(ByteBuffer(string: "one\n\n"))
                                throw CancellationError()
                            })
                    }
                    guard request.uri.path == "/feed.json" else {
                        return Response(
                            status: .notFound, headers: [.contentType: "application/json"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: "{\"error\": \"no\"}")))
                    }
                    return Response(
                        status: .ok, headers: [.contentType: "text/event-stream"],
                        body: ResponseBody { writer in
                            guard feed.onLoop else { return try await feed.pump(into: &writer) }
                            try await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) {
                                try await feed.pump(into: &writer)
                            }
                        })
                },
                answer: { request, _ in
                    request.uri.path == "/inline"
                        ? BufferedResponse(status: .ok, headers: [:], body: ByteBuffer(string: "inline")) : nil
                })
            try channel.pipeline.syncOperations.addHandlers([taskGate, handler, appSide])
            return taskGate.opened
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9000))
        return (channel, opened)
    }

    func get(_ channel: NIOAsyncTestingChannel, _ path: String, stream: Bool = false) async throws {
        let fields: HTTPFields = stream ? [.accept: "text/event-stream"] : [:]
        try await channel.writeInbound(
            HTTPRequestPart.head(HTTPRequest(method: .get, scheme: "http", authority: "x", path: path, headerFields: fields)))
        try await channel.writeInbound(HTTPRequestPart.end(nil))
    }

    /// A channel (see ``channel(feed:appSide:)``) with a stream of `path` started: its head
    /// has been written.
    func streaming(_ feed: Feed, appSide: Recorder = Recorder(), path: String = "/feed.json") async throws
        -> NIOAsyncTestingChannel
    {
        let (channel, _) = try await channel(feed: feed, appSide: appSide)
        try await get(channel, path, stream: true)
        _ = try await channel.waitForOutboundWrite(as: HTTPResponsePart.self)
        return channel
    }

    func settle(_ channel: NIOAsyncTestingChannel) async throws {
        for _ in 0..<50 {
            await Task.yield()
            try await channel.testingEventLoop.executeInContext {}
        }
    }

    /// Whether the gate has opened.
    func isOpen(_ gate: EventLoopFuture<Void>, on channel: NIOAsyncTestingChannel) async throws -> Bool {
        let opened = Atomic<Bool>(false)
        try await channel.testingEventLoop.executeInContext {
            gate.whenSuccess { opened.store(true, ordering: .relaxed) }
        }
        try await channel.testingEventLoop.executeInContext {}
        return opened.load(ordering: .relaxed)
    }

    @Test func aStreamIsWrittenAsItsBodyComesAndARequestBehindItWaitsForItsEnd() async throws {
        let feed = Feed()
        let appSide = Recorder()
        let (channel, gate) = try await channel(feed: feed, appSide: appSide)
        try await get(channel, "/feed.json", stream: true)
        try await get(channel, "/inline")
        guard case .head(let head) = try await channel.waitForOutboundWrite(as: HTTPResponsePart.self) else {
            Issue.record("no head first")
            return
        }
        #expect(head.status == .ok)
        #expect(head.headerFields[.contentType] == "text/event-stream")
        #expect(head.headerFields[.server] == "Hearth")
        #expect(head.headerFields[.date] != nil)
        #expect(head.headerFields[.contentLength] == nil, "a stream's length is not known")
        feed.continuation.yield("event: put\n\n")
        #expect(try await channel.waitForOutboundWrite(as: HTTPResponsePart.self) == .body(ByteBuffer(string: "event: put\n\n")))
        feed.continuation.yield("event: patch\n\n")
        #expect(try await channel.waitForOutboundWrite(as: HTTPResponsePart.self) == .body(ByteBuffer(string: "event: patch\n\n")))
        try await settle(channel)
        #expect(try await channel.readOutbound(as: HTTPResponsePart.self) == nil, "the GET behind the stream waits")
        feed.continuation.finish()
        #expect(try await channel.waitForOutboundWrite(as: HTTPResponsePart.self) == .end(nil))
        #expect(try await channel.nextAnswer() == (200, "inline"))
        #expect(try await channel.readInbound(as: HTTPRequestPart.self) == nil, "nothing handed on")
        #expect(try await !isOpen(gate, on: channel), "Hummingbird's connection task was not needed")
        #expect(channel.isActive)
    }

    @Test func anAnswerThatIsNotAStreamIsWrittenWhole() async throws {
        let (channel, _) = try await channel(feed: Feed(), appSide: Recorder())
        try await get(channel, "/missing.json", stream: true)
        guard case .head(let head) = try await channel.waitForOutboundWrite(as: HTTPResponsePart.self) else {
            Issue.record("no head first")
            return
        }
        #expect(head.status == .notFound)
        #expect(head.headerFields[.contentLength] == "15")
        #expect(try await channel.waitForOutboundWrite(as: HTTPResponsePart.self) == .body(ByteBuffer(string: "{\"error\": \"no\"}")))
        #expect(try await channel.waitForOutboundWrite(as: HTTPResponsePart.self) == .end(nil))
        try await get(channel, "/inline")
        #expect(try await channel.nextAnswer() == (200, "inline"))
    }

    @Test func shutdownEndsTheStreamAndIsToldAfterIt() async throws {
        let feed = Feed()
        let appSide = Recorder()
        let channel = try await streaming(feed, appSide: appSide)
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(try await channel.waitForOutboundWrite(as: HTTPResponsePart.self) == .end(nil))
        try await settle(channel)
        #expect(feed.cancelled.load(ordering: .relaxed) == true, "the stream's task was cancelled")
        #expect(appSide.quiesceEvents.load(ordering: .relaxed) == 1, "shutdown passed on after the stream")
    }

    @Test func aShutdownSeenBeforeAPipelinedStreamStartsStopsItToo() async throws {
        let feed = Feed()
        let appSide = Recorder()
        let channel = try await streaming(feed, appSide: appSide)
        // A second stream comes behind the first, then the shutdown.
        try await get(channel, "/feed.json", stream: true)
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(try await channel.waitForOutboundWrite(as: HTTPResponsePart.self) == .end(nil))
        guard case .head = try await channel.waitForOutboundWrite(as: HTTPResponsePart.self) else {
            Issue.record("the second stream did not start")
            return
        }
        #expect(try await channel.waitForOutboundWrite(as: HTTPResponsePart.self) == .end(nil), "and ended at once")
        try await settle(channel)
        #expect(appSide.quiesceEvents.load(ordering: .relaxed) == 1, "shutdown passed on after both")
    }

    @Test func aWriteWaitingForASlowClientGoesOnWhenTheServerStops() async throws {
        let feed = Feed(onLoop: true)
        let channel = try await streaming(feed)
        channel.isWritable = false
        feed.continuation.yield("one\n\n")
        _ = try await channel.waitForOutboundWrite(as: HTTPResponsePart.self)
        feed.continuation.yield("two\n\n")
        try await settle(channel)
        #expect(try await channel.readOutbound(as: HTTPResponsePart.self) == nil, "the pump waits for the client")
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(try await channel.waitForOutboundWrite(as: HTTPResponsePart.self) == .body(ByteBuffer(string: "two\n\n")))
        #expect(try await channel.waitForOutboundWrite(as: HTTPResponsePart.self) == .end(nil))
        #expect(channel.isActive)
    }

    @Test func aBodyThatFailsPartWayClosesTheConnection() async throws {
        let channel = try await streaming(Feed(), path: "/throws.json")
        #expect(try await channel.waitForOutboundWrite(as: HTTPResponsePart.self) == .body(ByteBuffer(string: "one\n\n")))
        for _ in 0..<200 where channel.isActive {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(!channel.isActive, "an answer cut short must not look whole")
    }

    @Test func aClosedConnectionEndsTheStreamsTask() async throws {
        let feed = Feed()
        let channel = try await streaming(feed)
        try await channel.close()
        feed.continuation.yield("event: put\n\n")
        for _ in 0..<200 where !feed.bodyEnded.load(ordering: .relaxed) {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(feed.bodyEnded.load(ordering: .relaxed) == true, "the write failed and the body returned")
    }

    @Test(arguments: [false, true]) func aWriteWaitsWhileTheChannelIsNotWritable(onLoop: Bool) async throws {
        let feed = Feed(onLoop: onLoop)
        let channel = try await streaming(feed)
        // The client stops reading: the channel fills up with the first frame.
        channel.isWritable = false
        for frame in ["one", "two", "three"] { feed.continuation.yield(frame) }
        #expect(try await channel.waitForOutboundWrite(as: HTTPResponsePart.self) == .body(ByteBuffer(string: "one")))
        try await settle(channel)
        // On the loop, the pump waits after the write that filled the channel; off it, one
        // write more may have been handed over before the loop said so. Never two.
        var written = ["one"]
        while case .body(let buffer) = try await channel.readOutbound(as: HTTPResponsePart.self) {
            written.append(String(buffer: buffer))
        }
        #expect(written == (onLoop ? ["one"] : ["one", "two"]))
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        feed.continuation.finish()
        while true {
            let part = try await channel.waitForOutboundWrite(as: HTTPResponsePart.self)
            guard case .body(let buffer) = part else {
                #expect(part == .end(nil))
                break
            }
            written.append(String(buffer: buffer))
        }
        #expect(written == ["one", "two", "three"])
    }

    @Test func theGateOpensWhenARequestIsHandedOnAndNotForWhatIsAnsweredHere() async throws {
        let (channel, gate) = try await channel(feed: Feed(), appSide: Recorder())
        try await get(channel, "/inline")
        #expect(try await channel.nextAnswer() == (200, "inline"))
        #expect(try await !isOpen(gate, on: channel))
        // Hummingbird answers what the handler does not (here: `GET /other`, handed on).
        try await get(channel, "/other")
        #expect(try await isOpen(gate, on: channel))
        guard case .head(let head) = try await channel.readInbound(as: HTTPRequestPart.self) else {
            Issue.record("not handed on")
            return
        }
        #expect(head.path == "/other")
    }

    @Test func theGateOpensWhenTheConnectionCloses() async throws {
        let (channel, gate) = try await channel(feed: Feed(), appSide: Recorder())
        #expect(try await !isOpen(gate, on: channel))
        try await channel.close()
        try await settle(channel)
        #expect(try await isOpen(gate, on: channel))
    }
}

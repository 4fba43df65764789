import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import Synchronization
import Testing

@testable import HearthServer

/// Writes read on the event loop and answered in a task of their own, or from the log's
/// callback without a task: answers in the order of the requests, reading paused meanwhile,
/// large writes handed on, shutdown told after.
@Suite("Inline writes")
struct InlineWriteTests {
    /// Counts the reads asked of the socket, and the shutdown events that pass.
    final class Recorder: ChannelDuplexHandler, @unchecked Sendable {
        typealias InboundIn = HTTPRequestPart
        typealias OutboundIn = HTTPResponsePart
        let reads = Atomic<Int>(0)
        let quiesceEvents = Atomic<Int>(0)
        let inputClosedEvents = Atomic<Int>(0)
        let errors = Atomic<Int>(0)
        /// The socket side passes errors on (and does not count them).
        var passesErrors = false

        func read(context: ChannelHandlerContext) {
            reads.add(1, ordering: .relaxed)
            context.read()
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is ChannelShouldQuiesceEvent { quiesceEvents.add(1, ordering: .relaxed) }
            if let event = event as? ChannelEvent, event == .inputClosed { inputClosedEvents.add(1, ordering: .relaxed) }
            context.fireUserInboundEventTriggered(event)
        }

        /// Counts the errors that reach it; the test channel's end does not see them.
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            if passesErrors {
                context.fireErrorCaught(error)
            } else {
                errors.add(1, ordering: .relaxed)
            }
        }
    }

    /// A write's answer that waits until `open()`.
    struct Gate: Sendable {
        let stream: AsyncStream<Void>
        let continuation: AsyncStream<Void>.Continuation

        init() { (stream, continuation) = AsyncStream<Void>.makeStream() }

        func open() { continuation.finish() }

        func wait() async { for await _ in stream {} }
    }

    /// How the handler answers a write.
    enum WriteMode: String, CaseIterable, Sendable, CustomStringConvertible {
        /// In a task (a credential to verify).
        case task
        /// From a callback on another thread, without a task (an anonymous or admin caller).
        case callback

        var description: String { rawValue }
    }

    /// A channel whose handler answers `GET /inline` at once and writes after `gate` opens
    /// (the way `mode` says), with `socketSide` (reads) before it and `appSide` (events) after it.
    func channel(gate: Gate, socketSide: Recorder, appSide: Recorder, mode: WriteMode = .task) async throws
        -> NIOAsyncTestingChannel
    {
        let channel = NIOAsyncTestingChannel()
        try await channel.testingEventLoop.executeInContext {
            let handler = InlineAnswerHandler(
                serverName: "Hearth", logger: Logger(label: "test"),
                answerWrite: { request, _ in
                    guard mode == .task else {
                        return Response(status: .internalServerError, body: ResponseBody(byteBuffer: ByteBuffer(string: "task")))
                    }
                    await gate.wait()
                    return Response(
                        status: .ok, headers: [.contentType: "application/json"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: "\"wrote \(request.uri.path)\"")))
                },
                startWrite: { request, _, _, deliver in
                    guard mode == .callback else { return false }
                    let path = request.uri.path
                    Task {
                        await gate.wait()
                        // (As the log's flusher calls it: off the event loop.)
                        deliver {
                            BufferedResponse(
                                status: .ok, headers: [.contentType: "application/json"],
                                body: ByteBuffer(string: "\"wrote \(path)\""))
                        }
                    }
                    return true
                },
                answer: { request, _ in
                    request.uri.path == "/inline"
                        ? BufferedResponse(status: .ok, headers: [:], body: ByteBuffer(string: "inline")) : nil
                })
            try channel.pipeline.syncOperations.addHandlers([socketSide, handler, appSide])
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9000))
        return channel
    }

    func get(_ channel: NIOAsyncTestingChannel, _ path: String) async throws {
        try await channel.writeInbound(HTTPRequestPart.head(HTTPRequest(method: .get, scheme: "http", authority: "x", path: path)))
        try await channel.writeInbound(HTTPRequestPart.end(nil))
    }

    /// Lets the event loop and the write's task run for a moment.
    func settle(_ channel: NIOAsyncTestingChannel) async throws {
        for _ in 0..<20 {
            await Task.yield()
            try await channel.testingEventLoop.executeInContext {}
        }
    }

    @Test(arguments: WriteMode.allCases) func aWriteIsAnsweredAndARequestBehindItWaitsForIt(mode: WriteMode) async throws {
        let gate = Gate()
        let channel = try await channel(gate: gate, socketSide: Recorder(), appSide: Recorder(), mode: mode)
        try await channel.writePost("/things.json", body: "{}")
        try await get(channel, "/inline")
        try await settle(channel)
        #expect(try await channel.readOutbound(as: HTTPResponsePart.self) == nil, "nothing before the write's answer")
        #expect(try await channel.readInbound(as: HTTPRequestPart.self) == nil, "nothing handed on")
        gate.open()
        let first = try await channel.nextAnswer()
        #expect(first.0 == 200)
        #expect(first.1 == "\"wrote /things.json\"")
        #expect(try await channel.nextAnswer() == (200, "inline"))
        #expect(try await channel.readInbound(as: HTTPRequestPart.self) == nil)
    }

    @Test(arguments: WriteMode.allCases) func readingStopsWhileAWriteIsUnderWay(mode: WriteMode) async throws {
        let gate = Gate()
        let socketSide = Recorder()
        let channel = try await channel(gate: gate, socketSide: socketSide, appSide: Recorder(), mode: mode)
        try await channel.writePost("/things.json", body: "{}")
        let before = socketSide.reads.load(ordering: .relaxed)
        channel.read()
        try await settle(channel)
        #expect(socketSide.reads.load(ordering: .relaxed) == before, "no read while the write is answered")
        gate.open()
        _ = try await channel.nextAnswer()
        try await settle(channel)
        #expect(socketSide.reads.load(ordering: .relaxed) == before + 1, "the read asked meanwhile, once answered")
    }

    @Test func largeWritesAreHandedOnWithWhatCameOfTheirBody() async throws {
        let gate = Gate()
        gate.open()
        let channel = try await channel(gate: gate, socketSide: Recorder(), appSide: Recorder())
        // Declared too long: handed on at its head.
        let big = String(repeating: "x", count: InlineAnswerHandler.maxWriteBodyBytes + 1)
        try await channel.writePost("/big.json", body: big)
        guard case .head(let head) = try await channel.readInbound(as: HTTPRequestPart.self) else {
            Issue.record("the head was not handed on")
            return
        }
        #expect(head.path == "/big.json")
        guard case .body(let body) = try await channel.readInbound(as: HTTPRequestPart.self) else {
            Issue.record("the body was not handed on")
            return
        }
        #expect(body.readableBytes == big.utf8.count)
        guard case .end = try await channel.readInbound(as: HTTPRequestPart.self) else {
            Issue.record("the end was not handed on")
            return
        }
        // Hummingbird answers it; then a body with no declared length that grows too long
        // is handed on with the part already read.
        try await channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
        try await channel.writeOutbound(HTTPResponsePart.end(nil))
        while try await channel.readOutbound(as: HTTPResponsePart.self) != nil {}
        try await channel.writeInbound(
            HTTPRequestPart.head(HTTPRequest(method: .put, scheme: "http", authority: "x", path: "/chunked.json")))
        try await channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: "\"")))
        try await channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: big)))
        try await channel.writeInbound(HTTPRequestPart.end(nil))
        var parts: [String] = []
        while let part = try await channel.readInbound(as: HTTPRequestPart.self) {
            switch part {
            case .head(let head): parts.append("head \(head.path ?? "")")
            case .body(let buffer): parts.append("body \(buffer.readableBytes)")
            case .end: parts.append("end")
            }
        }
        #expect(parts == ["head /chunked.json", "body 1", "body \(big.utf8.count)", "end"])
    }

    @Test(arguments: WriteMode.allCases) func shutdownIsToldAfterTheWriteAndTheRequestsBeforeItAreAnswered(mode: WriteMode) async throws {
        let gate = Gate()
        let appSide = Recorder()
        let channel = try await channel(gate: gate, socketSide: Recorder(), appSide: appSide, mode: mode)
        try await channel.writePost("/things.json", body: "{}")
        try await get(channel, "/inline")
        try await channel.testingEventLoop.executeInContext {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        try await get(channel, "/inline")
        try await settle(channel)
        #expect(appSide.quiesceEvents.load(ordering: .relaxed) == 0, "held while the write is under way")
        gate.open()
        #expect(try await channel.nextAnswer().0 == 200)
        // The read that came before shutdown is answered; the one after goes to Hummingbird,
        // which closes the connection.
        #expect(try await channel.nextAnswer() == (200, "inline"))
        try await settle(channel)
        #expect(appSide.quiesceEvents.load(ordering: .relaxed) == 1)
        guard case .head = try await channel.readInbound(as: HTTPRequestPart.self) else {
            Issue.record("a request after shutdown began was not handed on")
            return
        }
    }

    @Test(arguments: WriteMode.allCases) func theEndOfInputAndErrorsWaitForTheWriteUnderWay(mode: WriteMode) async throws {
        let gate = Gate()
        let appSide = Recorder()
        let socketSide = Recorder()
        socketSide.passesErrors = true
        let channel = try await channel(gate: gate, socketSide: socketSide, appSide: appSide, mode: mode)
        try await channel.writePost("/things.json", body: "{}")
        try await channel.testingEventLoop.executeInContext {
            channel.pipeline.fireErrorCaught(HTTPParserError.invalidHeaderToken)
            channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        try await settle(channel)
        // Hummingbird would end the connection (or answer 400) before the write's answer.
        #expect(appSide.errors.load(ordering: .relaxed) == 0)
        #expect(appSide.inputClosedEvents.load(ordering: .relaxed) == 0)
        gate.open()
        #expect(try await channel.nextAnswer().0 == 200)
        try await settle(channel)
        #expect(appSide.errors.load(ordering: .relaxed) == 1)
        #expect(appSide.inputClosedEvents.load(ordering: .relaxed) == 1)
    }

    @Test func whichWritesAreReadHere() {
        func write(
            _ method: HTTPRequest.Method = .post, _ path: String = "/things.json", _ fields: HTTPFields = [:]
        ) -> HTTPRequest {
            HTTPRequest(method: method, scheme: "http", authority: "x", path: path, headerFields: fields)
        }
        #expect(InlineAnswerHandler.mayReadWrite(write()))
        #expect(InlineAnswerHandler.mayReadWrite(write(.put, "/a/b.json?print=silent", [.contentLength: "10"])))
        #expect(InlineAnswerHandler.mayReadWrite(write(.patch, "/a.json", [.connection: "keep-alive"])))
        #expect(InlineAnswerHandler.mayReadWrite(write(.delete, "/a.json")))
        #expect(!InlineAnswerHandler.mayReadWrite(write(.get)))
        #expect(!InlineAnswerHandler.mayReadWrite(write(.post, "/things.json", [.connection: "close"])))
        #expect(!InlineAnswerHandler.mayReadWrite(write(.post, "/things.json", [.contentLength: "65537"])))
        #expect(!InlineAnswerHandler.mayReadWrite(write(.post, "/things.json", [.contentEncoding: "gzip"])))
        #expect(!InlineAnswerHandler.mayReadWrite(write(.post, "/things.json", [.expect: "100-continue"])))
        #expect(!InlineAnswerHandler.mayReadWrite(write(.post, "/things.json", [.accept: "text/event-stream"])))
        #expect(!InlineAnswerHandler.mayReadWrite(write(.post, "/things.json", [ResponseFactory.methodOverrideHeader: "GET"])))
        #expect(!InlineAnswerHandler.mayReadWrite(write(.post, "/things.json?X-HTTP-Method-Override=GET")))
        #expect(!InlineAnswerHandler.mayReadWrite(write(.put, "/.settings/rules.json")))
        #expect(!InlineAnswerHandler.mayReadWrite(write(.post, "/.lp?start=t")))
        #expect(!InlineAnswerHandler.mayReadWrite(write(.post, "/things")))
    }
}

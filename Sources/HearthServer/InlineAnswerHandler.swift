import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes

/// Answers, on the connection's event loop and without a Swift task, the requests that need
/// no waiting: `/.health`, preflights, refusals, and JSON reads by an anonymous or admin
/// caller (see ``HearthResponder/answerWithoutWaiting(_:context:)``). Small writes of data
/// are read here too (see ``mayReadWrite(_:)``): by an anonymous or admin caller, applied
/// here and answered when the log calls back that they are durable, without a task; else in
/// a task of their own on the global pool. Everything else passes on to Hummingbird, which
/// answers it in a task on the pool as before. On a plain HTTP/1.1 connection, Hummingbird's
/// task for the connection waits until the first thing is handed on (``ConnectionTaskGate``).
///
/// Why: creating and scheduling a task per request cost as much as NIO's whole HTTP/1 work
/// (Docs/PERFORMANCE.md, "What a leaner layer would buy" and "Answers without a task"). The
/// answer is the same either way: the same routing, rules, middleware and headers (`Date`
/// and `Server` as Hummingbird sets them).
///
/// Sits after ``ConnectionGuardHandler`` on every HTTP/1 connection and HTTP/2 stream. Only
/// `GET` and `OPTIONS` without a body, `Connection: close` or `Upgrade` are answered here.
/// Order is kept for pipelined HTTP/1 requests: while a request handed to Hummingbird has
/// not been answered, the requests after it are handed on too; while a write is answered
/// here, what comes after it waits. Requests that come while the channel is not writable
/// (the client is not reading) are handed on: Hummingbird's writer waits, and its input
/// buffer then stops reading. After the server starts shutting down, every request is
/// handed on, so that Hummingbird closes the connection as it does.
///
/// Not installed with PostgreSQL storage: there a thread may hold the namespace registry's or
/// a writer's lock while it waits for a PostgreSQL answer served by the same event loops, and
/// an event loop waiting for that lock would never let the answer in.
final class InlineAnswerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Answers a request without waiting, or says (nil) that it must be handed on.
    typealias Answerer = (Request, HearthRequestContext) -> BufferedResponse?
    /// Answers a write (in a task): the middleware and the responder, as Hummingbird calls them.
    typealias WriteAnswerer = @Sendable (Request, HearthRequestContext) async -> Response
    /// Answers an event stream (in a task): the answer whose body is then written, by that
    /// task, for as long as the stream lasts.
    typealias StreamAnswerer = @Sendable (Request, HearthRequestContext) async -> Response
    /// Starts a write without a task, and later calls the function it is given, on any
    /// thread, with a function that makes the answer; or says (false) that the write needs a
    /// task (see ``MiddlewareStackResponder/writeWithoutWaiting(_:body:context:deliver:)``).
    typealias WriteStarter = (
        Request, ByteBuffer, HearthRequestContext,
        _ deliver: @escaping @Sendable (@escaping MiddlewareStackResponder.AnswerMaker) -> Void
    ) -> Bool

    /// Writes with bodies up to this size are read here; larger ones are handed on
    /// (Hummingbird streams them to the body limit).
    static let maxWriteBodyBytes = 64 * 1024

    private let answer: Answerer
    private let answerWrite: WriteAnswerer?
    private let answerStream: StreamAnswerer?
    private let startWriteWithoutTask: WriteStarter?
    private let logger: Logger
    private let serverField: HTTPField
    /// A request head held until its end shows that it has no body.
    private var held: HTTPRequest?
    /// A write being read here: its head, and its body so far.
    private var writeHead: HTTPRequest?
    private var writeBody = ByteBuffer()
    /// A write is under way (in a task or not): what comes meanwhile (request parts, the end
    /// of the client's input, errors, shutdown) waits in `waiting`, and reading stops, so that
    /// answers leave in the order of the requests and nothing overtakes the write's answer.
    private var writeInFlight = false
    /// (Room for one to start with: the default sixteen took 672 bytes on every connection,
    /// which rarely queues anything.)
    private var waiting = CircularBuffer<Inbound>(initialCapacity: 1)
    private var readDeferred = false

    /// What comes in while a write is under way.
    private enum Inbound {
        case part(HTTPRequestPart)
        case event(Any)
        case error(any Error)
    }
    /// Requests handed on whose answer has not ended.
    private var handedOn = 0
    private var quiescing = false
    private var date = HTTPDate()
    /// Holds Hummingbird's connection task back until something is handed on to it (plain
    /// HTTP/1.1 only; see ``ConnectionTaskGate``).
    private var taskGate: ConnectionTaskGate?
    /// The task writing an event stream's body, while it runs (`writeInFlight` is true then
    /// too; before, while the answer is made, it is nil).
    private var streamTask: Task<Void, Never>?
    /// The stream's answer has been written to its end.
    private var streamEnded = false
    /// The server stops: a stream's body task is cancelled (at once, or as soon as it starts),
    /// and its writes no longer wait for a slow client (what is left is bounded by its outbox).
    private var stopStream = false
    /// Whether the channel took the stream's last write without filling up: a stream's
    /// task off the event loop (a compressed stream's) reads it to write without waiting.
    let streamWritable = WritableFlag()
    /// The stream's task waits for the channel to become writable (the client reads slowly).
    private var writableAgain: EventLoopPromise<Void>?

    init(
        serverName: String, logger: Logger, answerWrite: WriteAnswerer? = nil, startWrite: WriteStarter? = nil,
        answerStream: StreamAnswerer? = nil, answer: @escaping Answerer
    ) {
        serverField = HTTPField(name: .server, value: serverName)
        self.logger = logger
        self.answerWrite = answerWrite
        self.answerStream = answerStream
        startWriteWithoutTask = startWrite
        self.answer = answer
    }

    /// The handler for a server: answers with `responder`'s middleware stack.
    convenience init(responder: MiddlewareStackResponder, serverName: String, logger: Logger) {
        self.init(
            serverName: serverName, logger: logger,
            answerWrite: { request, context in
                do {
                    return try await responder.chain(to: request, context: context)
                } catch {
                    // What Hummingbird answers for an error the middleware did not answer.
                    return Response(status: .internalServerError)
                }
            },
            startWrite: { request, body, context, deliver in
                responder.writeWithoutWaiting(request, body: body, context: context, deliver: deliver)
            },
            answerStream: { request, context in
                do {
                    // (The chain in a task that ends with the answer: the body is written
                    // by another, which never holds these frames.)
                    return try await responder.chain(to: request, context: context)
                } catch {
                    return Response(status: .internalServerError)
                }
            },
            answer: { request, context in responder.answerWithoutWaiting(request, context: context) })
    }

    func handlerAdded(context: ChannelHandlerContext) {
        taskGate = ConnectionTaskGate.of(context.channel)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard !writeInFlight else {
            waiting.append(.part(part))
            return
        }
        process(part, context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !writeInFlight else {
            waiting.append(.error(error))
            return
        }
        taskGate?.open()
        context.fireErrorCaught(error)
    }

    private func process(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            // While the client is not reading its answers (the channel is not writable), the
            // request goes to Hummingbird, whose writer waits and whose input buffer then
            // stops reading: answers here would pile up without bound.
            guard handedOn == 0, !quiescing, context.channel.isWritable else {
                handOn(head, context: context)
                return
            }
            if InlineAnswerHandler.mayAnswer(head) {
                held = head
            } else if answerWrite != nil, InlineAnswerHandler.mayReadWrite(head) {
                // (The body's memory is taken as it comes, not for the length declared.)
                writeHead = head
                writeBody = ByteBuffer()
            } else {
                handOn(head, context: context)
            }
        case .body(var buffer):
            if let head = held {
                held = nil
                handOn(head, context: context)
            } else if writeHead != nil {
                guard writeBody.readableBytes + buffer.readableBytes > InlineAnswerHandler.maxWriteBodyBytes else {
                    if writeBody.readableBytes == 0 { writeBody = buffer } else { writeBody.writeBuffer(&buffer) }
                    return
                }
                // Longer than it said, or no length given: Hummingbird reads the rest.
                handOnWrite(context: context)
            }
            context.fireChannelRead(wrapInboundOut(.body(buffer)))
        case .end:
            if let head = writeHead {
                writeHead = nil
                startWrite(head, context: context)
                return
            }
            guard let head = held else {
                context.fireChannelRead(wrapInboundOut(part))
                return
            }
            held = nil
            // (On plain HTTP/1.1, where Hummingbird's connection task waits at the gate: with
            // TLS or HTTP/2 that task runs anyway, and a stream stays in it.)
            if answerStream != nil, taskGate != nil, InlineAnswerHandler.wantsStream(head) {
                startStream(head, context: context)
                return
            }
            guard let response = respond(to: head, context: context) else {
                handOn(head, context: context)
                context.fireChannelRead(wrapInboundOut(part))
                return
            }
            write(response, context: context)
        }
    }

    func read(context: ChannelHandlerContext) {
        // (During a stream too: NIO reads the end of the client's input even when no read is
        // asked, so the stream still learns that its client went.)
        if writeInFlight {
            readDeferred = true
        } else {
            context.read()
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), handedOn > 0 { handedOn -= 1 }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Hummingbird ends the connection when it hears that the client's input ended or that
        // the server shuts down (when idle): during a write, it hears it after the answer.
        guard !writeInFlight else {
            waiting.append(.event(event))
            // The server stops: a stream ends now (its pump ends on cancellation, as it does
            // on the server's graceful shutdown in Hummingbird's task).
            if event is ChannelShouldQuiesceEvent { stopStreaming() }
            return
        }
        if event is ChannelShouldQuiesceEvent { quiesce(context: context) }
        taskGate?.open()
        context.fireUserInboundEventTriggered(event)
    }

    /// From now on every request is handed on. A request whose end has not come yet is
    /// Hummingbird's from now: it then counts it as under way and answers it before closing.
    private func quiesce(context: ChannelHandlerContext) {
        quiescing = true
        if let head = held {
            held = nil
            handOn(head, context: context)
        }
        if writeHead != nil { handOnWrite(context: context) }
    }

    /// A request that may be answered here: one that cannot carry a body Hearth reads, and
    /// that neither ends nor changes the connection.
    static func mayAnswer(_ head: HTTPRequest) -> Bool {
        (head.method == .get || head.method == .options) && keepsConnection(head.headerFields)
    }

    /// A write that may be read here (and answered without Hummingbird): `PUT`, `POST`, `PATCH` or
    /// `DELETE` of data (`<path>.json`; not the reserved `/.…` endpoints such as rules and
    /// long polls), with a declared body no longer than ``maxWriteBodyBytes`` or none
    /// declared (then handed on if it grows longer), not compressed, no `Upgrade` or
    /// `Expect`, `Connection` not `close`, no method override and no `Accept:
    /// text/event-stream` (a POST overridden to a streaming GET would never end).
    static func mayReadWrite(_ head: HTTPRequest) -> Bool {
        switch head.method {
        case .post, .put, .patch, .delete: break
        default: return false
        }
        // (`contains` and bytes: the fields' subscript joins values, and `String` compares
        // characters; written plainly, this check cost 2.4% of a durable POST.)
        let fields = head.headerFields
        guard keepsConnection(fields), !fields.contains(.expect),
            !fields.contains(.contentEncoding), !fields.contains(ResponseFactory.methodOverrideHeader),
            !fields.contains(.accept) || !StreamRequestHandler.wantsStream(fields),
            let target = head.path, isDataPathWithoutOverride(target.utf8)
        else { return false }
        if fields.contains(.contentLength) {
            guard let length = fields[.contentLength].flatMap({ Int($0) }), length >= 0, length <= maxWriteBodyBytes
            else { return false }
        }
        return true
    }

    /// `<path>.json`, not under `/.`, with no `x-http-method-override` in its query.
    static func isDataPathWithoutOverride(_ target: String.UTF8View) -> Bool {
        let question = target.firstIndex(of: UInt8(ascii: "?")) ?? target.endIndex
        let path = target[..<question]
        guard path.count >= 6, path.starts(with: "/.".utf8) == false, path.reversed().starts(with: "nosj.".utf8)
        else { return false }
        guard question != target.endIndex else { return true }
        let query = target[question...]
        // Case-insensitively: a query that names the override goes to Hummingbird.
        let needle = Array("x-http-method-override".utf8)
        let bytes = Array(query)
        guard bytes.count >= needle.count else { return true }
        for start in 0...(bytes.count - needle.count) {
            var matches = true
            for offset in 0..<needle.count where bytes[start + offset] | 0x20 != needle[offset] | 0x20 {
                matches = false
                break
            }
            if matches { return false }
        }
        return true
    }

    /// No `Upgrade` header, and no `Connection` header or one that neither closes nor
    /// upgrades the connection (`keep-alive`, which many clients send).
    static func keepsConnection(_ fields: HTTPFields) -> Bool {
        guard !fields.contains(.upgrade) else { return false }
        guard fields.contains(.connection), let connection = fields[.connection]?.lowercased() else { return true }
        return !connection.contains("close") && !connection.contains("upgrade")
    }

    private func handOn(_ head: HTTPRequest, context: ChannelHandlerContext) {
        handedOn += 1
        taskGate?.open()
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    /// Hands the write being read on to Hummingbird, with what has come of its body.
    private func handOnWrite(context: ChannelHandlerContext) {
        guard let head = writeHead else { return }
        writeHead = nil
        handOn(head, context: context)
        if writeBody.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(.body(writeBody))) }
        writeBody = ByteBuffer()
    }

    private func requestContext(_ context: ChannelHandlerContext) -> HearthRequestContext {
        var logger = self.logger
        logger[metadataKey: "hb.request.id"] = .string(RequestIdentifier.next())
        return HearthRequestContext(source: .init(channel: context.channel, logger: logger))
    }

    private func respond(to head: HTTPRequest, context: ChannelHandlerContext) -> BufferedResponse? {
        answer(Request(head: head, body: HummingbirdCore.RequestBody(buffer: ByteBuffer())), requestContext(context))
    }

    /// Answers a write without Hummingbird's per-connection task and its async-channel bridge.
    /// Until it is answered, reading stops and what came meanwhile waits.
    ///
    /// A write by an anonymous or admin caller is applied here, on the event loop, and its
    /// answer is made here when the log's flusher says it is durable: no task at all. Other
    /// writes (a credential to verify) run the middleware and responder in a task of their own.
    ///
    /// That task runs on the global pool, not on this event loop: preferring the loop, the
    /// streams' fan-out (actor work the write starts) ran on the event loops too, and a stream
    /// of the same location fell more than its outbox behind (`test_stalled_reader_…` resynced
    /// its healthy reader in 4 of 5 runs; 0 of 6 on the pool).
    private func startWrite(_ head: HTTPRequest, context: ChannelHandlerContext) {
        guard let answerWrite else { return }
        writeInFlight = true
        let body = writeBody
        writeBody = ByteBuffer()
        let request = Request(head: head, body: HummingbirdCore.RequestBody(buffer: body))
        let requestContext = requestContext(context)
        let loop = context.eventLoop
        let loopBound = NIOLoopBound((self, context), eventLoop: loop)
        let deliver: @Sendable (@escaping MiddlewareStackResponder.AnswerMaker) -> Void = { makeAnswer in
            loop.execute {
                let (handler, context) = loopBound.value
                handler.finishWrite(makeAnswer(), context: context)
            }
        }
        if let startWriteWithoutTask, startWriteWithoutTask(request, body, requestContext, deliver) { return }
        Task {
            let answer = await BufferedResponse(collecting: await answerWrite(request, requestContext))
            deliver { answer }
        }
    }

    private func finishWrite(_ answer: BufferedResponse, context: ChannelHandlerContext) {
        writeInFlight = false
        guard context.channel.isActive else {
            waiting.removeAll()
            return
        }
        write(answer, context: context)
        resume(context: context)
    }

    /// Takes what came while a write or a stream was under way, in its order (shutdown after
    /// the requests before it), and reads again.
    private func resume(context: ChannelHandlerContext) {
        while !writeInFlight, let next = waiting.popFirst() {
            switch next {
            case .part(let part): process(part, context: context)
            case .event(let event): userInboundEventTriggered(context: context, event: event)
            case .error(let error): errorCaught(context: context, error: error)
            }
        }
        if readDeferred && !writeInFlight {
            readDeferred = false
            context.read()
        }
    }

    // MARK: Event streams

    /// `GET` with `Accept: text/event-stream`.
    static func wantsStream(_ head: HTTPRequest) -> Bool {
        head.method == .get && StreamRequestHandler.wantsStream(head.headerFields)
    }

    /// Answers an event stream: the middleware and the responder make the answer in a task
    /// that ends with it; its head is written here, and its body by a second task, through
    /// ``ChannelResponseBodyWriter``, for as long as the stream lasts. Until it ends, what
    /// comes meanwhile waits, as during a write.
    ///
    /// Why: handed on, a stream held Hummingbird's connection task, whose frames (its
    /// request loop, the application's responder, the WebSocket upgrade's wait) stayed with
    /// the stream. And a task keeps its deepest frames until it ends: the second task never
    /// held the responder's (Docs/PERFORMANCE.md, "Connections without a task").
    private func startStream(_ head: HTTPRequest, context: ChannelHandlerContext) {
        guard let answerStream else { return }
        writeInFlight = true
        streamEnded = false
        let request = Request(head: head, body: HummingbirdCore.RequestBody(buffer: ByteBuffer()))
        let requestContext = requestContext(context)
        let target = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        streamTask = Task {
            let response = await answerStream(request, requestContext)
            target.eventLoop.execute {
                let (handler, context) = target.value
                handler.writeStream(response, context: context)
            }
        }
    }

    /// Writes the head of a stream's answer, and starts the task that writes its body.
    private func writeStream(_ response: Response, context: ChannelHandlerContext) {
        var head = response.head
        if let length = response.body.contentLength, !head.headerFields.contains(.contentLength) {
            head.headerFields.append(HTTPField(name: .contentLength, value: String(length)))
        }
        // (Whether the channel is still writable is the body's first write's to find out.)
        _ = writeStreamPart(.head(head), context: context)
        let target = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let body = response.body
        streamWritable.store(context.channel.isWritable)
        let task = Task { [streamWritable] in
            var body = body
            var failed = false
            do {
                try await body.write(ChannelResponseBodyWriter(target: target, writable: streamWritable))
            } catch {
                // The client went away, or the body failed part way: the connection closes.
                failed = true
            }
            target.eventLoop.execute {
                let (handler, context) = target.value
                handler.finishStream(failed: failed, context: context)
            }
        }
        streamTask = task
        if stopStream { task.cancel() }
    }

    /// The server stops: the stream's pump ends (as `shutdown`: cancelled, it ends its outbox
    /// so) once it asks for the next frame; a write waiting for a slow client goes on at once.
    /// Sticky: a stream that starts later (pipelined behind) is stopped as soon as it starts.
    private func stopStreaming() {
        stopStream = true
        streamTask?.cancel()
        if let waiter = writableAgain {
            writableAgain = nil
            waiter.succeed()
        }
    }

    /// What a write of a stream's part found.
    enum StreamWrite {
        /// Written; the channel takes more.
        case written
        /// Written; the next write waits for this (the client reads slowly): it completes
        /// once the channel is writable again, and fails if the channel closes (or the server
        /// stops meanwhile).
        case wait(EventLoopFuture<Void>)
        /// Not written: the channel is closed, or the answer has ended.
        case closed
    }

    /// Writes a part of a stream's answer, on the event loop.
    func writeStreamPart(_ part: HTTPResponsePart, context: ChannelHandlerContext) -> StreamWrite {
        guard context.channel.isActive, !streamEnded else {
            streamWritable.store(false)
            return .closed
        }
        switch part {
        case .head(var head):
            head.headerFields.append(date.now())
            head.headerFields.append(serverField)
            context.writeAndFlush(wrapOutboundOut(.head(head)), promise: nil)
        case .body, .end:
            if case .end = part { streamEnded = true }
            context.writeAndFlush(wrapOutboundOut(part), promise: nil)
        }
        streamWritable.store(context.channel.isWritable)
        guard !context.channel.isWritable, !streamEnded, !stopStream else { return .written }
        // (A write handed over without waiting may have found it full already.)
        if let waiter = writableAgain { return .wait(waiter.futureResult) }
        let promise = context.eventLoop.makePromise(of: Void.self)
        writableAgain = promise
        return .wait(promise.futureResult)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        streamWritable.store(context.channel.isWritable)
        if context.channel.isWritable, let waiter = writableAgain {
            writableAgain = nil
            waiter.succeed()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        streamWritable.store(false)
        failStreamWaiter()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failStreamWaiter()
    }

    private func failStreamWaiter() {
        guard let waiter = writableAgain else { return }
        writableAgain = nil
        waiter.fail(ChannelError.ioOnClosedChannel)
    }

    /// The stream's task is done: the connection goes on with what came meanwhile, or closes
    /// if the answer did not reach its end.
    private func finishStream(failed: Bool, context: ChannelHandlerContext) {
        streamTask = nil
        writeInFlight = false
        guard !failed, streamEnded, context.channel.isActive else {
            waiting.removeAll()
            context.close(promise: nil)
            return
        }
        resume(context: context)
    }

    /// Writes the answer as Hummingbird would: `Content-Length`, `Date` and `Server` added.
    private func write(_ answer: BufferedResponse, context: ChannelHandlerContext) {
        var headers = answer.headers
        // (`append`: the subscript's setter validates and searches.)
        if !headers.contains(.contentLength) {
            headers.append(HTTPField(name: .contentLength, value: String(answer.body?.readableBytes ?? 0)))
        }
        headers.append(date.now())
        headers.append(serverField)
        context.write(wrapOutboundOut(.head(HTTPResponse(status: answer.status, headerFields: headers))), promise: nil)
        if let body = answer.body, body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(body)), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

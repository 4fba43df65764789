import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Answers, on the connection's event loop and without a Swift task, the requests that need
/// no waiting: `/.health`, preflights, refusals, and JSON reads by an anonymous or admin
/// caller (see ``HearthResponder/answerWithoutWaiting(_:context:)``). Everything else passes
/// on to Hummingbird, which answers it in a task as before.
///
/// Why: creating and scheduling a task per request cost as much as NIO's whole HTTP/1 work
/// (Docs/PERFORMANCE.md, "The lean HTTP layer"). The answer is the same either way: the same
/// routing, rules, middleware and headers (`Date` and `Server` as Hummingbird sets them).
///
/// Sits after ``ConnectionGuardHandler`` on every HTTP/1 connection and HTTP/2 stream. Only
/// `GET` and `OPTIONS` without a body, `Connection: close` or `Upgrade` are considered. Order
/// is kept for pipelined HTTP/1 requests: while a request handed to Hummingbird has not been
/// answered, the requests after it are handed on too. So are requests that come while the
/// channel is not writable (the client is not reading): Hummingbird's writer waits for it,
/// and its input buffer then stops reading. After the server starts shutting down, every
/// request is handed on, so that Hummingbird closes the connection as it does.
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

    private let answer: Answerer
    private let logger: Logger
    private let serverField: HTTPField
    /// A request head held until its end shows that it has no body.
    private var held: HTTPRequest?
    /// Requests handed on whose answer has not ended.
    private var handedOn = 0
    private var quiescing = false
    private var date = HTTPDate()

    init(serverName: String, logger: Logger, answer: @escaping Answerer) {
        serverField = HTTPField(name: .server, value: serverName)
        self.logger = logger
        self.answer = answer
    }

    /// The handler for a server: answers with `responder`'s middleware stack.
    convenience init(responder: MiddlewareStackResponder, serverName: String, logger: Logger) {
        self.init(serverName: serverName, logger: logger) { request, context in
            responder.answerWithoutWaiting(request, context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            // While the client is not reading its answers (the channel is not writable), the
            // request goes to Hummingbird, whose writer waits and whose input buffer then
            // stops reading: answers here would pile up without bound.
            if handedOn == 0, !quiescing, context.channel.isWritable, InlineAnswerHandler.mayAnswer(head) {
                held = head
            } else {
                handOn(head, context: context)
            }
        case .body:
            if let head = held {
                held = nil
                handOn(head, context: context)
            }
            context.fireChannelRead(data)
        case .end:
            guard let head = held else {
                context.fireChannelRead(data)
                return
            }
            held = nil
            guard let response = respond(to: head, context: context) else {
                handOn(head, context: context)
                context.fireChannelRead(data)
                return
            }
            write(response, context: context)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), handedOn > 0 { handedOn -= 1 }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            quiescing = true
            // A request whose end has not come yet is Hummingbird's from now: it then counts it
            // as under way and answers it before closing.
            if let head = held {
                held = nil
                handOn(head, context: context)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// A request that may be answered here: one that cannot carry a body Hearth reads, and
    /// that neither ends nor changes the connection.
    static func mayAnswer(_ head: HTTPRequest) -> Bool {
        (head.method == .get || head.method == .options)
            && head.headerFields[.connection] == nil && head.headerFields[.upgrade] == nil
    }

    private func handOn(_ head: HTTPRequest, context: ChannelHandlerContext) {
        handedOn += 1
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    private func respond(to head: HTTPRequest, context: ChannelHandlerContext) -> BufferedResponse? {
        var logger = self.logger
        logger[metadataKey: "hb.request.id"] = .string(RequestIdentifier.next())
        let requestContext = HearthRequestContext(source: .init(channel: context.channel, logger: logger))
        return answer(Request(head: head, body: HummingbirdCore.RequestBody(buffer: ByteBuffer())), requestContext)
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

/// The `Date` header (RFC 9110's IMF-fixdate), worked out once a second.
struct HTTPDate {
    private var second = -1
    private var field = HTTPField(name: .date, value: "")

    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// The field for the current time, for example `Date: Mon, 07 Dec 2026 17:46:55 GMT`.
    mutating func now() -> HTTPField {
        var now = time(nil)
        if now != second {
            second = now
            field = HTTPField(name: .date, value: HTTPDate.format(&now))
        }
        return field
    }

    static func format(_ seconds: inout time_t) -> String {
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}

import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP/1.1 request to another node and its whole answer, over a connection of its own
/// (forwarded writes; see ``WriteForwarder``).
enum ForwardingClient {
    struct Answer: Sendable {
        let head: HTTPResponseHead
        let body: ByteBuffer
    }

    enum Failure: Error, CustomStringConvertible {
        /// No connection: nothing was sent.
        case unreachable(String)
        /// The request was sent, perhaps in part, and no whole answer came back.
        case noAnswer(String)

        var description: String {
            switch self {
            case .unreachable(let reason): "cannot connect: \(reason)"
            case .noAnswer(let reason): "no answer: \(reason)"
            }
        }
    }

    static let connectTimeout = TimeAmount.seconds(1)
    /// As long as a lease: a holder paused longer has lost its lease by then.
    static let answerTimeout = TimeAmount.seconds(10)

    static func send(to target: ForwardTarget, head: HTTPRequestHead, body: ByteBuffer) async throws -> Answer {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let answer = loop.makePromise(of: Answer.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(connectTimeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(AnswerCollector(answer: answer))
                    }
                }
                .connect(host: target.host, port: target.port).get()
        } catch {
            answer.fail(Failure.unreachable("\(error)"))
            throw Failure.unreachable("\(error)")
        }
        let timer = loop.scheduleTask(in: answerTimeout) {
            answer.fail(Failure.noAnswer("none within \(answerTimeout.nanoseconds / 1_000_000_000) s"))
            channel.close(promise: nil)
        }
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        do {
            return try await answer.futureResult.get()
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure.noAnswer("\(error)")
        }
    }

    /// Collects the response's head and body; fails the answer if the connection ends first.
    final class AnswerCollector: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        let answer: EventLoopPromise<Answer>
        var head: HTTPResponseHead?
        var body = ByteBuffer()
        var done = false

        init(answer: EventLoopPromise<Answer>) {
            self.answer = answer
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let received):
                head = received
            case .body(var part):
                body.writeBuffer(&part)
            case .end:
                guard let head, !done else { return }
                done = true
                answer.succeed(Answer(head: head, body: body))
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !done {
                done = true
                answer.fail(Failure.noAnswer("the connection closed"))
            }
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            if !done {
                done = true
                answer.fail(Failure.noAnswer("\(error)"))
            }
            context.close(promise: nil)
        }
    }
}

import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTPTypes
import Synchronization

/// Writes the body of an answer made in a task (an event stream's, see
/// ``InlineAnswerHandler``) to the connection, from that task. A write waits only while the
/// channel is not writable (the client reads slowly), so that a stream's outbox, not the
/// channel, holds what the client has not taken yet.
///
/// A stream's pump runs on the event loop (``EventLoopTaskExecutor``): its writes go into
/// the pipeline at once, without a hop or a suspension. A compressed stream's pump runs on
/// the global pool: a write is handed to the event loop without waiting when the channel took
/// the one before, and waits for the loop's word otherwise.
struct ChannelResponseBodyWriter: ResponseBodyWriter {
    let target: NIOLoopBound<(InlineAnswerHandler, ChannelHandlerContext)>
    /// The handler's ``InlineAnswerHandler/streamWritable``.
    let writable: WritableFlag

    mutating func write(_ buffer: ByteBuffer) async throws {
        try await write(part: .body(buffer))
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        try await write(part: .end(trailingHeaders))
    }

    private func write(part: HTTPResponsePart) async throws {
        let loop = target.eventLoop
        if loop.inEventLoop {
            let (handler, context) = target.value
            switch handler.writeStreamPart(part, context: context) {
            case .written: return
            case .wait(let writableAgain): try await writableAgain.get()
            case .closed: throw ChannelError.ioOnClosedChannel
            }
        } else if writable.take() {
            // At most one write is handed over without waiting: the loop sets the flag again
            // if the channel still takes more after it. (A write that finds the channel
            // closed fails the next one.)
            loop.execute { [target] in
                let (handler, context) = target.value
                _ = handler.writeStreamPart(part, context: context)
            }
        } else {
            try await loop.flatSubmit { [target] () -> EventLoopFuture<Void> in
                let (handler, context) = target.value
                switch handler.writeStreamPart(part, context: context) {
                case .written: return loop.makeSucceededVoidFuture()
                case .wait(let writableAgain): return writableAgain
                case .closed: return loop.makeFailedFuture(ChannelError.ioOnClosedChannel)
                }
            }.get()
        }
    }
}

/// Whether a channel took its last write without filling up, for a writer on another thread.
final class WritableFlag: Sendable {
    private let value = Atomic<Bool>(true)

    /// Whether the channel took the last write; false from now until the loop says again.
    func take() -> Bool { value.exchange(false, ordering: .acquiringAndReleasing) }

    func store(_ writable: Bool) { value.store(writable, ordering: .releasing) }
}

import NIOCore
import NIOEmbedded
import Testing

@testable import HearthServer

/// Flushes are passed on once at the end of the event loop's round, and before a close.
@Suite("Flush coalescing")
struct FlushCoalescingHandlerTests {
    /// Counts the flushes that reach the socket end of the pipeline.
    final class FlushCounter: ChannelOutboundHandler {
        typealias OutboundIn = NIOAny
        var flushes = 0

        func flush(context: ChannelHandlerContext) {
            flushes += 1
            context.flush()
        }
    }

    func channel() throws -> (EmbeddedChannel, FlushCounter) {
        let counter = FlushCounter()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHandler(FlushCoalescingHandler())
        return (channel, counter)
    }

    @Test func writesFlushedOneByOneLeaveInOneFlush() throws {
        let (channel, counter) = try channel()
        for text in ["a", "b", "c"] {
            channel.write(ByteBuffer(string: text), promise: nil)
            channel.flush()
        }
        #expect(counter.flushes == 0, "put off until the round's tasks have run")
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        channel.embeddedEventLoop.run()
        #expect(counter.flushes == 1)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "a"))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "b"))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "c"))
        channel.write(ByteBuffer(string: "d"), promise: nil)
        channel.flush()
        channel.embeddedEventLoop.run()
        #expect(counter.flushes == 2, "the next round flushes again")
        _ = try channel.finish()
    }

    @Test func aCloseFlushesWhatWasWrittenFirst() throws {
        let (channel, counter) = try channel()
        channel.write(ByteBuffer(string: "431 Request Header Fields Too Large"), promise: nil)
        channel.flush()
        channel.close(promise: nil)
        #expect(counter.flushes == 1)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "431 Request Header Fields Too Large"))
        channel.embeddedEventLoop.run()
        #expect(counter.flushes == 1, "the put-off flush does not run again")
    }
}

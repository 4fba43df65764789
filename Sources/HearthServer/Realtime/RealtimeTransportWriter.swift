import HearthCore
import NIOCore
import NIOWebSocket
import WSCore

/// Where a realtime connection's writer sends the outbox: a WebSocket, or long polls.
protocol RealtimeTransportWriter: Sendable {
    /// Sends `messages`, in order; returns when the transport can take more.
    func write(_ messages: [ByteBuffer]) async throws
    /// Sends the final message, if any, and closes.
    func end(with finalMessage: ByteBuffer?, reason: RealtimeOutbox.EndReason?) async
}

/// Messages as WebSocket text frames; a message longer than a slice as a count frame and
/// numbered slices.
struct WebSocketTransportWriter: RealtimeTransportWriter {
    let outbound: WebSocketOutboundWriter

    func write(_ messages: [ByteBuffer]) async throws {
        for message in messages { try await send(message) }
    }

    func end(with finalMessage: ByteBuffer?, reason: RealtimeOutbox.EndReason?) async {
        if let finalMessage { try? await send(finalMessage) }
        if reason == .protocolError {
            try? await outbound.close(.protocolError, reason: "malformed message")
        }
    }

    func send(_ message: ByteBuffer) async throws {
        guard message.readableBytes > WireFrames.sliceSize else {
            try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: .text, data: message)))
            return
        }
        for slice in WireFrames.split(Array(message.readableBytesView)) {
            try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: slice))))
        }
    }
}

/// Messages as the answers to long polls (long polling has its own segments, no slices).
struct LongPollTransportWriter: RealtimeTransportWriter {
    let transport: LongPollTransport

    func write(_ messages: [ByteBuffer]) async throws {
        await transport.deliver(messages)
    }

    func end(with finalMessage: ByteBuffer?, reason: RealtimeOutbox.EndReason?) async {
        transport.close(after: finalMessage.map { [$0] } ?? [])
    }
}

import HTTPTypes
import Hummingbird
import NIOCore

/// A whole answer held in memory: status, headers and body bytes. Every answer that is not
/// a stream is built as one, so that it can be written without suspending
/// (``InlineAnswerHandler``) or handed to Hummingbird as a ``Response``.
struct BufferedResponse: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    /// Nil for an answer without a body (`204`, `302`, `304`).
    var body: ByteBuffer?

    init(status: HTTPResponse.Status, headers: HTTPFields, body: ByteBuffer? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The same answer as Hummingbird's response.
    var response: Response {
        Response(status: status, headers: headers, body: body.map { ResponseBody(byteBuffer: $0) } ?? ResponseBody())
    }

    /// The answer `response` gives, its body read into memory (a write's answer is small).
    /// A body that fails to be made is a 500, as Hummingbird would end it.
    init(collecting response: Response) async {
        let collector = BodyCollector()
        do {
            try await response.body.write(collector)
            self.init(status: response.status, headers: response.headers, body: collector.buffer.body)
        } catch {
            self.init(status: .internalServerError, headers: [:])
        }
    }
}

/// Collects a response body's buffers.
private struct BodyCollector: ResponseBodyWriter {
    final class Buffer: @unchecked Sendable {
        var body = ByteBuffer()
    }
    let buffer = Buffer()

    mutating func write(_ buffer: ByteBuffer) async throws {
        var buffer = buffer
        self.buffer.body.writeBuffer(&buffer)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

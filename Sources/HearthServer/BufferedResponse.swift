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
}

import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTPTypes

/// Requests in and answers out of a test channel that carries `HTTPRequestPart`s and
/// `HTTPResponsePart`s (the inline handler's tests).
extension NIOAsyncTestingChannel {
    /// A `POST` of `body` as JSON, its length declared.
    func writePost(_ path: String, body: String, headers: HTTPFields = [:]) async throws {
        var fields = headers
        fields[.contentType] = "application/json"
        fields[.contentLength] = String(body.utf8.count)
        try await writeInbound(
            HTTPRequestPart.head(HTTPRequest(method: .post, scheme: "http", authority: "x", path: path, headerFields: fields)))
        try await writeInbound(HTTPRequestPart.body(ByteBuffer(string: body)))
        try await writeInbound(HTTPRequestPart.end(nil))
    }

    /// The next whole answer written: its status and body.
    func nextAnswer() async throws -> (Int, String) {
        var status = 0
        var body = ""
        while true {
            switch try await waitForOutboundWrite(as: HTTPResponsePart.self) {
            case .head(let head): status = head.status.code
            case .body(let buffer): body += String(buffer: buffer)
            case .end: return (status, body)
            }
        }
    }
}

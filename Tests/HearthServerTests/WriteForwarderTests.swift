import HTTPTypes
import HearthStorage
import Hummingbird
import Logging
import NIOCore
import Testing

@testable import HearthServer

/// What a forwarded write carries to the namespace's lease holder.
@Suite("Write forwarding")
struct WriteForwarderTests {
    func forwarder(_ header: ForwardedHeader) -> WriteForwarder {
        WriteForwarder(
            storage: StorageEngine(directory: nil), maxBodyBytes: 1 << 20, forwardedHeader: header, metrics: ServerMetrics(),
            logger: Logger(label: "test"))
    }

    func request(_ fields: HTTPFields) -> Request {
        Request(
            head: HTTPRequest(method: .post, scheme: "http", authority: "plant.example.com", path: "/items.json?print=silent",
                              headerFields: fields),
            body: .init(buffer: ByteBuffer()))
    }

    @Test func theHeadKeepsTheRequestAndAddsTheClientAndTheMark() throws {
        var fields = HTTPFields()
        fields[.authorization] = "Bearer token"
        fields[.contentType] = "application/json"
        fields[.connection] = "keep-alive"
        fields[.contentLength] = "999"
        fields[HTTPField.Name("X-Forwarded-For")!] = "198.51.100.7"
        let head = forwarder(.xForwardedFor).head(
            of: request(fields), bodyBytes: 12, client: ClientAddress(IPAddress("192.0.2.1")))
        #expect(head.method == .POST && head.uri == "/items.json?print=silent")
        #expect(head.headers["Authorization"] == ["Bearer token"] && head.headers["Host"] == ["plant.example.com"])
        #expect(head.headers["Content-Length"] == ["12"], "the body's own length")
        #expect(head.headers["Connection"].isEmpty, "no hop-by-hop header")
        #expect(head.headers["X-Forwarded-For"] == ["198.51.100.7, 192.0.2.1"], "the client this node saw, last")
        #expect(head.headers[WriteForwarder.forwardedHeader.rawName] == ["1"])
    }

    @Test func rfc7239ForwardedIsExtendedWhenThatIsTheHeaderBelieved() throws {
        let head = forwarder(.forwarded).head(of: request(HTTPFields()), bodyBytes: 0, client: ClientAddress(IPAddress("2001:db8::1")))
        #expect(head.headers["Forwarded"] == ["for=\"[2001:db8::1]\""])
        #expect(head.headers["X-Forwarded-For"].isEmpty)
        let unknown = forwarder(.xForwardedFor).head(of: request(HTTPFields()), bodyBytes: 0, client: ClientAddress(nil))
        #expect(unknown.headers["X-Forwarded-For"].isEmpty, "nothing to add for a client not known")
    }
}

import Foundation
import Logging
import NIOCore
import Synchronization
import Testing

@testable import HearthServer

@Suite("Compressed request bodies and JSON logs")
struct RequestBodyTests {
    /// gzip-compresses `bytes` with the server's own response compressor.
    static func gzip(_ bytes: [UInt8]) throws -> ByteBuffer {
        let stream = try GzipStream()
        var output = try stream.deflate(ByteBuffer(bytes: bytes), flush: .none)
        var tail = try stream.deflate(ByteBuffer(), flush: .finish)
        output.writeBuffer(&tail)
        return output
    }

    @Test("a gzip body inflates to the original bytes")
    func roundTrip() throws {
        let original = Array(#"{"device":"imp-1","readings":[1,2,3]}"#.utf8) + Array(repeating: UInt8(ascii: " "), count: 100_000)
        let inflated = try RequestBody.inflate(try Self.gzip(original), limit: original.count)
        #expect(Array(inflated.readableBytesView) == original)
    }

    @Test("inflating stops at the limit, one byte short of the whole")
    func limit() throws {
        let original = Array(repeating: UInt8(ascii: "a"), count: 200_000)
        #expect(throws: ServiceError.self) { try RequestBody.inflate(try Self.gzip(original), limit: original.count - 1) }
        do {
            _ = try RequestBody.inflate(try Self.gzip(original), limit: 1000)
            Issue.record("no error")
        } catch let failure as ServiceError {
            #expect(failure.status == .contentTooLarge)
        }
    }

    @Test("truncated, corrupt and padded streams are refused with 400")
    func damaged() throws {
        let whole = try Self.gzip(Array("{\"a\":1}".utf8))
        let bytes = Array(whole.readableBytesView)
        for damaged in [Array(bytes.dropLast(6)), Array(bytes.prefix(4)) + Array("garbage".utf8), bytes + Array("junk".utf8)] {
            do {
                _ = try RequestBody.inflate(ByteBuffer(bytes: damaged), limit: 1 << 20)
                Issue.record("accepted \(damaged)")
            } catch let failure as ServiceError {
                #expect(failure.status == .badRequest)
            }
        }
    }

    @Test("a JSON log line is one valid object with the message and the metadata")
    func jsonLogLine() throws {
        let lines = Mutex<[[UInt8]]>([])
        var handler = JSONLogHandler(label: "hearth") { line in lines.withLock { $0.append(line) } }
        handler[metadataKey: "hb.request.id"] = "abc123"
        let logger = Logger(label: "hearth", factory: { _ in handler })
        logger.info("a \"quoted\"\nmessage", metadata: ["path": "/x"])
        let written = lines.withLock { $0 }
        #expect(written.count == 1)
        #expect(written[0].last == UInt8(ascii: "\n"))
        #expect(written[0].dropLast().contains(UInt8(ascii: "\n")) == false)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(written[0])) as? [String: String])
        #expect(object["message"] == "a \"quoted\"\nmessage")
        #expect(object["level"] == "info")
        #expect(object["hb.request.id"] == "abc123")
        #expect(object["path"] == "/x")
        #expect(object["time"]?.isEmpty == false)
    }
}

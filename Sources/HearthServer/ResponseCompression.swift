import HearthStorage
import HTTPTypes
import Hummingbird
import NIOCore

/// gzip for responses, when the client accepts it: JSON, CSV and event streams alike. A
/// stream is flushed at every write, so each server-sent event reaches the client at once.
enum ResponseCompression {
    /// Bodies known to be smaller than this are sent as they are.
    static let minimumBytes = 1024

    /// The encoding to answer with: gzip if `Accept-Encoding` accepts it (and does not refuse
    /// it with `q=0`), else deflate if accepted, else none.
    static func preferredEncoding(_ header: String?) -> ContentCoding? {
        guard let header else { return nil }
        var accepted: Set<String> = []
        var refused: Set<String> = []
        for part in header.split(separator: ",") {
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let name = pieces.first else { continue }
            let weight = pieces.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            if weight == 0 { refused.insert(name) } else { accepted.insert(name) }
        }
        for coding in [ContentCoding.gzip, .deflate] where !refused.contains(coding.rawValue) {
            if accepted.contains(coding.rawValue) || (accepted.contains("*") && !refused.contains("*")) { return coding }
        }
        return nil
    }

    /// The coding to compress an answer with, nil when it is not worth it (small, empty, or
    /// compressed already) or the client does not accept one. Marks `headers` compressed.
    static func coding(
        for status: HTTPResponse.Status, headers: inout HTTPFields, contentLength: Int?, acceptEncoding: String?
    ) -> ContentCoding? {
        guard let coding = preferredEncoding(acceptEncoding), headers[.contentEncoding] == nil,
            status != .noContent, status != .notModified
        else { return nil }
        if let contentLength, contentLength < minimumBytes { return nil }
        headers[.contentEncoding] = coding.rawValue
        headers[.contentLength] = nil
        let vary = headers[.vary]
        headers[.vary] = vary.map { $0 + ", Accept-Encoding" } ?? "Accept-Encoding"
        return coding
    }

    /// Compresses `answer` in place if it is worth it and not compressed already. If
    /// compression fails (zlib out of memory), the answer is left as it was.
    static func apply(to answer: inout BufferedResponse, acceptEncoding: String?) {
        guard let body = answer.body else { return }
        var headers = answer.headers
        guard let coding = coding(for: answer.status, headers: &headers, contentLength: body.readableBytes,
            acceptEncoding: acceptEncoding),
            let compressed = try? GzipStream(coding: coding).deflate(body, flush: .finish)
        else { return }
        answer.headers = headers
        answer.body = compressed
    }

    /// Compresses `response` in place if it is worth it and not compressed already.
    static func apply(to response: inout Response, acceptEncoding: String?) {
        guard let coding = coding(for: response.status, headers: &response.headers, contentLength: response.body.contentLength,
            acceptEncoding: acceptEncoding)
        else { return }
        let original = response.body
        response.body = ResponseBody { writer in
            try await original.write(GzipWriter(parent: writer, stream: try GzipStream(coding: coding)))
        }
    }
}

/// The response codings Hearth produces.
enum ContentCoding: String {
    /// RFC 1952 (gzip wrapper).
    case gzip
    /// RFC 1950 (the zlib wrapper), which is what HTTP's "deflate" means.
    case deflate
}

/// A response body writer that gzips what passes through it.
struct GzipWriter: ResponseBodyWriter {
    var parent: any ResponseBodyWriter
    let stream: GzipStream

    mutating func write(_ buffer: ByteBuffer) async throws {
        let compressed = try stream.deflate(buffer, flush: .sync)
        if compressed.readableBytes > 0 { try await parent.write(compressed) }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        let tail = try stream.deflate(ByteBuffer(), flush: .finish)
        if tail.readableBytes > 0 { try await parent.write(tail) }
        try await parent.finish(trailingHeaders)
    }
}

/// One deflate stream over byte buffers, in gzip or zlib format.
struct GzipStream: Sendable {
    let zlib: ZlibStream

    init(coding: ContentCoding = .gzip) throws {
        zlib = try ZlibStream(deflating: coding == .gzip ? .gzip : .zlib)
    }

    /// Compresses `input`, ending with a sync flush (or the end of the stream).
    func deflate(_ input: ByteBuffer, flush: ZlibStream.Flush) throws -> ByteBuffer {
        var output = ByteBufferAllocator().buffer(capacity: max(64, input.readableBytes / 2 + 64))
        try input.withUnsafeReadableBytes { source in
            var offset = 0
            while true {
                var room = 0
                let written = try output.writeWithUnsafeMutableBytes(minimumWritableBytes: 16 * 1024) { target in
                    room = target.count
                    let step = try zlib.step(UnsafeRawBufferPointer(rebasing: source[offset...]), into: target, flush: flush)
                    offset += step.consumed
                    return step.produced
                }
                // Done once every byte went in and zlib left room in the output (all flushed).
                if offset == source.count && written < room { break }
            }
        }
        return output
    }
}

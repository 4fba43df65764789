import HearthStorage
import HTTPTypes
import Hummingbird
import NIOCore

/// Reads request bodies with a size cap, inflating `Content-Encoding: gzip` or `deflate`
/// (webhook senders and gateways that compress) under the same cap on the inflated size, so a
/// small compressed "bomb" cannot make the server allocate more than a plain body could.
enum RequestBody {
    /// The body, decoded; at most `limit` bytes, compressed or not.
    static func read(_ request: Request, limit: Int) async throws -> ByteBuffer {
        let encoding = request.headers[.contentEncoding]?.trimmingCharacters(in: .whitespaces).lowercased() ?? "identity"
        switch encoding {
        case "identity", "":
            return try await collect(request, limit: limit)
        case "gzip", "x-gzip", "deflate":
            return try inflate(try await collect(request, limit: limit), limit: limit)
        default:
            throw ServiceError(.unsupportedEncoding, "Unsupported Content-Encoding \"\(encoding)\": send the body as it is, or gzip or deflate it.")
        }
    }

    /// A body longer than `limit` bytes (as sent).
    static func exceeded(_ limit: Int) -> ServiceError {
        ServiceError(.tooLarge, "Payload too large: the request body exceeds \(limit) bytes.")
    }

    /// The raw body. A body that stops arriving (the client went away, or was cut off for
    /// stalling; over HTTP/1 or HTTP/2) is a 400 nobody will read, not a server error.
    static func collect(_ request: Request, limit: Int) async throws -> ByteBuffer {
        do {
            return try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw exceeded(limit)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw BodyEndedEarly()
        }
    }

    /// Inflates a gzip or zlib stream (told apart by its header), failing with 413 as soon as
    /// the output would pass `limit`.
    static func inflate(_ input: ByteBuffer, limit: Int) throws -> ByteBuffer {
        guard let zlib = try? ZlibStream(inflating: .zlibOrGzip) else {
            throw ServiceError(.internalError, "Internal server error: zlib could not start.")
        }
        let damaged = ServiceError(.invalidRequest, "Invalid data; the body could not be decompressed (Content-Encoding).")
        var output = ByteBufferAllocator().buffer(capacity: min(limit, max(1024, input.readableBytes * 4)))
        try input.withUnsafeReadableBytes { source in
            var offset = 0
            var finished = false
            while !finished {
                let room = limit - output.readableBytes
                guard room > 0 else { throw tooLarge(limit) }
                let chunk = min(room, 64 * 1024)
                var step: ZlibStream.Step?
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: chunk) { target in
                    step = try? zlib.step(
                        UnsafeRawBufferPointer(rebasing: source[offset...]),
                        into: UnsafeMutableRawBufferPointer(rebasing: target[..<chunk]), flush: .none)
                    return step?.produced ?? 0
                }
                guard let step else { throw damaged }
                offset += step.consumed
                if step.ended {
                    finished = true
                } else if step.stalled {
                    guard offset == source.count else { throw damaged }
                    throw ServiceError(.invalidRequest, "Invalid data; the compressed body ends early.")
                }
            }
            guard offset == source.count else {
                throw ServiceError(.invalidRequest, "Invalid data; bytes follow the end of the compressed body.")
            }
        }
        return output
    }

    static func tooLarge(_ limit: Int) -> ServiceError {
        ServiceError(.tooLarge, "Payload too large: the request body exceeds \(limit) bytes once decompressed.")
    }
}

import CZlib

/// zlib (the system library), the one wrapper of it: whole-buffer compression for snapshots,
/// and ``ZlibStream`` for compressing responses and inflating request bodies step by step.
public enum Zlib {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    static func compress(_ input: [UInt8], level: Int32 = 6) throws -> [UInt8] {
        var bound = compressBound(uLong(input.count))
        var output = [UInt8](repeating: 0, count: Int(bound))
        let status = output.withUnsafeMutableBufferPointer { out in
            input.withUnsafeBufferPointer { source in
                compress2(out.baseAddress, &bound, source.baseAddress, uLong(input.count), level)
            }
        }
        guard status == Z_OK else { throw Failure(description: "zlib compress failed (\(status))") }
        output.removeLast(output.count - Int(bound))
        return output
    }

    /// Decompresses into exactly `expectedLength` bytes; anything else is an error.
    static func decompress(_ input: UnsafeRawBufferPointer, expectedLength: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: max(expectedLength, 1))
        var length = uLong(expectedLength)
        let status = output.withUnsafeMutableBufferPointer { out in
            uncompress(out.baseAddress, &length, input.baseAddress?.assumingMemoryBound(to: Bytef.self), uLong(input.count))
        }
        guard status == Z_OK, Int(length) == expectedLength else {
            throw Failure(description: "zlib data is damaged (status \(status), \(length) of \(expectedLength) bytes)")
        }
        if expectedLength == 0 { return [] }
        return output
    }
}

/// One zlib stream, compressing or decompressing in steps over buffers the caller owns (so a
/// caller can stop as soon as its output passes a limit).
public final class ZlibStream: @unchecked Sendable {
    /// The wrapper around the deflate data.
    public enum Format: Sendable {
        /// RFC 1950, what HTTP calls `deflate`.
        case zlib
        /// RFC 1952.
        case gzip
        /// Inflating only: either of the two, told apart by the header.
        case zlibOrGzip

        var windowBits: Int32 {
            switch self {
            case .zlib: 15
            case .gzip: 15 + 16
            case .zlibOrGzip: 15 + 32
            }
        }
    }

    /// How much a deflate step flushes.
    public enum Flush: Sendable {
        /// Whatever zlib likes (inflating).
        case none
        /// Everything so far, so the receiver can decode it now (a streamed response).
        case sync
        /// Everything, and the end of the stream.
        case finish

        var value: Int32 {
            switch self {
            case .none: Z_NO_FLUSH
            case .sync: Z_SYNC_FLUSH
            case .finish: Z_FINISH
            }
        }
    }

    /// What one step did.
    public struct Step: Sendable {
        /// Input bytes used.
        public var consumed: Int
        /// Output bytes written.
        public var produced: Int
        /// The compressed stream ended (inflating: its last byte was read).
        public var ended: Bool
        /// No progress was possible: the input ran out (inflating: the stream is cut short).
        public var stalled: Bool
    }

    private var stream = z_stream()
    private let inflating: Bool

    /// A compressor at `level` (1-9).
    public init(deflating format: Format, level: Int32 = 6) throws {
        inflating = false
        let status = deflateInit2_(
            &stream, level, Z_DEFLATED, format.windowBits, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw Zlib.Failure(description: "zlib deflateInit2 failed (\(status))") }
    }

    /// A decompressor.
    public init(inflating format: Format) throws {
        inflating = true
        let status = inflateInit2_(&stream, format.windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw Zlib.Failure(description: "zlib inflateInit2 failed (\(status))") }
    }

    deinit {
        if inflating { inflateEnd(&stream) } else { deflateEnd(&stream) }
    }

    /// Runs zlib once over `input` into `output`. Throws for damaged input (inflating) or a
    /// zlib failure.
    public func step(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, flush: Flush) throws -> Step {
        // zlib never writes through next_in; the type just lacks `const`.
        stream.next_in = input.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self)) }
        stream.avail_in = uInt(input.count)
        stream.next_out = output.baseAddress?.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = uInt(output.count)
        let status = inflating ? inflate(&stream, flush.value) : deflate(&stream, flush.value)
        let step = Step(
            consumed: input.count - Int(stream.avail_in), produced: output.count - Int(stream.avail_out),
            ended: status == Z_STREAM_END, stalled: status == Z_BUF_ERROR)
        guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
            throw Zlib.Failure(description: "zlib \(inflating ? "inflate" : "deflate") failed (\(status))")
        }
        return step
    }
}

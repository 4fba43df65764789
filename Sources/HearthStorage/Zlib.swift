import CZlib

/// zlib compression for snapshots (the system library).
enum Zlib {
    struct Failure: Error, CustomStringConvertible {
        let description: String
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

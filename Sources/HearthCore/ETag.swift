/// Firebase ETags: an opaque content hash of the data at a location.
///
/// Hearth uses the base64 SHA-1 of the data's export serialisation (so a priority change also
/// changes the ETag). A location with no data has the ETag `null_etag`, as Firebase documents.
public enum ETag {
    /// The ETag of a location holding no data.
    public static let null = "null_etag"

    /// The ETag of `node`.
    public static func of(_ node: Node) -> String {
        if node.isNull { return null }
        var writer = JSONWriter(options: JSONWriter.Options(export: true))
        writer.writeValue(node)
        let digest = writer.output.withBytes { SHA1.hash($0) }
        return Base64.encode(digest)
    }
}

/// Standard base64 with padding.
public enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var output = [UInt8]()
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            for shift in [18, 12, 6, 0] { output.append(alphabet[Int(value >> UInt32(shift) & 63)]) }
            index += 3
        }
        let rest = bytes.count - index
        if rest > 0 {
            var value = UInt32(bytes[index]) << 16
            if rest == 2 { value |= UInt32(bytes[index + 1]) << 8 }
            output.append(alphabet[Int(value >> 18 & 63)])
            output.append(alphabet[Int(value >> 12 & 63)])
            output.append(rest == 2 ? alphabet[Int(value >> 6 & 63)] : UInt8(ascii: "="))
            output.append(UInt8(ascii: "="))
        }
        return String(decoding: output, as: UTF8.self)
    }
}

/// SHA-1 (FIPS 180-4), used only as a content fingerprint for ETags.
public enum SHA1 {
    public static func hash(_ message: UnsafeRawBufferPointer) -> [UInt8] {
        var h: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0)
        var block = [UInt8](repeating: 0, count: 64)
        var words = [UInt32](repeating: 0, count: 80)
        let length = message.count
        let totalBlocks = (length + 8) / 64 + 1
        for blockIndex in 0..<totalBlocks {
            for i in 0..<64 {
                let offset = blockIndex * 64 + i
                if offset < length {
                    block[i] = message[offset]
                } else if offset == length {
                    block[i] = 0x80
                } else {
                    block[i] = 0
                }
            }
            if blockIndex == totalBlocks - 1 {
                let bits = UInt64(length) * 8
                for i in 0..<8 { block[56 + i] = UInt8(truncatingIfNeeded: bits >> UInt64(56 - 8 * i)) }
            }
            for t in 0..<16 {
                words[t] = UInt32(block[4 * t]) << 24 | UInt32(block[4 * t + 1]) << 16
                    | UInt32(block[4 * t + 2]) << 8 | UInt32(block[4 * t + 3])
            }
            for t in 16..<80 {
                let x = words[t - 3] ^ words[t - 8] ^ words[t - 14] ^ words[t - 16]
                words[t] = x << 1 | x >> 31
            }
            var (a, b, c, d, e) = h
            for t in 0..<80 {
                let f: UInt32
                let k: UInt32
                switch t {
                case 0..<20: f = (b & c) | (~b & d); k = 0x5A82_7999
                case 20..<40: f = b ^ c ^ d; k = 0x6ED9_EBA1
                case 40..<60: f = (b & c) | (b & d) | (c & d); k = 0x8F1B_BCDC
                default: f = b ^ c ^ d; k = 0xCA62_C1D6
                }
                let temp = (a << 5 | a >> 27) &+ f &+ e &+ k &+ words[t]
                e = d
                d = c
                c = b << 30 | b >> 2
                b = a
                a = temp
            }
            h = (h.0 &+ a, h.1 &+ b, h.2 &+ c, h.3 &+ d, h.4 &+ e)
        }
        var digest = [UInt8]()
        for word in [h.0, h.1, h.2, h.3, h.4] {
            digest.append(contentsOf: [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: word >> UInt32($0)) })
        }
        return digest
    }
}

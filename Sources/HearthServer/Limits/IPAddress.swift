#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address. IPv4 addresses are held as IPv4-mapped IPv6 (`::ffff:a.b.c.d`),
/// so `192.0.2.1` and `::ffff:192.0.2.1` (how a dual-stack socket shows an IPv4 peer) are the
/// same address.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// The 128 bits, most significant first.
    let high: UInt64
    let low: UInt64

    /// Parses `192.0.2.1`, `2001:db8::1` or `::ffff:192.0.2.1`; nil for anything else
    /// (host names, ports, brackets, zone ids).
    public init?(_ text: some StringProtocol) {
        let text = String(text)
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            high = 0
            low = 0xFFFF_0000_0000 | UInt64(UInt32(bigEndian: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        var words: (UInt64, UInt64) = (0, 0)
        withUnsafeBytes(of: &v6) { bytes in
            for index in 0..<8 { words.0 = words.0 << 8 | UInt64(bytes[index]) }
            for index in 8..<16 { words.1 = words.1 << 8 | UInt64(bytes[index]) }
        }
        (high, low) = words
    }

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// True for IPv4 addresses (and IPv4-mapped IPv6 ones).
    public var isIPv4: Bool { high == 0 && low >> 32 == 0xFFFF }

    /// The address with all but the first `bits` bits cleared (bits counted over 128; an
    /// IPv4 prefix of n bits is 96 + n).
    func masked(to bits: Int) -> IPAddress {
        func mask(_ bits: Int) -> UInt64 { bits <= 0 ? 0 : bits >= 64 ? .max : ~(UInt64.max >> UInt64(bits)) }
        return IPAddress(high: high & mask(bits), low: low & mask(bits - 64))
    }

    /// The conventional text: dotted quad for IPv4, RFC 5952 for IPv6.
    public var description: String {
        if isIPv4 {
            let v4 = UInt32(truncatingIfNeeded: low)
            return "\(v4 >> 24).\(v4 >> 16 & 0xFF).\(v4 >> 8 & 0xFF).\(v4 & 0xFF)"
        }
        var v6 = in6_addr()
        withUnsafeMutableBytes(of: &v6) { bytes in
            for index in 0..<8 { bytes[index] = UInt8(truncatingIfNeeded: high >> UInt64(56 - 8 * index)) }
            for index in 0..<8 { bytes[8 + index] = UInt8(truncatingIfNeeded: low >> UInt64(56 - 8 * index)) }
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &v6, &text, socklen_t(text.count)) != nil else { return "?" }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A range of addresses written `192.0.2.0/24`, `2001:db8::/32`, or a single address.
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    let base: IPAddress
    /// Prefix length over 128 bits (IPv4 ranges are stored as IPv4-mapped: 96 + n).
    let bits: Int
    public let description: String

    /// Parses `address` or `address/prefix`; nil if it is neither.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return nil }
        let limit = address.isIPv4 ? 32 : 128
        var prefix = limit
        if parts.count == 2 {
            guard let given = Int(parts[1]), (0...limit).contains(given) else { return nil }
            prefix = given
        }
        bits = address.isIPv4 ? 96 + prefix : prefix
        base = address.masked(to: bits)
        description = text
    }

    /// True if `address` lies in this range.
    public func contains(_ address: IPAddress) -> Bool {
        address.masked(to: bits) == base
    }
}

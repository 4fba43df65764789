import HTTPTypes
import Hummingbird

/// The address a request came from, as limits and logs see it: the connection's peer, or the
/// client a trusted proxy names (see ``ClientAddressResolver``).
public struct ClientAddress: Sendable, CustomStringConvertible {
    /// Nil when the peer is not known (requests made in process, in tests).
    public let address: IPAddress?

    public init(_ address: IPAddress?) {
        self.address = address
    }

    /// The address as text, or `unknown`.
    public var description: String { address?.description ?? "unknown" }

    /// What per-client limits count by: the address for IPv4, its /64 network for IPv6 (one
    /// host usually holds a whole /64, and could otherwise take a new address per request).
    public var limitKey: String {
        guard let address else { return "unknown" }
        return address.isIPv4 ? address.description : address.masked(to: 64).description + "/64"
    }
}

/// The header in which trusted proxies name the client.
public enum ForwardedHeader: String, Sendable, CaseIterable {
    /// `X-Forwarded-For: client, proxy1, proxy2` (Caddy, nginx, most load balancers).
    case xForwardedFor = "x-forwarded-for"
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    case forwarded
}

/// Works out who sent a request. Forwarding headers are believed only from listed proxies:
/// anyone else could write any address into them.
///
/// When the peer is a trusted proxy, the header's hops are read from the right (the hop the
/// proxy itself added) to the left, skipping trusted proxies; the first untrusted address is
/// the client. A hop that is not an address (`unknown`, an obfuscated name, garbage) stops the
/// walk at the last address known, so such clients share that proxy's limits.
public struct ClientAddressResolver: Sendable {
    /// Proxies whose forwarding header is believed.
    public var trustedProxies: [IPNetwork]
    /// The one header they use; the other is ignored, so a client cannot slip an address
    /// past a proxy that does not know that header.
    public var header: ForwardedHeader

    public init(trustedProxies: [IPNetwork] = [], header: ForwardedHeader = .xForwardedFor) {
        self.trustedProxies = trustedProxies
        self.header = header
    }

    /// The client behind a request whose connection comes from `peer` (an IP address as
    /// text, as NIO gives it).
    public func client(peer: String?, headers: HTTPFields) -> ClientAddress {
        guard let peer = peer.flatMap({ IPAddress($0) }) else { return ClientAddress(nil) }
        guard isTrusted(peer) else { return ClientAddress(peer) }
        var client = peer
        for hop in hops(in: headers).reversed() {
            guard let hop else { break }
            client = hop
            if !isTrusted(hop) { break }
        }
        return ClientAddress(client)
    }

    /// The client behind `request`, from its connection's peer and its headers.
    func client(of request: Request, context: some RemoteAddressRequestContext) -> ClientAddress {
        client(peer: context.remoteAddress?.ipAddress, headers: request.headers)
    }

    func isTrusted(_ address: IPAddress) -> Bool {
        trustedProxies.contains { $0.contains(address) }
    }

    /// The hops the header lists, left to right; nil for a hop that is not an address.
    func hops(in headers: HTTPFields) -> [IPAddress?] {
        switch header {
        case .xForwardedFor:
            return headers[values: ClientAddressResolver.xForwardedFor]
                .flatMap { $0.split(separator: ",") }
                .map { ClientAddressResolver.node($0) }
        case .forwarded:
            return headers[values: ClientAddressResolver.forwarded]
                .flatMap { $0.split(separator: ",") }
                .map { element in
                    // `for=192.0.2.1;proto=https;by=...`: the `for` parameter, maybe quoted.
                    for pair in element.split(separator: ";") {
                        let parts = pair.split(separator: "=", maxSplits: 1)
                        guard parts.count == 2, parts[0].trimmingSpaces.lowercased() == "for" else { continue }
                        var value = parts[1].trimmingSpaces
                        if value.count >= 2, value.first == "\"", value.last == "\"" {
                            value = value.dropFirst().dropLast()
                        }
                        return ClientAddressResolver.node(value)
                    }
                    return nil
                }
        }
    }

    /// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
    /// `[2001:db8::1]` or `[2001:db8::1]:4711`.
    static func node(_ text: Substring) -> IPAddress? {
        let text = text.trimmingSpaces
        if text.first == "[" {
            guard let close = text.firstIndex(of: "]") else { return nil }
            return IPAddress(text[text.index(after: text.startIndex)..<close])
        }
        if let address = IPAddress(text) { return address }
        // An IPv4 address with a port has exactly one colon.
        if let colon = text.firstIndex(of: ":"), text[text.index(after: colon)...].allSatisfy(\.isNumber) {
            return IPAddress(text[..<colon])
        }
        return nil
    }

    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
    static let forwarded = HTTPField.Name("Forwarded")!
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    var trimmingSpaces: Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return text
    }
}

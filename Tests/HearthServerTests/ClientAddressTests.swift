import HTTPTypes
import HearthServer
import Testing

@testable import HearthServer

@Suite("Client addresses and trusted proxies")
struct ClientAddressTests {
    @Test func parsesAndPrintsAddresses() throws {
        #expect(IPAddress("192.0.2.1")?.description == "192.0.2.1")
        #expect(IPAddress("192.0.2.1")?.isIPv4 == true)
        #expect(IPAddress("::ffff:192.0.2.1") == IPAddress("192.0.2.1"))
        #expect(IPAddress("2001:DB8:0:0:0:0:0:1")?.description == "2001:db8::1")
        #expect(IPAddress("::1")?.isIPv4 == false)
        for bad in ["", "192.0.2", "192.0.2.1:80", "[::1]", "host.example", "2001:db8::1%eth0", "256.0.0.1"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
    }

    @Test func networksContainTheirAddresses() throws {
        let v4 = try #require(IPNetwork("10.0.0.0/8"))
        #expect(v4.contains(try #require(IPAddress("10.255.1.2"))))
        #expect(!v4.contains(try #require(IPAddress("11.0.0.1"))))
        // An IPv4 range never holds an IPv6 address that happens to share bits.
        #expect(!v4.contains(try #require(IPAddress("a00::1"))))
        let single = try #require(IPNetwork("192.0.2.7"))
        #expect(single.contains(try #require(IPAddress("192.0.2.7"))))
        #expect(!single.contains(try #require(IPAddress("192.0.2.8"))))
        let v6 = try #require(IPNetwork("2001:db8::/32"))
        #expect(v6.contains(try #require(IPAddress("2001:db8:ffff::1"))))
        #expect(!v6.contains(try #require(IPAddress("2001:db9::1"))))
        #expect(try #require(IPNetwork("0.0.0.0/0")).contains(try #require(IPAddress("203.0.113.9"))))
        #expect(try #require(IPNetwork("10.1.2.3/16")).contains(try #require(IPAddress("10.1.200.1"))))
        for bad in ["10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "::/129", "nonsense/8", "10.0.0.0/8/8"] {
            #expect(IPNetwork(bad) == nil, "\(bad)")
        }
    }

    static func headers(_ pairs: [(String, String)]) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in pairs { fields.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
        return fields
    }

    @Test func forwardingHeadersAreIgnoredFromUntrustedPeers() {
        let resolver = ClientAddressResolver(trustedProxies: [IPNetwork("127.0.0.1")!])
        let spoofed = ClientAddressTests.headers([("X-Forwarded-For", "198.51.100.1")])
        #expect(resolver.client(peer: "203.0.113.5", headers: spoofed).description == "203.0.113.5")
        #expect(ClientAddressResolver().client(peer: "127.0.0.1", headers: spoofed).description == "127.0.0.1")
        #expect(resolver.client(peer: nil, headers: spoofed).description == "unknown")
    }

    @Test func aTrustedProxyNamesTheClient() {
        let resolver = ClientAddressResolver(trustedProxies: [IPNetwork("127.0.0.1")!, IPNetwork("10.0.0.0/8")!])
        func client(_ value: String) -> String {
            resolver.client(peer: "127.0.0.1", headers: ClientAddressTests.headers([("X-Forwarded-For", value)])).description
        }
        #expect(client("198.51.100.1") == "198.51.100.1")
        // What the client wrote itself comes first; the proxies' own hops are read from the right.
        #expect(client("1.2.3.4, 198.51.100.1") == "198.51.100.1")
        #expect(client("1.2.3.4, 198.51.100.1, 10.0.0.2") == "198.51.100.1")
        #expect(client("198.51.100.1:4711") == "198.51.100.1")
        #expect(client("[2001:db8::5]:4711") == "2001:db8::5")
        // Every hop trusted: the first one.
        #expect(client("10.0.0.3, 10.0.0.2") == "10.0.0.3")
        // A hop that is no address stops the walk at the last known one.
        #expect(client("198.51.100.1, garbage") == "127.0.0.1")
        #expect(client("198.51.100.1, garbage, 10.0.0.2") == "10.0.0.2")
        // No header: the proxy itself.
        #expect(resolver.client(peer: "127.0.0.1", headers: [:]).description == "127.0.0.1")
        // Several header lines are one list, in order.
        let split = ClientAddressTests.headers([("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-For", "198.51.100.9")])
        #expect(resolver.client(peer: "127.0.0.1", headers: split).description == "198.51.100.9")
    }

    @Test func theForwardedHeader() {
        let resolver = ClientAddressResolver(trustedProxies: [IPNetwork("127.0.0.1")!], header: .forwarded)
        func client(_ pairs: [(String, String)]) -> String {
            resolver.client(peer: "127.0.0.1", headers: ClientAddressTests.headers(pairs)).description
        }
        #expect(client([("Forwarded", "for=198.51.100.1")]) == "198.51.100.1")
        #expect(client([("Forwarded", #"for="[2001:db8:cafe::17]:4711";proto=https"#)]) == "2001:db8:cafe::17")
        #expect(client([("Forwarded", "for=1.2.3.4, proto=http;For=198.51.100.2;by=127.0.0.1")]) == "198.51.100.2")
        #expect(client([("Forwarded", "for=unknown")]) == "127.0.0.1")
        #expect(client([("Forwarded", "for=_hidden, for=198.51.100.3")]) == "198.51.100.3")
        // The header not chosen is not believed, whoever sends it.
        #expect(client([("X-Forwarded-For", "198.51.100.1")]) == "127.0.0.1")
        let xff = ClientAddressResolver(trustedProxies: [IPNetwork("127.0.0.1")!])
        #expect(xff.client(peer: "127.0.0.1", headers: ClientAddressTests.headers([("Forwarded", "for=198.51.100.1")])).description
            == "127.0.0.1")
    }

    @Test func limitsCountIPv6ClientsByTheirSlash64() {
        #expect(ClientAddress(IPAddress("2001:db8:1:2:aaaa::1")).limitKey == ClientAddress(IPAddress("2001:db8:1:2:bbbb::9")).limitKey)
        #expect(ClientAddress(IPAddress("2001:db8:1:2::1")).limitKey != ClientAddress(IPAddress("2001:db8:1:3::1")).limitKey)
        #expect(ClientAddress(IPAddress("192.0.2.1")).limitKey == "192.0.2.1")
        #expect(ClientAddress(IPAddress("192.0.2.1")).limitKey != ClientAddress(IPAddress("192.0.2.2")).limitKey)
    }

    @Test func listenAddresses() {
        #expect(ListenAddress("127.0.0.1:9091") == ListenAddress(host: "127.0.0.1", port: 9091))
        #expect(ListenAddress("[::1]:9091") == ListenAddress(host: "::1", port: 9091))
        #expect(ListenAddress(host: "::1", port: 9091).description == "[::1]:9091")
        for bad in ["127.0.0.1", ":9091", "127.0.0.1:70000", "127.0.0.1:x"] {
            #expect(ListenAddress(bad) == nil, "\(bad)")
        }
    }
}

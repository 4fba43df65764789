import Testing

@testable import HearthServer

/// The addresses nodes forward writes to (`advertise-url`).
@Suite("Forward targets")
struct ForwardTargetTests {
    @Test func httpURLsWithAPortAreTargets() throws {
        let target = try #require(ForwardTarget("http://10.0.0.7:9001"))
        #expect(target.host == "10.0.0.7" && target.port == 9001)
        #expect(ForwardTarget("http://node-2.internal:9002/") == ForwardTarget(host: "node-2.internal", port: 9002))
        #expect(ForwardTarget("http://[::1]:9003")?.host == "::1")
    }

    @Test func anythingElseIsNot() {
        for text in ["https://10.0.0.7:9001", "http://10.0.0.7", "http://10.0.0.7:0", "http://10.0.0.7:70000",
                     "http://10.0.0.7:9001/x", "http://10.0.0.7:9001?a=b", "http://u@10.0.0.7:9001", "10.0.0.7:9001", ""] {
            #expect(ForwardTarget(text) == nil, "\(text)")
        }
    }
}

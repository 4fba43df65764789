import HearthCore
import HearthServer
import HearthTestSupport
import Testing

@Suite("Bad input is refused and changes nothing")
struct BadInputTests {
    static let original = #"{"keep":{"me":1}}"#

    /// Runs `attempt`, expects `status` and a Firebase error body, and checks nothing changed.
    func expectRefused(
        status: Int = 400, message: String? = nil, sourceLocation: SourceLocation = #_sourceLocation,
        _ attempt: @escaping @Sendable (HearthTestClient) async throws -> HTTPResult
    ) async throws {
        try await withTestServer(configuration: .openForTests(maxBodyBytes: 1024)) { client in
            _ = try await client.put("/.json", Self.original)
            let response = try await attempt(client)
            #expect(response.status == status, "\(response.body)", sourceLocation: sourceLocation)
            #expect(response.body.hasPrefix("{\n  \"error\" : \""), sourceLocation: sourceLocation)
            #expect(response.body.hasSuffix("\"\n}\n"), sourceLocation: sourceLocation)
            if let message { #expect(response.node?.child("error") == .string(message), sourceLocation: sourceLocation) }
            #expect(try await client.get("/.json").body == #"{"keep":{"me":1}}"#, sourceLocation: sourceLocation)
        }
    }

    @Test("malformed JSON", arguments: ["", "{", "{\"a\":}", "[1,,2]", "NaN", "{\"a\":Infinity}", "'x'", "{\"a\":1}}", "undefined"])
    func malformedJSON(body: String) async throws {
        try await expectRefused(message: body.isEmpty || body == "{" ? "Invalid data; couldn't parse JSON object, array, or value." : nil) {
            try await $0.put("/keep.json", body)
        }
        try await expectRefused { try await $0.post("/keep.json", body) }
        try await expectRefused { try await $0.patch("/keep.json", body) }
    }

    @Test("invalid keys in data", arguments: ["a.b", "a$", "a#", "a[", "a]", "a/b", ""])
    func invalidKeys(key: String) async throws {
        try await expectRefused { try await $0.put("/keep.json", "{\"ok\":1,\"\(key)\":1}") }
        try await expectRefused { try await $0.post("/keep.json", "{\"\(key)\":1}") }
    }

    @Test("invalid paths", arguments: ["/a.b.json", "/a$b.json", "/a%23.json", "/a%5B.json", "/x/%2F/y.json", "/%00.json"])
    func invalidPaths(path: String) async throws {
        try await expectRefused(message: "Invalid path: Invalid token in path") { try await $0.put(path, "1") }
        try await expectRefused(message: "Invalid path: Invalid token in path") { try await $0.get(path) }
    }

    @Test func tooDeep() async throws {
        let deepPath = String(repeating: "/a", count: 33) + ".json"
        try await expectRefused { try await $0.put(deepPath, "1") }
        let nested = String(repeating: "{\"a\":", count: 32) + "1" + String(repeating: "}", count: 32)
        try await expectRefused { try await $0.put("/keep.json", nested) }
        try await expectRefused { try await $0.patch("/keep.json", "{\"x\":\(nested)}") }
    }

    @Test func keyTooLong() async throws {
        let key = String(repeating: "k", count: 769)
        try await expectRefused { try await $0.patch("/keep.json", "{\"\(key)\":1}") }
    }

    @Test func oversizedBody() async throws {
        let big = "\"" + String(repeating: "x", count: 4096) + "\""
        try await expectRefused(status: 413) { try await $0.put("/keep.json", big) }
    }

    @Test func unknownParameter() async throws {
        try await expectRefused(message: "The request does not support the query parameter \"cb\".") {
            try await $0.put("/keep.json?cb=1", "2")
        }
    }

    @Test func missingJSONSuffix() async throws {
        try await expectRefused(status: 404) { try await $0.put("/keep", "2") }
    }

    @Test func unsupportedMethod() async throws {
        try await expectRefused(status: 405) { try await $0.request(.head, "/keep.json") }
    }
}

import HearthCore
import HearthServer
import HearthTestSupport
import Testing

/// Defects found in code review, each pinned by a test.
@Suite("Review findings")
struct ReviewFindingTests {
    @Test func incrementsNeverStoreInfinity() async throws {
        try await withTestServer { client async throws in
            _ = try await client.put("/inc.json", "1e308")
            let overflow = try await client.put("/inc.json", #"{".sv":{"increment":1e308}}"#)
            #expect(overflow.status == 400)
            #expect(try await client.get("/inc.json").body == "1e+308")
            _ = try await client.patch("/d.json", #"{"x":{".sv":{"increment":-1.7e308}}}"#)
            #expect(try await client.patch("/d.json", #"{"x":{".sv":{"increment":-1.7e308}}}"#).status == 400)
        }
    }

    @Test("deep special values are refused, not recursed into", arguments: [
        (#"{".value":"#, "}"), (#"{".priority":"#, "}"), (#"{".sv":{"increment":"#, "}}"), ("[", "]"),
    ])
    func deepSpecialValues(open: String, close: String) async throws {
        let body = String(repeating: open, count: 5000) + "1" + String(repeating: close, count: 5000)
        try await withTestServer { client async throws in
            #expect(try await client.put("/d.json", body).status == 400)
            #expect(try await client.patch("/d.json", "{\"a\":\(body)}").status == 400)
            #expect(try await client.get("/d.json").body == "null")
        }
    }

    @Test func priorityAndChildInOneUpdateDoNotDependOnKeyOrder() async throws {
        try await withTestServer { client async throws in
            _ = try await client.patch("/o1.json", #"{"a/.priority":1,"a/b":2}"#)
            _ = try await client.patch("/o2.json", #"{"a/b":2,"a/.priority":1}"#)
            #expect(try await client.get("/o1.json?format=export").body == #"{"a":{"b":2,".priority":1}}"#)
            #expect(try await client.get("/o2.json?format=export").body == #"{"a":{"b":2,".priority":1}}"#)
        }
    }

    @Test func duplicateKeysNeverLeaveAStrayIncrement() async throws {
        try await withTestServer { client async throws in
            #expect(try await client.put("/x.json", #"{"a":{".sv":{"increment":5}},"a":1}"#).status == 400)
            #expect(try await client.put("/x.json", #"{".value":{".sv":{"increment":5}},".value":"s"}"#).status == 400)
            #expect(try await client.get("/x.json").body == "null")
            // Without server values, the last duplicate still wins.
            #expect(try await client.put("/x.json", #"{"a":{"b":1},"a":1}"#).body == #"{"a":1}"#)
        }
    }

    @Test func canonicallyEquivalentKeysAreDifferentKeys() async throws {
        try await withTestServer { client async throws in
            let composed = "\u{E9}"
            let decomposed = "e\u{301}"
            let put = try await client.put("/k.json", "{\"\(composed)\":1,\"\(decomposed)\":2}")
            #expect(put.status == 200)
            #expect(try await client.get("/k.json").node?.children.count == 2)
            #expect(try await client.patch("/k.json", "{\"\(composed)\":3,\"\(decomposed)\":4}").status == 200)
        }
    }

    @Test func aRefusedPriorityPatchCreatesNoNamespace() async throws {
        try await withTestServer { client async throws in
            #expect(try await client.patch("/x.json?ns=fresh", #"{"a/.priority":true}"#).status == 400)
            #expect(try await client.patch("/x.json?ns=fresh", #"{"a/.priority":{".sv":{"increment":3}}}"#).status == 400)
            #expect(try await client.get("/.inspect/databases.json", headers: HearthTestClient.admin).body == "[]")
        }
    }

    @Test func anyDryRunRefusesADataWrite() async throws {
        try await withTestServer { client async throws in
            #expect(try await client.put("/dry.json?dryRun=1", "1").status == 400)
            #expect(try await client.put("/dry.json?dryRun", "1").status == 400)
            #expect(try await client.get("/dry.json").body == "null")
        }
    }

    @Test func longZeroPaddedKeysOrderAsIntegers() {
        let keys = ["a", "5", "0000000000000000000000001"].map { ChildKey($0) }.sorted().map(\.string)
        #expect(keys == ["0000000000000000000000001", "5", "a"])
    }
}

import HearthCore
import HearthServer
import HearthTestSupport
import Testing

@Suite("ETags and conditional requests")
struct ETagTests {
    @Test func getReturnsETagOnlyWhenAsked() async throws {
        try await withTestServer { client in
            _ = try await client.put("/e.json", #"{"a":1}"#)
            #expect(try await client.get("/e.json").header("ETag") == nil)
            let tagged = try await client.get("/e.json", headers: ["X-Firebase-ETag": "true"])
            let etag = try #require(tagged.header("ETag"))
            #expect(etag.utf8.count == 28)
            #expect(try await client.get("/missing.json", headers: ["X-Firebase-ETag": "true"]).header("ETag") == "null_etag")
            _ = try await client.put("/e/a.json", "2")
            #expect(try await client.get("/e.json", headers: ["X-Firebase-ETag": "true"]).header("ETag") != etag)
        }
    }

    @Test func ifMatchOnPut() async throws {
        try await withTestServer { client in
            let created = try await client.put("/e.json", "1", headers: ["if-match": "null_etag"])
            #expect(created.status == 200)
            let etag = try #require(created.header("ETag"))
            let stale = try await client.put("/e.json", "5", headers: ["if-match": "null_etag"])
            #expect(stale.status == 412)
            #expect(stale.body == "1")
            #expect(stale.header("ETag") == etag)
            #expect(try await client.get("/e.json").body == "1")
            let matched = try await client.put("/e.json", "2", headers: ["if-match": etag])
            #expect(matched.status == 200)
            #expect(matched.body == "2")
            #expect(matched.header("ETag") != etag)
        }
    }

    @Test func ifMatchOnDelete() async throws {
        try await withTestServer { client in
            _ = try await client.put("/e.json", "1")
            #expect(try await client.delete("/e.json", headers: ["if-match": "wrong"]).status == 412)
            #expect(try await client.get("/e.json").body == "1")
            let etag = try #require(try await client.get("/e.json", headers: ["X-Firebase-ETag": "true"]).header("ETag"))
            #expect(try await client.delete("/e.json", headers: ["if-match": etag]).status == 200)
            #expect(try await client.get("/e.json").body == "null")
        }
    }

    @Test func ifMatchIsRefusedWhereFirebaseRefusesIt() async throws {
        try await withTestServer { client async throws in
            #expect(try await client.get("/e.json", headers: ["if-match": "x"]).status == 400)
            #expect(try await client.post("/e.json", "1", headers: ["if-match": "x"]).status == 400)
            #expect(try await client.patch("/e.json", #"{"a":1}"#, headers: ["if-match": "x"]).status == 400)
            #expect(try await client.put("/e.json?print=silent", "1", headers: ["if-match": "null_etag"]).status == 400)
            #expect(try await client.patch("/e.json", #"{"a":1}"#, headers: ["X-Firebase-ETag": "true"]).status == 400)
            #expect(try await client.get("/e.json").body == "null")
        }
    }

    @Test func ifNoneMatch() async throws {
        try await withTestServer { client in
            _ = try await client.put("/e.json", #"{"v":1}"#)
            let first = try await client.get("/e.json", headers: ["X-Firebase-ETag": "true"])
            let etag = try #require(first.header("ETag"))
            let unchanged = try await client.get("/e.json", headers: ["if-none-match": etag])
            #expect(unchanged.status == 304)
            #expect(unchanged.body == "")
            _ = try await client.put("/e/v.json", "2")
            let changed = try await client.get("/e.json", headers: ["if-none-match": etag])
            #expect(changed.status == 200)
            #expect(changed.body == #"{"v":2}"#)
            #expect(changed.header("ETag") != nil)
        }
    }
}

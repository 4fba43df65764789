import HearthCore
import HearthServer
import HearthTestSupport
import Testing

@Suite("Edge cases found in review")
struct EdgeCaseTests {
    @Test func emptyPatchKeysAreRefused() async throws {
        try await withTestServer { client async throws in
            _ = try await client.put("/u.json", #"{"a":1}"#)
            #expect(try await client.patch("/u.json", #"{"":1}"#).status == 400)
            #expect(try await client.patch("/u.json", #"{"/":1}"#).status == 400)
            #expect(try await client.get("/u.json").body == #"{"a":1}"#)
        }
    }

    @Test func incrementsAreNotPriorities() async throws {
        try await withTestServer { client async throws in
            let response = try await client.put("/p.json", #"{"a":1,".priority":{".sv":{"increment":1}}}"#)
            #expect(response.status == 400)
            #expect(try await client.get("/p.json").body == "null")
        }
    }

    @Test func ifMatchOnAPriorityComparesThePriority() async throws {
        try await withTestServer { client async throws in
            _ = try await client.put("/pe.json", #"{"a":1,".priority":3}"#)
            let read = try await client.get("/pe/.priority.json", headers: ["X-Firebase-ETag": "true"])
            let etag = try #require(read.header("ETag"))
            #expect(try await client.put("/pe/.priority.json", "4", headers: ["if-match": etag]).status == 200)
            #expect(try await client.get("/pe/.priority.json").body == "4")
            #expect(try await client.put("/pe/.priority.json", "5", headers: ["if-match": etag]).status == 412)
        }
    }

    @Test func dryRunNeverWritesData() async throws {
        try await withTestServer { client async throws in
            #expect(try await client.put("/q.json?dryRun=true", "4").status == 400)
            #expect(try await client.get("/q.json").body == "null")
        }
    }

    @Test func refusedWritesCreateNoNamespace() async throws {
        try await withTestServer { client async throws in
            #expect(try await client.get("/.inspect/databases.json", headers: HearthTestClient.admin).body == "[]")
            #expect(try await client.put("/x.json?ns=failed", "garbage").status == 400)
            #expect(try await client.delete("/x.json?ns=nothing").status == 200)
            #expect(try await client.delete("/x.json?ns=nothing", headers: ["if-match": "stale"]).status == 412)
            #expect(try await client.patch("/x.json?ns=empty", "{}").status == 200)
            #expect(try await client.get("/.inspect/databases.json", headers: HearthTestClient.admin).body == "[]")
            #expect(try await client.put("/x.json?ns=made", "1").status == 200)
            #expect(try await client.get("/.inspect/databases.json", headers: HearthTestClient.admin).body == #"[{"name":"made"}]"#)
        }
    }

    @Test func shallowETagIsTheDataETag() async throws {
        try await withTestServer { client async throws in
            _ = try await client.put("/s.json", #"{"a":{"b":1}}"#)
            let full = try await client.get("/s.json", headers: ["X-Firebase-ETag": "true"])
            let shallow = try await client.get("/s.json?shallow=true", headers: ["X-Firebase-ETag": "true"])
            #expect(full.header("ETag") == shallow.header("ETag"))
        }
    }

    @Test func preflight() async throws {
        try await withTestServer { client async throws in
            let response = try await client.request(.options, "/any/path.json")
            #expect(response.status == 204)
            #expect(response.header("Access-Control-Allow-Origin") == "*")
            #expect(response.header("Content-Type") == nil)
        }
    }
}

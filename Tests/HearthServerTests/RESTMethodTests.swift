import HearthCore
import HearthServer
import HearthTestSupport
import Testing

@Suite("REST methods")
struct RESTMethodTests {
    @Test func putThenGet() async throws {
        try await withTestServer { client in
            let put = try await client.put("/users/jack.json", #"{"name":"Jack","age":31}"#)
            #expect(put.status == 200)
            #expect(put.body == #"{"age":31,"name":"Jack"}"#)
            #expect(put.header("Content-Type") == "application/json; charset=utf-8")
            #expect(try await client.get("/users/jack/name.json").body == #""Jack""#)
            #expect(try await client.get("/users.json").body == #"{"jack":{"age":31,"name":"Jack"}}"#)
            #expect(try await client.get("/.json").body == #"{"users":{"jack":{"age":31,"name":"Jack"}}}"#)
            #expect(try await client.get("/nothing/here.json").body == "null")
            // Trailing slashes and empty segments are ignored.
            #expect(try await client.get("/users//jack/name/.json").body == #""Jack""#)
        }
    }

    @Test func postMakesOrderedPushIDs() async throws {
        try await withTestServer { client in
            var names: [String] = []
            for index in 0..<20 {
                let post = try await client.post("/blessing.json", #"{"n":\#(index)}"#)
                #expect(post.status == 200)
                guard case .string(let name) = post.node?.child("name") else {
                    Issue.record("no name in \(post.body)")
                    return
                }
                #expect(name.utf8.count == 20)
                #expect(post.body == #"{"name":"\#(name)"}"#)
                names.append(name)
            }
            #expect(names == names.sorted())
            let all = try await client.get("/blessing.json").node
            #expect(all?.children.keys.map(\.string) == names)
            #expect(all?.children.map { $0.value.child("n") } == (0..<20).map { Node.int(Int64($0)) })
        }
    }

    @Test func patchUpdatesOnlyNamedChildren() async throws {
        try await withTestServer { client in
            _ = try await client.put("/u.json", #"{"a":{"x":1,"y":2},"b":1,"c":1}"#)
            let patch = try await client.patch("/u.json", #"{"a/x":10,"b":null,"d":{"e":[1,2]}}"#)
            #expect(patch.status == 200)
            #expect(patch.body == #"{"a/x":10,"b":null,"d":{"e":[1,2]}}"#)
            #expect(try await client.get("/u.json").body == #"{"a":{"x":10,"y":2},"c":1,"d":{"e":[1,2]}}"#)
            // A nested object replaces that child entirely.
            _ = try await client.patch("/u.json", #"{"a":{"z":3}}"#)
            #expect(try await client.get("/u/a.json").body == #"{"z":3}"#)
        }
    }

    @Test func patchWithOverlappingPathsIsRefusedWhole() async throws {
        try await withTestServer { client in
            _ = try await client.put("/u.json", #"{"a":1}"#)
            for body in [#"{"a":1,"a/b":2}"#, #"{"x/y":1,"x":2}"#, #"{"a/b":1,"a/b/c":2}"#] {
                let response = try await client.patch("/u.json", body)
                #expect(response.status == 400, "\(body)")
                #expect(response.node?.child("error") != nil)
            }
            #expect(try await client.get("/u.json").body == #"{"a":1}"#)
        }
    }

    @Test func deleteRemovesAndPrunes() async throws {
        try await withTestServer { client in
            _ = try await client.put("/a/b/c.json", "1")
            _ = try await client.put("/z.json", "2")
            let delete = try await client.delete("/a/b/c.json")
            #expect(delete.status == 200)
            #expect(delete.body == "null")
            #expect(try await client.get("/.json").body == #"{"z":2}"#)
            // PUT null and PUT {} delete too.
            _ = try await client.put("/z.json", "null")
            #expect(try await client.get("/.json").body == "null")
            _ = try await client.put("/y.json", "1")
            _ = try await client.put("/y.json", "{}")
            #expect(try await client.get("/y.json").body == "null")
        }
    }

    @Test func methodOverride() async throws {
        try await withTestServer { client in
            let put = try await client.post("/o.json", "5", headers: ["X-HTTP-Method-Override": "PUT"])
            #expect(put.body == "5")
            #expect(try await client.get("/o.json").body == "5")
            let patch = try await client.post("/p.json?x-http-method-override=PATCH", #"{"a":1}"#)
            #expect(patch.body == #"{"a":1}"#)
            let delete = try await client.post("/o.json?x-http-method-override=DELETE", "")
            #expect(delete.body == "null")
            #expect(try await client.get("/o.json").body == "null")
            // Only POST may carry an override.
            let refused = try await client.put("/o.json", "1", headers: ["X-HTTP-Method-Override": "DELETE"])
            #expect(refused.status == 400)
        }
    }

    @Test func serverValues() async throws {
        try await withTestServer { client in
            let before = Int64(Database.systemMilliseconds())
            let put = try await client.put("/t.json", #"{"at":{".sv":"timestamp"},"n":{".sv":{"increment":2}}}"#)
            guard case .int(let at) = put.node?.child("at") else {
                Issue.record("timestamp not resolved: \(put.body)")
                return
            }
            #expect(at >= before && at <= before + 60_000)
            #expect(put.node?.child("n") == .int(2))
            _ = try await client.put("/t/n.json", #"{".sv":{"increment":40}}"#)
            _ = try await client.patch("/t.json", #"{"n":{".sv":{"increment":0.5}}}"#)
            #expect(try await client.get("/t/n.json").body == "42.5")
            let bad = try await client.put("/t.json", #"{".sv":"later"}"#)
            #expect(bad.status == 400)
        }
    }

    @Test func priorities() async throws {
        try await withTestServer { client in
            _ = try await client.put("/p.json", #"{"a":{".value":1,".priority":5},"b":{"x":true,".priority":"s"}}"#)
            #expect(try await client.get("/p.json").body == #"{"a":1,"b":{"x":true}}"#)
            #expect(try await client.get("/p/a/.priority.json").body == "5")
            #expect(try await client.get("/p.json?format=export").body
                == #"{"a":{".value":1,".priority":5},"b":{"x":true,".priority":"s"}}"#)
            _ = try await client.put("/p/b/.priority.json", "7.5")
            #expect(try await client.get("/p/b/.priority.json").body == "7.5")
            _ = try await client.delete("/p/b/.priority.json")
            #expect(try await client.get("/p/b/.priority.json").body == "null")
            _ = try await client.patch("/p.json", #"{"a/.priority":"z"}"#)
            #expect(try await client.get("/p/a/.priority.json").body == #""z""#)
            #expect(try await client.put("/p/a/.priority.json", "true").status == 400)
        }
    }
}

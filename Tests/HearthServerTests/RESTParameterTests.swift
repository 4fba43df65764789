import HearthCore
import HearthServer
import HearthTestSupport
import Testing

@Suite("REST parameters")
struct RESTParameterTests {
    @Test func printPrettyAndSilent() async throws {
        try await withTestServer { client in
            let silent = try await client.put("/a.json?print=silent", #"{"b":[1,2]}"#)
            #expect(silent.status == 204)
            #expect(silent.body == "")
            let pretty = try await client.get("/a.json?print=pretty")
            #expect(pretty.body == "{\n  \"b\" : [ 1, 2 ]\n}\n")
            #expect(try await client.post("/l.json?print=silent", "1").status == 204)
            #expect(try await client.patch("/a.json?print=silent", #"{"c":1}"#).status == 204)
            #expect(try await client.get("/a.json?print=silent").status == 204)
            #expect(try await client.get("/a.json?print=loud").status == 400)
        }
    }

    @Test func shallow() async throws {
        try await withTestServer { client in
            _ = try await client.put("/s.json", #"{"a":{"deep":1},"b":2,"c":"x"}"#)
            #expect(try await client.get("/s.json?shallow=true").body == #"{"a":true,"b":true,"c":true}"#)
            #expect(try await client.get("/s/b.json?shallow=true").body == "2")
            #expect(try await client.get("/none.json?shallow=true").body == "null")
        }
    }

    @Test func downloadAndCallback() async throws {
        try await withTestServer { client in
            _ = try await client.put("/d.json", #"{"a":1}"#)
            let download = try await client.get("/d.json?download=data.json")
            #expect(download.header("Content-Disposition") == #"attachment; filename="data.json""#)
            #expect(download.body == #"{"a":1}"#)
            let jsonp = try await client.get("/d.json?callback=handle.data")
            #expect(jsonp.body == #"handle.data({"a":1});"#)
            #expect(jsonp.header("Content-Type") == "application/javascript; charset=utf-8")
            #expect(try await client.get("/d.json?callback=alert(1)").status == 400)
        }
    }

    @Test func acceptedParameters() async throws {
        try await withTestServer { client async throws in
            for query in [
                "timeout=3ms", "timeout=3s", "timeout=15min", "writeSizeLimit=tiny", "writeSizeLimit=unlimited",
                "disableTriggers=true", "ac=token", "format=strict", "auth_variable_override=%7B%22uid%22%3A%22u%22%7D",
                "ns=default", "auth=\(ServerConfiguration.testAdminToken)", "access_token=\(ServerConfiguration.testAdminToken)",
            ] {
                #expect(try await client.get("/a.json?\(query)").status == 200, "\(query)")
            }
            #expect(try await client.put("/a.json?writeSizeLimit=small&disableTriggers=true", "1").status == 200)
        }
    }

    @Test("refused parameters", arguments: [
        "foo=1", "cachebust=123", "timeout=0s", "timeout=16min", "timeout=10", "timeout=-1ms", "writeSizeLimit=huge",
        "shallow=yes", "format=csv", "callback=", "download=",
    ])
    func refusedParameters(query: String) async throws {
        try await withTestServer { client in
            _ = try await client.put("/a.json", "1")
            let response = try await client.get("/a.json?\(query)")
            #expect(response.status == 400)
            #expect(response.body.hasPrefix("{\n  \"error\" : \""))
            let write = try await client.put("/a.json?\(query)", "2")
            #expect(write.status == 400)
            #expect(try await client.get("/a.json").body == "1")
        }
    }

    @Test func queryParametersOnlyOnReads() async throws {
        try await withTestServer { client in
            _ = try await client.put("/a.json", #"{"x":1,"y":2}"#)
            #expect(try await client.get(#"/a.json?orderBy="$key"&limitToFirst=1"#).body == #"{"x":1}"#)
            let write = try await client.put(#"/a.json?orderBy="$key"&limitToFirst=1"#, "1")
            #expect(write.status == 400)
            #expect(try await client.get("/a.json").body == #"{"x":1,"y":2}"#)
        }
    }
}

import HearthCore
import HearthServer
import HearthTestSupport
import Testing

@Suite("Namespaces")
struct NamespaceTests {
    @Test func namespacesAreIndependent() async throws {
        try await withTestServer { client in
            _ = try await client.put("/x.json?ns=alpha", "1")
            _ = try await client.put("/x.json?ns=beta", "2")
            #expect(try await client.get("/x.json?ns=alpha").body == "1")
            #expect(try await client.get("/x.json?ns=beta").body == "2")
            #expect(try await client.get("/x.json").body == "null")
            #expect(try await client.get("/.inspect/databases.json", headers: HearthTestClient.admin).body == #"[{"name":"alpha"},{"name":"beta"}]"#)
            #expect(try await client.get("/x.json?ns=Not%20Valid").status == 404)
        }
    }

    @Test func namespaceFromHost() {
        #expect(HearthResponder.namespace(fromHost: "mydb.firebaseio.com") == "mydb")
        #expect(HearthResponder.namespace(fromHost: "Shop-1.example.org:9000") == "shop-1")
        #expect(HearthResponder.namespace(fromHost: "localhost:9000") == nil)
        #expect(HearthResponder.namespace(fromHost: "127.0.0.1:9000") == nil)
        #expect(HearthResponder.namespace(fromHost: "example.com") == nil)
        #expect(HearthResponder.namespace(fromHost: "[::1]:9000") == nil)
        #expect(HearthResponder.namespace(fromHost: "10.0.0.12") == nil)
        #expect(HearthResponder.namespace(fromHost: "db.10.0.0.12") == "db")
        #expect(HearthResponder.namespace(fromHost: "7.example.org") == "7")
        #expect(HearthResponder.namespace(fromHost: "a..b") == nil)
        #expect(HearthResponder.namespace(fromHost: "Café.example.org") == "café")
    }

    @Test func health() async throws {
        try await withTestServer { client async throws in
            #expect(try await client.get("/.health").body == #"{"status":"ok"}"#)
            #expect(try await client.get("/.ready").body == #"{"status":"ready"}"#)
        }
    }
}

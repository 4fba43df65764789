import Foundation
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

    /// Reads look namespaces up (some on event loops): they must not wait while another
    /// namespace opens (a recovery, or PostgreSQL queries).
    @Test func lookupsDoNotWaitWhileANamespaceOpens() throws {
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let registry = NamespaceRegistry { name in
            if name == "slow" {
                entered.signal()
                release.wait()
            }
            return Database(name: name)
        }
        _ = try registry.database("fast")
        let opener = Thread { _ = try? registry.database("slow") }
        opener.start()
        entered.wait()
        let lookedUp = DispatchSemaphore(value: 0)
        let looker = Thread {
            _ = registry.existing("fast")
            _ = registry.names
            lookedUp.signal()
        }
        looker.start()
        let answered = lookedUp.wait(timeout: .now() + 5) == .success
        release.signal()
        #expect(answered, "a lookup waited for a namespace to open")
        let deadline = Date().addingTimeInterval(5)
        while registry.existing("slow") == nil && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(registry.names == ["fast", "slow"])
        if !answered { _ = lookedUp.wait(timeout: .now() + 5) }
    }

    @Test func health() async throws {
        try await withTestServer { client async throws in
            #expect(try await client.get("/.health").body == #"{"status":"ok"}"#)
            #expect(try await client.get("/.ready").body == #"{"status":"ready"}"#)
        }
    }
}

import HearthCore
import HearthServer
import HearthTestSupport
import Testing

/// A server whose rules let anyone read and write, with namespace creation as given.
private func withServer<Value: Sendable>(
    createNamespaces: Bool = false, emulator: Bool = false, _ body: @Sendable (HearthTestClient) async throws -> Value
) async throws -> Value {
    var configuration = ServerConfiguration(
        port: 0, emulator: emulator, rules: .allowAll, adminToken: ServerConfiguration.testAdminToken)
    configuration.createNamespaces = createNamespaces
    return try await withTestServer(configuration: configuration, body)
}

private let admin = HearthTestClient.admin

@Suite("Namespace creation and the metrics endpoint")
struct NamespaceCreationTests {
    @Test func onlyTheAdminCreatesNamespaces() async throws {
        try await withServer { client async throws in
            for attempt in [
                try await client.put("/x.json?ns=fresh", "1"), try await client.post("/x.json?ns=fresh", "1"),
                try await client.patch("/x.json?ns=fresh", #"{"a":1}"#), try await client.delete("/x.json?ns=fresh"),
                try await client.get("/x.json?ns=fresh"),
                try await client.get("/x.json?ns=fresh", headers: ["Accept": "text/event-stream"]),
            ] {
                #expect(attempt.status == 404)
                #expect(attempt.body.contains(#"Database not found: there is no database \"fresh\""#))
            }
            #expect(try await client.get("/.inspect/databases.json", headers: admin).body == "[]")
            // The default namespace always exists.
            #expect(try await client.get("/x.json").body == "null")
            #expect(try await client.put("/x.json", "1").status == 200)
            // The admin creates one by writing to it; then anyone the rules allow may use it.
            #expect(try await client.put("/x.json?ns=fresh", "2", headers: admin).status == 200)
            #expect(try await client.put("/y.json?ns=fresh", "3").status == 200)
            #expect(try await client.get("/.json?ns=fresh").body == #"{"x":2,"y":3}"#)
            #expect(try await client.get("/.inspect/databases.json", headers: admin).body == #"[{"name":"default"},{"name":"fresh"}]"#)
        }
    }

    @Test func theSettingOrEmulatorModeLetsAnyoneCreateNamespaces() async throws {
        for (create, emulator) in [(true, false), (false, true)] {
            try await withServer(createNamespaces: create, emulator: emulator) { client async throws in
                #expect(try await client.get("/x.json?ns=other").body == "null")
                #expect(try await client.put("/x.json?ns=other", "1").status == 200)
                #expect(try await client.get("/.inspect/databases.json", headers: admin).body == #"[{"name":"other"}]"#)
            }
        }
    }

    @Test func metricsNeedTheAdminToken() async throws {
        try await withServer { client async throws in
            let anonymous = try await client.get("/.metrics")
            #expect(anonymous.status == 401)
            #expect(anonymous.body.contains("/.metrics needs the admin token"))
            #expect(try await client.get("/.metrics?auth=not-a-token").status == 401)
            let scraped = try await client.get("/.metrics", headers: admin)
            #expect(scraped.status == 200)
            #expect(scraped.body.contains("hearth_http_requests_total"))
        }
        // Only what the rules refuse counts as a rule denial, not a refused token or scrape.
        var configuration = ServerConfiguration(
            port: 0, rules: try RuleSet.parse(#"{"rules": {"open": {".read": true}}}"#), adminToken: ServerConfiguration.testAdminToken)
        configuration.createNamespaces = true
        try await withTestServer(configuration: configuration) { client async throws in
            #expect(try await client.get("/secret.json").status == 401)
            #expect(try await client.get("/open.json?auth=not-a-token").status == 401)
            #expect(try await client.get("/.metrics").status == 401)
            #expect(try await client.get("/open.json").status == 200)
            let scraped = try await client.get("/.metrics", headers: admin).body
            #expect(scraped.contains("hearth_rule_denials_total 1\n"))
        }
        // Emulator mode's `owner` is an admin.
        try await withServer(emulator: true) { client async throws in
            #expect(try await client.get("/.metrics", headers: ["Authorization": "Bearer owner"]).status == 200)
            #expect(try await client.get("/.metrics").status == 401)
        }
    }
}

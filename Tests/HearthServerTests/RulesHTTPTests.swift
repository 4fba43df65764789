import HearthCore
import HearthServer
import HearthTestSupport
import Testing

/// A server under `rules`, with the test admin token and one HS256 secret for user tokens, on
/// which anyone may name a new namespace (namespace creation has tests of its own).
private func withRules<Value: Sendable>(
    _ rules: String, emulator: Bool = false, _ body: @Sendable (HearthTestClient) async throws -> Value
) async throws -> Value {
    var options = TokenVerifier.Options()
    options.hmacSecrets = [secret]
    options.acceptUnsigned = emulator
    var configuration = ServerConfiguration(
        port: 0, emulator: emulator, rules: try RuleSet.parse(rules), adminToken: ServerConfiguration.testAdminToken,
        tokenVerifier: try await TokenVerifier(options: options))
    configuration.createNamespaces = true
    return try await withTestServer(configuration: configuration, body)
}

private let secret = Array("a-secret-for-the-rules-http-tests-0123456789".utf8)
private let admin = HearthTestClient.admin
private let denied = "{\n  \"error\" : \"Permission denied\"\n}\n"

private func bearer(_ uid: String, claims: [String: Node] = [:]) async throws -> [String: String] {
    ["Authorization": "Bearer " + (try await TokenMinter.hs256(uid: uid, claims: claims, secret: secret))]
}

private let webhookRules = #"{"rules": {".read": "auth != null", ".write": "auth == null"}}"#

private let userRules = #"""
{
  "rules": {
    "public": { ".read": true, "secret": { ".read": false } },
    "users": {
      "$uid": {
        ".read": "auth != null && auth.uid == $uid",
        ".write": "auth != null && auth.uid == $uid",
        ".validate": "newData.hasChildren(['name'])",
        "name": { ".validate": "newData.isString() && newData.val().length < 20" },
        "$other": { ".validate": false }
      }
    },
    "messages": {
      "$message": { ".write": true },
      "message1": { ".write": false }
    }
  }
}
"""#

@Suite("Security rules over HTTP")
struct RulesHTTPTests {
    @Test func webhookRulesLetDevicesPostAndTokensRead() async throws {
        try await withRules(webhookRules) { client async throws in
            let posted = try await client.post("/blessing.json", #"{"device_id":"d1","success":true}"#)
            #expect(posted.status == 200)
            let anonymousRead = try await client.get("/blessing.json")
            #expect(anonymousRead.status == 401)
            #expect(anonymousRead.body == denied)
            let alice = try await bearer("alice")
            #expect(try await client.get("/blessing.json?shallow=true", headers: alice).status == 200)
            // A writer with a token is not anonymous: `auth == null` fails.
            #expect(try await client.post("/blessing.json", "1", headers: alice).status == 401)
            // The admin bypasses the rules, through each way of sending a token.
            #expect(try await client.get("/blessing.json", headers: admin).status == 200)
            #expect(try await client.get("/blessing.json?auth=\(ServerConfiguration.testAdminToken)").status == 200)
            #expect(try await client.get("/blessing.json?access_token=\(ServerConfiguration.testAdminToken)").status == 200)
        }
    }

    @Test func noRulesDenyEveryoneButTheAdmin() async throws {
        let configuration = ServerConfiguration(port: 0, adminToken: ServerConfiguration.testAdminToken)
        try await withTestServer(configuration: configuration) { client async throws in
            #expect(try await client.put("/a.json", "1").status == 401)
            #expect(try await client.get("/a.json").status == 401)
            #expect(try await client.put("/a.json", "1", headers: admin).status == 200)
            #expect(try await client.get("/a.json", headers: admin).body == "1")
        }
    }

    @Test func refusedWritesChangeNothingAndCreateNoNamespace() async throws {
        try await withRules(userRules) { client async throws in
            let alice = try await bearer("alice")
            #expect(try await client.put("/users/bob.json?ns=fresh", #"{"name":"Bob"}"#, headers: alice).status == 401)
            #expect(try await client.get("/.inspect/databases.json", headers: admin).body == "[]")
            #expect(try await client.put("/users/alice.json", #"{"name":"Alice"}"#, headers: alice).status == 200)
            // .validate on a written descendant, and `$other: false` for unknown children.
            #expect(try await client.put("/users/alice/name.json", "5", headers: alice).status == 401)
            #expect(try await client.patch("/users/alice.json", #"{"age":3}"#, headers: alice).status == 401)
            #expect(try await client.get("/users/alice.json", headers: alice).body == #"{"name":"Alice"}"#)
            // Deleting is never validated.
            #expect(try await client.delete("/users/alice.json", headers: alice).status == 200)
        }
    }

    @Test func multiPathPatchIsJudgedAsOneWrite() async throws {
        try await withRules(userRules) { client async throws in
            let alice = try await bearer("alice")
            _ = try await client.put("/users.json", #"{"alice":{"name":"A"},"bob":{"name":"B"}}"#, headers: admin)
            let both = try await client.patch("/users.json", #"{"alice/name":"A2","bob/name":"B2"}"#, headers: alice)
            #expect(both.status == 401)
            #expect(try await client.get("/users.json", headers: admin).body == #"{"alice":{"name":"A"},"bob":{"name":"B"}}"#)
            #expect(try await client.patch("/users.json", #"{"alice/name":"A2"}"#, headers: alice).status == 200)
        }
    }

    @Test func grantsCascadeAndRulesAreNotFilters() async throws {
        try await withRules(userRules) { client async throws in
            _ = try await client.put("/public.json", #"{"secret":{"x":1},"open":2}"#, headers: admin)
            // A grant at /public cannot be revoked below it.
            #expect(try await client.get("/public/secret/x.json").body == "1")
            // Reading /users needs a grant at or above it, whatever the children allow.
            #expect(try await client.get("/users.json", headers: try await bearer("alice")).status == 401)
        }
    }

    @Test func namedChildrenTakePrecedenceOverWildcards() async throws {
        try await withRules(userRules) { client async throws in
            #expect(try await client.put("/messages/message2.json", "1").status == 200)
            #expect(try await client.put("/messages/message1.json", "1").status == 401)
        }
    }

    @Test func authVariableOverrideIsForAdmins() async throws {
        try await withRules(userRules) { client async throws in
            let asAlice = "auth_variable_override=%7B%22uid%22%3A%22alice%22%7D"
            #expect(try await client.put("/users/alice.json?\(asAlice)", #"{"name":"A"}"#, headers: admin).status == 200)
            #expect(try await client.put("/users/bob.json?\(asAlice)", #"{"name":"B"}"#, headers: admin).status == 401)
            // Anyone else keeps their own identity.
            let bob = try await bearer("bob")
            #expect(try await client.put("/users/alice.json?\(asAlice)", #"{"name":"A"}"#, headers: bob).status == 401)
            #expect(try await client.get("/a.json?auth_variable_override=%7Bnope", headers: admin).status == 400)
        }
    }

    @Test func badTokensAreRefusedNotTreatedAsAnonymous() async throws {
        try await withRules(webhookRules) { client async throws in
            for token in ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJ1aWQiOiJ4In0."] {
                let response = try await client.post("/blessing.json", "1", headers: ["Authorization": "Bearer \(token)"])
                #expect(response.status == 401, "\(token)")
                #expect(response.body != denied, "\(token)")
            }
            let expired = try await TokenMinter.hs256(uid: "x", secret: secret, lifetime: -3600)
            #expect(try await client.get("/blessing.json?auth=\(expired)").body.contains("expired"))
            let wrongKey = try await TokenMinter.hs256(uid: "x", secret: Array("another secret, also long enough to be used".utf8))
            #expect(try await client.get("/blessing.json?auth=\(wrongKey)").status == 401)
            #expect(try await client.get("/blessing.json", headers: ["Authorization": "Basic eDp5"]).status == 401)
        }
    }

    @Test func rulesEndpointReplacesRulesAtomically() async throws {
        try await withRules(webhookRules) { client async throws in
            let document = "{\n  // comment\n  \"rules\": {\".read\": true, \".write\": false}\n}"
            #expect(try await client.get("/.settings/rules.json").status == 401)
            #expect(try await client.put("/.settings/rules.json", document).status == 401)
            #expect(try await client.put("/.settings/rules.json?dryRun=true", document, headers: admin).body == #"{"status":"ok"}"#)
            #expect(try await client.get("/.settings/rules.json", headers: admin).body == webhookRules)
            #expect(try await client.put("/.settings/rules.json", document, headers: admin).status == 200)
            #expect(try await client.get("/.settings/rules.json", headers: admin).body == document)
            let strict = try await client.get("/.settings/rules.json?format=strict", headers: admin)
            #expect(strict.body == "{\n  \"rules\": {\n    \".read\": true,\n    \".write\": false\n  }\n}")
            #expect(try await client.get("/x.json").status == 200)
            #expect(try await client.post("/x.json", "1").status == 401)
            // A broken document is refused with its line and column, and changes nothing.
            let broken = try await client.put(
                "/.settings/rules.json", "{\n  \"rules\": {\n    \".read\": \"auth.uid == skies\"\n  }\n}", headers: admin)
            #expect(broken.status == 400)
            #expect(broken.body.contains("Line 3, column 27"))
            #expect(try await client.get("/.settings/rules.json", headers: admin).body == document)
            // Rules belong to a namespace.
            #expect(try await client.post("/x.json?ns=other", "1").status == 200)
        }
    }

    @Test func emulatorOwnerAndMockTokens() async throws {
        try await withRules(userRules, emulator: true) { client async throws in
            #expect(try await client.get("/users.json", headers: ["Authorization": "Bearer owner"]).status == 200)
            // An unsigned mock token, as the Firebase SDKs make for the emulator (iat 0).
            let mock = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsInVzZXJfaWQiOiJhbGljZSIsImlhdCI6MCwiZXhwIjozNjAwfQ."
            #expect(try await client.put("/users/alice.json?auth=\(mock)", #"{"name":"A"}"#).status == 200)
            #expect(try await client.put("/users/bob.json?auth=\(mock)", #"{"name":"B"}"#).status == 401)
        }
    }

    @Test func serverTimestampsEqualNowInRules() async throws {
        let rules = #"{"rules": {"log": {"$id": {".write": true, ".validate": "newData.child('at').val() == now"}}}}"#
        try await withRules(rules) { client async throws in
            for _ in 0..<30 {
                #expect(try await client.post("/log.json", #"{"at":{".sv":"timestamp"}}"#).status == 200)
            }
            #expect(try await client.post("/log.json", #"{"at":1}"#).status == 401)
        }
    }

    @Test func aFailedConditionShowsTheValueOnlyToReaders() async throws {
        try await withRules(webhookRules) { client async throws in
            _ = try await client.put("/a.json", #""secret""#)
            let blind = try await client.put("/a.json", "1", headers: ["if-match": "stale"])
            #expect(blind.status == 412)
            #expect(!blind.body.contains("secret"))
            #expect(blind.header("ETag") == nil)
            let reader = try await client.put("/a.json", "1", headers: admin.merging(["if-match": "stale"]) { $1 })
            #expect(reader.status == 412)
            #expect(reader.body == #""secret""#)
        }
    }

    @Test func dryRunTakesOnlyTrueOrFalse() async throws {
        try await withRules(webhookRules) { client async throws in
            let document = #"{"rules": {".read": true}}"#
            #expect(try await client.put("/.settings/rules.json?dryRun=maybe", document, headers: admin).status == 400)
            #expect(try await client.put("/.settings/rules.json?dryRun=false", document, headers: admin).status == 200)
            #expect(try await client.get("/.settings/rules.json", headers: admin).body == document)
        }
    }

    @Test func tokensAndSecrets() async throws {
        var options = TokenVerifier.Options()
        options.hmacSecrets = [Array("too short".utf8)]
        await #expect(throws: TokenError.self) { try await TokenVerifier(options: options) }
        await #expect(throws: TokenError.self) { try await TokenMinter.hs256(uid: "a", secret: Array("short".utf8)) }
        options.hmacSecrets = [secret]
        let verifier = try await TokenVerifier(options: options)
        let claims: [String: Node] = [
            "firebase": try JSONParser.parse(Array(#"{"sign_in_provider":"google.com"}"#.utf8)).node,
            "groups": try JSONParser.parse(Array(#"["a","b"]"#.utf8)).node,
        ]
        let identity = try await verifier.verify(try await TokenMinter.hs256(uid: "ann", claims: claims, secret: secret))
        #expect(identity.auth.child("uid") == .string("ann"))
        #expect(identity.auth.child("provider") == .string("google"))
        #expect(identity.auth.child("token").child("groups").child("1") == .string("b"))
    }

    /// Only an HS256 token of the legacy shape (`v` and `d`) can carry `admin: true`; in any
    /// other token `d` and `admin` are ordinary claims.
    @Test func legacyAdminNeedsTheLegacyShape() async throws {
        try await withRules(#"{"rules": {".read": "auth.uid == 'u1'"}}"#) { client async throws in
            let dClaim = try JSONParser.parse(Array(#"{"uid":"u1"}"#.utf8)).node
            let legacy = try await TokenMinter.hs256(uid: "x", claims: ["v": .int(0), "d": dClaim, "admin": .bool(true)], secret: secret)
            #expect(try await client.get("/.settings/rules.json?auth=\(legacy)").status == 200)
            let modern = try await TokenMinter.hs256(uid: "x", claims: ["d": dClaim, "admin": .bool(true)], secret: secret)
            // Not an admin, and its uid stays "x": the rule on auth.uid denies.
            #expect(try await client.get("/.settings/rules.json?auth=\(modern)").status == 401)
            #expect(try await client.get("/a.json?auth=\(modern)").status == 401)
        }
    }

    /// A write-only caller does not learn a number through an increment's answer.
    @Test func incrementsAnswerOnlyReaders() async throws {
        try await withRules(#"{"rules": {".write": true}}"#) { client async throws in
            _ = try await client.put("/n.json", "42", headers: admin)
            let blind = try await client.put("/n.json", #"{".sv":{"increment":0}}"#)
            #expect(blind.status == 200)
            #expect(blind.body == "null")
            let reader = try await client.put("/n.json", #"{".sv":{"increment":1}}"#, headers: admin)
            #expect(reader.body == "43")
        }
    }

    /// Canonically equivalent spellings are different keys, in rules as in data.
    @Test func ruleKeysCompareBytes() async throws {
        let rules = "{\"rules\": {\"caf\u{E9}\": {\".read\": true}}}"
        try await withRules(rules) { client async throws in
            #expect(try await client.get("/caf%C3%A9.json").status == 200)
            #expect(try await client.get("/cafe%CC%81.json").status == 401)
        }
    }

    @Test func overridesAreObjectsOrNull() async throws {
        try await withRules(webhookRules) { client async throws in
            #expect(try await client.get("/a.json?auth_variable_override=%5B1%5D", headers: admin).status == 400)
            #expect(try await client.get("/a.json?auth_variable_override=null", headers: admin).status == 401)
        }
    }
}

@Suite("CORS")
struct CORSTests {
    @Test func anyOriginByDefault() async throws {
        try await withTestServer { client async throws in
            let response = try await client.get("/a.json", headers: ["Origin": "https://x.example"])
            #expect(response.header("Access-Control-Allow-Origin") == "*")
            let preflight = try await client.request(.options, "/a.json", headers: ["Origin": "https://x.example"])
            #expect(preflight.status == 204)
            #expect(preflight.header("Access-Control-Allow-Methods")?.contains("PATCH") == true)
        }
    }

    @Test func onlyConfiguredOrigins() async throws {
        var configuration = ServerConfiguration.openForTests()
        configuration.corsOrigins = ["https://dash.example.com"]
        try await withTestServer(configuration: configuration) { client async throws in
            let allowed = try await client.get("/a.json", headers: ["Origin": "https://dash.example.com"])
            #expect(allowed.header("Access-Control-Allow-Origin") == "https://dash.example.com")
            #expect(allowed.header("Vary") == "Origin")
            let other = try await client.get("/a.json", headers: ["Origin": "https://evil.example"])
            #expect(other.header("Access-Control-Allow-Origin") == nil)
            let preflight = try await client.request(.options, "/a.json", headers: ["Origin": "https://evil.example"])
            #expect(preflight.header("Access-Control-Allow-Origin") == nil)
            let error = try await client.get("/a.json?foo=1", headers: ["Origin": "https://dash.example.com"])
            #expect(error.status == 400)
            #expect(error.header("Access-Control-Allow-Origin") == "https://dash.example.com")
        }
    }
}

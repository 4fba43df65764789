import HearthCore
import HearthServer
import HearthTestSupport
import Testing

// MARK: - Helpers

/// Rules that allow everything and declare the indexes the query tests use.
private let indexedRules = #"""
{
  "rules": {
    ".read": true,
    ".write": true,
    "items": { ".indexOn": ["score", "meta/rank"] },
    "scores": { ".indexOn": ".value" },
    "list": { ".indexOn": ".value" }
  }
}
"""#

/// A server under `rules` (non-admin requests obey them, indexes included), on which anyone
/// may name a new namespace (namespace creation has tests of its own).
private func withRules<Value: Sendable>(
    _ rules: String = indexedRules, emulator: Bool = false, _ body: @Sendable (HearthTestClient) async throws -> Value
) async throws -> Value {
    var configuration = ServerConfiguration(
        port: 0, emulator: emulator, rules: try RuleSet.parse(rules), adminToken: ServerConfiguration.testAdminToken)
    configuration.createNamespaces = true
    return try await withTestServer(configuration: configuration, body)
}

/// The children of /items, each as the server writes it back (an object's members in key order).
private let itemList: [(key: String, json: String)] = [
    ("a", #"{"meta":{"rank":2},"score":3}"#),
    ("b", #"{"score":1}"#),
    ("c", #"{"meta":{"rank":1},"score":2}"#),
    ("d", #"{"score":1}"#),
    ("e", #"{"name":"none"}"#),
    ("f", #"{"score":"high"}"#),
    ("g", #"{"score":true}"#),
]

private let itemsDocument = "{" + itemList.map { "\"\($0.key)\":\($0.json)" }.joined(separator: ",") + "}"

/// The body of an answer holding the items named (space-separated), in that order; `null` for none.
private func items(_ names: String) -> String {
    let keys = names.split(separator: " ").map(String.init)
    guard !keys.isEmpty else { return "null" }
    return "{" + keys.map { key in "\"\(key)\":" + itemList.first { $0.key == key }!.json }.joined(separator: ",") + "}"
}

/// Firebase's error body: `{\n  "error" : "<message>"\n}\n`, the message JSON-escaped.
private func errorBody(_ message: String) -> String {
    let escaped = message.map { $0 == "\"" ? "\\\"" : ($0 == "\\" ? "\\\\" : String($0)) }.joined()
    return "{\n  \"error\" : \"\(escaped)\"\n}\n"
}

private func indexNotDefined(_ name: String, at path: String) -> String {
    errorBody(#"Index not defined, add ".indexOn": "\#(name)", for path "\#(path)", to the rules"#)
}

private let admin = HearthTestClient.admin
private let denied = errorBody("Permission denied")

/// Queries on /items and the items each answers, in order.
private let itemQueries: [(String, String)] = [
    (#"orderBy="score""#, "e g b d c a f"),
    (#"orderBy="score"&startAt=1"#, "b d c a f"),
    (#"orderBy="score"&endAt=2"#, "e g b d c"),
    (#"orderBy="score"&startAt=1&endAt=2"#, "b d c"),
    (#"orderBy="score"&equalTo=1"#, "b d"),
    (#"orderBy="score"&startAfter=1"#, "c a f"),
    (#"orderBy="score"&endBefore=2"#, "e g b d"),
    (#"orderBy="score"&startAt=1,"c""#, "d c a f"),
    (#"orderBy="score"&endAt=1,"b""#, "e g b"),
    (#"orderBy="score"&startAfter=1,"b""#, "d c a f"),
    (#"orderBy="score"&endBefore=1,"d""#, "e g b"),
    (#"orderBy="score"&equalTo=1,"d""#, "d"),
    (#"orderBy="score"&equalTo="high""#, "f"),
    (#"orderBy="score"&startAt=true"#, "g b d c a f"),
    (#"orderBy="score"&equalTo=null"#, "e"),
    (#"orderBy="score"&endAt=false"#, "e"),
    (#"orderBy="score"&startAt="a""#, "f"),
    (#"orderBy="score"&limitToFirst=2"#, "e g"),
    (#"orderBy="score"&limitToLast=2"#, "a f"),
    (#"orderBy="score"&startAt=1&limitToFirst=3"#, "b d c"),
    (#"orderBy="score"&endAt=2&limitToLast=2"#, "d c"),
    (#"orderBy="score"&equalTo=42"#, ""),
    (#"orderBy="score"&startAt=3&endAt=1"#, ""),
    (#"orderBy="meta/rank""#, "b d e f g c a"),
    (#"orderBy="meta/rank"&startAt=1"#, "c a"),
    (#"orderBy="meta/rank"&endAt=null&limitToLast=2"#, "f g"),
    (#"orderBy="$key"&startAt="b"&endAt="d""#, "b c d"),
    (#"orderBy="$key"&limitToLast=2"#, "f g"),
    (#"orderBy="$key"&startAfter="b"&limitToFirst=2"#, "c d"),
    (#"orderBy="$key"&endBefore="b""#, "a"),
    (#"orderBy="$key"&equalTo="c""#, "c"),
    (#"orderBy="$key"&startAt="c"&limitToLast=1"#, "g"),
    // Percent-encoded, as the JS SDK sends them.
    ("orderBy=%22score%22&startAt=1%2C%22c%22", "d c a f"),
    ("orderBy=%22score%22&equalTo=%22high%22", "f"),
]

/// Queries Firebase refuses, and its message for each.
private let refusedQueries: [(String, String)] = [
    ("orderBy=score", "orderBy must be a valid JSON encoded path"),
    ("limitToFirst=1", "orderBy must be defined when other query parameters are defined"),
    (#"startAt="a""#, "orderBy must be defined when other query parameters are defined"),
    (#"orderBy="score"&startAt=abc"#, "Constraint index field must be a JSON primitive"),
    (#"orderBy="score"&startAt=%7B%22a%22%3A1%7D"#, "Constraint index field must be a JSON primitive"),
    (#"orderBy="$key"&startAt=0"#, "Provided key index type is invalid, must be string"),
    (#"orderBy="$key"&startAt="a","b""#, "startAt cannot have a key after the comma when orderBy is \"$key\""),
    (#"orderBy="$priority"&startAt=true"#, "startAt must be null, a number or a string when orderBy is \"$priority\""),
    (#"orderBy="score"&limitToFirst=1&limitToLast=1"#, "limitToFirst and limitToLast cannot be used together"),
    (#"orderBy="score"&equalTo=1&startAt=1"#, "equalTo cannot be combined with startAt, startAfter, endAt or endBefore"),
    (#"orderBy="score"&startAt=1&startAfter=1"#, "startAt and startAfter cannot be used together"),
    (#"orderBy="score"&endAt=1&endBefore=1"#, "endAt and endBefore cannot be used together"),
    (#"orderBy="score"&limitToFirst=-1"#, "limitToFirst must be a non-negative integer"),
    (#"orderBy="score"&limitToLast=many"#, "limitToLast must be a non-negative integer"),
]

// MARK: - Queries

@Suite("Queries over HTTP")
struct QueryHTTPTests {
    @Test("queries on /items answer in query order", arguments: itemQueries)
    func queryOnItems(query: String, names: String) async throws {
        try await withRules { client async throws in
            _ = try await client.put("/items.json", itemsDocument)
            let response = try await client.get("/items.json?\(query)")
            #expect(response.status == 200)
            #expect(response.body == items(names))
        }
    }

    @Test func integerKeysComeFirstInNumericOrder() async throws {
        try await withRules { client async throws in
            _ = try await client.put("/numbered.json", #"{"b":1,"10":2,"a":3,"-1":4,"2":5}"#)
            #expect(try await client.get(#"/numbered.json?orderBy="$key""#).body == #"{"-1":4,"2":5,"10":2,"a":3,"b":1}"#)
            #expect(try await client.get(#"/numbered.json?orderBy="$key"&startAt="2"&endAt="a""#).body == #"{"2":5,"10":2,"a":3}"#)
        }
    }

    @Test func valuesOrderBooleansNumbersStringsThenObjects() async throws {
        try await withRules { client async throws in
            _ = try await client.put("/scores.json", #"{"u":1,"v":{"o":1},"w":true,"x":5,"y":"s","z":1}"#)
            #expect(try await client.get(#"/scores.json?orderBy="$value""#).body == #"{"w":true,"u":1,"z":1,"x":5,"y":"s","v":{"o":1}}"#)
            #expect(try await client.get(#"/scores.json?orderBy="$value"&startAt=1&endAt=5"#).body == #"{"u":1,"z":1,"x":5}"#)
            #expect(try await client.get(#"/scores.json?orderBy="$value"&limitToLast=1"#).body == #"{"v":{"o":1}}"#)
            #expect(try await client.get(#"/scores.json?orderBy="$value"&startAt="t"&endAt="zzz""#).body == "null")
        }
    }

    @Test func prioritiesOrderNoneThenNumbersThenStrings() async throws {
        try await withRules { client async throws in
            let document = #"{"p":{".value":1,".priority":2},"q":{".value":2,".priority":"a"},"r":3,"s":{"x":1,".priority":1}}"#
            _ = try await client.put("/ranked.json", document)
            #expect(try await client.get(#"/ranked.json?orderBy="$priority""#).body == #"{"r":3,"s":{"x":1},"p":1,"q":2}"#)
            #expect(try await client.get(#"/ranked.json?orderBy="$priority"&startAt=2"#).body == #"{"p":1,"q":2}"#)
            #expect(try await client.get(#"/ranked.json?orderBy="$priority"&endAt=null"#).body == #"{"r":3}"#)
            #expect(try await client.get(#"/ranked.json?orderBy="$priority"&format=export"#).body
                == #"{"r":3,"s":{"x":1,".priority":1},"p":{".value":1,".priority":2},"q":{".value":2,".priority":"a"}}"#)
        }
    }

    @Test func arrayLikeAnswersAreArrays() async throws {
        try await withRules { client async throws in
            _ = try await client.put("/list.json", "[30,10,20]")
            #expect(try await client.get(#"/list.json?orderBy="$value"&limitToFirst=2"#).body == "[null,10,20]")
            #expect(try await client.get(#"/list.json?orderBy="$value"&limitToLast=2"#).body == "[30,null,20]")
            #expect(try await client.get(#"/list.json?orderBy="$key"&limitToFirst=2"#).body == "[30,10]")
            // Export never makes arrays, so the query order shows.
            #expect(try await client.get(#"/list.json?orderBy="$value"&format=export"#).body == #"{"1":10,"2":20,"0":30}"#)
        }
    }

    @Test func prettyPrintedAnswersKeepQueryOrder() async throws {
        try await withRules { client async throws in
            _ = try await client.put("/items.json", itemsDocument)
            let pretty = try await client.get(#"/items.json?orderBy="score"&startAt=1&limitToFirst=3&print=pretty"#)
            #expect(pretty.body == "{\n  \"b\" : {\n    \"score\" : 1\n  },\n  \"d\" : {\n    \"score\" : 1\n  },\n  \"c\" : {\n    \"meta\" : {\n      \"rank\" : 1\n    },\n    \"score\" : 2\n  }\n}\n")
            #expect(try await client.get(#"/items.json?orderBy="score"&equalTo=42&print=pretty"#).body == "null\n")
        }
    }

    @Test func shallowReadsPageByKeyWithoutOrderBy() async throws {
        try await withRules { client async throws in
            _ = try await client.put("/pages.json", #"{"a":{"x":1},"b":{"x":2},"c":{"x":3},"d":{"x":4},"e":{"x":5},"f":6}"#)
            #expect(try await client.get("/pages.json?shallow=true&limitToFirst=2").body == #"{"a":true,"b":true}"#)
            #expect(try await client.get("/pages.json?shallow=true&limitToFirst=2&startAfter=b").body == #"{"c":true,"d":true}"#)
            // Every child is `true`, leaves too, as in a shallow read without a limit.
            #expect(try await client.get("/pages.json?shallow=true&limitToFirst=2&startAfter=%22d%22").body == #"{"e":true,"f":true}"#)
            #expect(try await client.get("/pages.json?shallow=true").body == #"{"a":true,"b":true,"c":true,"d":true,"e":true,"f":true}"#)
            #expect(try await client.get("/pages.json?shallow=true&limitToFirst=2&startAfter=f").body == "null")
            // Without shallow, a limit needs an orderBy.
            let unordered = try await client.get("/pages.json?limitToFirst=2")
            #expect(unordered.status == 400)
            #expect(unordered.body == errorBody("orderBy must be defined when other query parameters are defined"))
        }
    }

    @Test func firebaseToolsCanListPushedChildrenPageByPage() async throws {
        try await withRules { client async throws in
            var pushed: [String] = []
            for index in 0..<7 {
                let response = try await client.post("/log.json", #"{"n":\#(index)}"#)
                guard case .string(let name)? = response.node?.child("name") else {
                    Issue.record("no name in \(response.body)")
                    return
                }
                pushed.append(name)
            }
            // As `firebase database:remove` lists a large location: shallow, limitToFirst, then
            // startAfter the last key seen, sent raw.
            var listed: [String] = []
            while true {
                let after = listed.last.map { "&startAfter=\($0)" } ?? ""
                let page = try await client.get("/log.json?shallow=true&limitToFirst=3\(after)")
                #expect(page.status == 200)
                guard case .object(let children)? = page.node else { break }
                #expect(children.count <= 3)
                listed += children.keys.map(\.string)
                if listed.count > 7 { break }
            }
            #expect(listed == pushed)
        }
    }

    @Test("refused queries get 400 and Firebase's message", arguments: refusedQueries)
    func refusedQuery(query: String, message: String) async throws {
        try await withRules { client async throws in
            _ = try await client.put("/items.json", itemsDocument)
            let response = try await client.get("/items.json?\(query)")
            #expect(response.status == 400)
            #expect(response.body == errorBody(message))
        }
    }

    @Test func aQueryOnALeafOrAMissingLocationIsNull() async throws {
        try await withRules { client async throws in
            _ = try await client.put("/items.json", itemsDocument)
            #expect(try await client.get(#"/items/b/score.json?orderBy="$key""#).body == "null")
            #expect(try await client.get(#"/items/b/score.json?orderBy="$priority"&limitToFirst=1"#).body == "null")
            #expect(try await client.get(#"/items/none.json?orderBy="$key"&startAt="a""#).body == "null")
            #expect(try await client.get(#"/anything.json?ns=fresh&orderBy="$key"&limitToLast=1"#).body == "null")
            let priority = try await client.get(#"/items/b/.priority.json?orderBy="$key""#)
            #expect(priority.status == 400)
            #expect(priority.body == errorBody("Queries are not supported on a priority."))
        }
    }

    @Test func writesRefuseQueryParametersAndChangeNothing() async throws {
        try await withRules { client async throws in
            _ = try await client.put("/items.json", itemsDocument)
            let query = #"orderBy="$key"&limitToFirst=1"#
            let refusal = errorBody("Query parameters (orderBy, startAt, limitToFirst, ...) are only supported on GET requests.")
            let responses = [
                try await client.put("/items.json?\(query)", "1"),
                try await client.patch("/items.json?\(query)", #"{"b":null}"#),
                try await client.post("/items.json?\(query)", "1"),
                try await client.delete("/items.json?\(query)"),
            ]
            for response in responses {
                #expect(response.status == 400)
                #expect(response.body == refusal)
            }
            #expect(try await client.get("/items.json").body == itemsDocument)
        }
    }
}

// MARK: - Indexes and rules

private let scoreIndexRules = #"{"rules": {".read": true, ".write": true, "items": {".indexOn": ["score"]}}}"#

private let rankedItems = #"{"x":{"other":"c","score":2},"y":{"other":"a","score":1},"z":{"other":"b","score":3}}"#
private let rankedByScore = #"{"y":{"other":"a","score":1},"x":{"other":"c","score":2},"z":{"other":"b","score":3}}"#
private let rankedByOther = #"{"y":{"other":"a","score":1},"z":{"other":"b","score":3},"x":{"other":"c","score":2}}"#

@Suite("Query indexes over HTTP")
struct QueryIndexHTTPTests {
    @Test func aChildQueryNeedsItsIndex() async throws {
        try await withRules(scoreIndexRules) { client async throws in
            _ = try await client.put("/items.json", rankedItems)
            let byScore = try await client.get(#"/items.json?orderBy="score""#)
            #expect(byScore.status == 200)
            #expect(byScore.body == rankedByScore)

            let byOther = try await client.get(#"/items.json?orderBy="other""#)
            #expect(byOther.status == 400)
            #expect(byOther.body == indexNotDefined("other", at: "/items"))
            #expect(try await client.get(#"/items.json?orderBy="$value""#).body == indexNotDefined(".value", at: "/items"))
            #expect(try await client.get(#"/items.json?orderBy="meta/rank""#).body == indexNotDefined("meta/rank", at: "/items"))
            #expect(try await client.get(#"/elsewhere.json?orderBy="score""#).body == indexNotDefined("score", at: "/elsewhere"))
            #expect(try await client.get(#"/items/x.json?orderBy="score""#).body == indexNotDefined("score", at: "/items/x"))
        }
    }

    @Test func keyAndPriorityQueriesNeedNoIndex() async throws {
        try await withRules(scoreIndexRules) { client async throws in
            _ = try await client.put("/items.json", rankedItems)
            #expect(try await client.get(#"/items.json?orderBy="$key"&limitToLast=2"#).body
                == #"{"y":{"other":"a","score":1},"z":{"other":"b","score":3}}"#)
            #expect(try await client.get(#"/items.json?orderBy="$priority""#).body == rankedItems)
            #expect(try await client.get(#"/elsewhere.json?orderBy="$priority""#).status == 200)
        }
    }

    @Test func theAdminMayQueryWithoutAnIndex() async throws {
        try await withRules(scoreIndexRules) { client async throws in
            _ = try await client.put("/items.json", rankedItems)
            let byOther = try await client.get(#"/items.json?orderBy="other""#, headers: admin)
            #expect(byOther.status == 200)
            #expect(byOther.body == rankedByOther)
            #expect(try await client.get(#"/items.json?orderBy="other"&startAt="b""#, headers: admin).body
                == #"{"z":{"other":"b","score":3},"x":{"other":"c","score":2}}"#)
            #expect(try await client.get(#"/items.json?orderBy="$value""#, headers: admin).status == 200)
        }
    }

    @Test func theEmulatorDoesNotEnforceIndexes() async throws {
        try await withRules(scoreIndexRules, emulator: true) { client async throws in
            _ = try await client.put("/items.json", rankedItems)
            let byOther = try await client.get(#"/items.json?orderBy="other""#)
            #expect(byOther.status == 200)
            #expect(byOther.body == rankedByOther)
        }
    }

    @Test func anIndexDeclaredUnderAWildcardServesEveryMatchingLocation() async throws {
        let rules = #"{"rules": {".read": true, ".write": true, "users": {"$uid": {"posts": {".indexOn": "score"}}}}}"#
        try await withRules(rules) { client async throws in
            _ = try await client.put("/users/bob/posts.json", rankedItems)
            #expect(try await client.get(#"/users/bob/posts.json?orderBy="score""#).body == rankedByScore)
            // The index made on first use follows later writes.
            _ = try await client.put("/users/bob/posts/w.json", #"{"other":"d","score":0}"#)
            _ = try await client.patch("/users/bob/posts.json", #"{"z/score":-1}"#)
            #expect(try await client.get(#"/users/bob/posts.json?orderBy="score"&limitToFirst=2"#).body
                == #"{"z":{"other":"b","score":-1},"w":{"other":"d","score":0}}"#)
            #expect(try await client.get(#"/users/amy/posts.json?orderBy="score""#).body == "null")
            #expect(try await client.get(#"/users/bob/posts.json?orderBy="other""#).body == indexNotDefined("other", at: "/users/bob/posts"))
            #expect(try await client.get(#"/users/bob.json?orderBy="score""#).body == indexNotDefined("score", at: "/users/bob"))
        }
    }

    @Test func readRulesCanLimitQueries() async throws {
        let rules = #"{"rules": {".write": true, "items": {".read": "query.limitToFirst <= 100", ".indexOn": "score"}}}"#
        try await withRules(rules) { client async throws in
            _ = try await client.put("/items.json", rankedItems)
            let allowed = try await client.get(#"/items.json?orderBy="$key"&limitToFirst=100"#)
            #expect(allowed.status == 200)
            #expect(allowed.body == rankedItems)
            #expect(try await client.get(#"/items.json?orderBy="score"&limitToFirst=2"#).body
                == #"{"y":{"other":"a","score":1},"x":{"other":"c","score":2}}"#)
            let tooMany = try await client.get(#"/items.json?orderBy="$key"&limitToFirst=101"#)
            #expect(tooMany.status == 401)
            #expect(tooMany.body == denied)
            #expect(try await client.get("/items.json").status == 401)
            #expect(try await client.get(#"/items.json?orderBy="$key"&limitToLast=5"#).status == 401)
            #expect(try await client.get("/items.json", headers: admin).body == rankedItems)
        }
    }

    @Test func theIndexFollowsWritesDeepInsideChildren() async throws {
        try await withRules(scoreIndexRules) { client async throws in
            _ = try await client.put("/items.json", rankedItems)
            #expect(try await client.get(#"/items.json?orderBy="score""#).body == rankedByScore)

            _ = try await client.patch("/items/y.json", #"{"score":10}"#)
            #expect(try await client.get(#"/items.json?orderBy="score""#).body
                == #"{"x":{"other":"c","score":2},"z":{"other":"b","score":3},"y":{"other":"a","score":10}}"#)

            _ = try await client.put("/items/x/score.json", "4")
            #expect(try await client.get(#"/items.json?orderBy="score""#).body
                == #"{"z":{"other":"b","score":3},"x":{"other":"c","score":4},"y":{"other":"a","score":10}}"#)

            _ = try await client.patch("/items.json", #"{"z/score":null}"#)
            #expect(try await client.get(#"/items.json?orderBy="score""#).body
                == #"{"z":{"other":"b"},"x":{"other":"c","score":4},"y":{"other":"a","score":10}}"#)

            _ = try await client.delete("/items/x.json")
            #expect(try await client.get(#"/items.json?orderBy="score"&startAt=4"#).body == #"{"y":{"other":"a","score":10}}"#)

            _ = try await client.patch("/.json", #"{"items/z/score":20,"items/v":{"score":5}}"#)
            #expect(try await client.get(#"/items.json?orderBy="score""#).body
                == #"{"v":{"score":5},"y":{"other":"a","score":10},"z":{"other":"b","score":20}}"#)

            _ = try await client.put("/items.json", #"{"n":{"score":1},"m":{"score":0}}"#)
            #expect(try await client.get(#"/items.json?orderBy="score"&limitToLast=1"#).body == #"{"n":{"score":1}}"#)
        }
    }

    @Test func newRulesBringNewIndexes() async throws {
        try await withRules(scoreIndexRules) { client async throws in
            _ = try await client.put("/items.json", rankedItems)
            #expect(try await client.get(#"/items.json?orderBy="other""#).status == 400)

            let withOther = #"{"rules": {".read": true, ".write": true, "items": {".indexOn": ["score", "other"]}}}"#
            #expect(try await client.put("/.settings/rules.json", withOther, headers: admin).status == 200)
            let byOther = try await client.get(#"/items.json?orderBy="other""#)
            #expect(byOther.status == 200)
            #expect(byOther.body == rankedByOther)
            _ = try await client.patch("/items/x.json", #"{"other":"0"}"#)
            #expect(try await client.get(#"/items.json?orderBy="other"&limitToFirst=1"#).body == #"{"x":{"other":"0","score":2}}"#)

            // Rules that no longer declare an index refuse its queries again.
            let withoutScore = #"{"rules": {".read": true, ".write": true, "items": {".indexOn": "other"}}}"#
            #expect(try await client.put("/.settings/rules.json", withoutScore, headers: admin).status == 200)
            #expect(try await client.get(#"/items.json?orderBy="score""#).body == indexNotDefined("score", at: "/items"))
            #expect(try await client.get(#"/items.json?orderBy="other"&limitToFirst=1"#).body == #"{"x":{"other":"0","score":2}}"#)
        }
    }
}

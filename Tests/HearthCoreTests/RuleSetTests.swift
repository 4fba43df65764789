import Foundation
import HearthCore
import Testing

// Rules documents (`{"rules": {...}}`, reference §3.1) and the access decisions made with
// them (§3.2): cascades, validation, wildcards, and what `data`, `newData` and `root` are.

// MARK: - Helpers

private func tree(_ json: String) throws -> Node {
    try JSONParser.parse(Array(json.utf8)).node
}

private func path(_ text: String) throws -> Path {
    try Path(validating: text)
}

private let anonymous = Node.null

/// A user signed in with a Firebase ID token.
private func user(_ uid: String) throws -> Node {
    try tree(#"{"uid": "\#(uid)", "provider": "password", "token": {"sub": "\#(uid)", "firebase": {"sign_in_provider": "password"}}}"#)
}

private extension RuleSet {
    /// May `auth` read `location` of `data`?
    func mayRead(_ location: String, as auth: Node, in data: Node = .null, query: RuleQuery = RuleQuery()) throws -> Bool {
        canRead(try path(location), auth: auth, root: data, now: 0, query: query).allowed
    }

    /// May `auth` replace `location` of `data` with `json` (a PUT; "null" for a DELETE)?
    func maySet(_ location: String, to json: String, as auth: Node, over data: Node = .null, now: Int64 = 0) throws -> Bool {
        let target = try path(location)
        let after = data.setting(target, to: try tree(json))
        return canWrite([target], auth: auth, oldRoot: data, newRoot: after, now: now).allowed
    }

    /// May `auth` apply a multi-path PATCH at `location`: each (relative path, JSON) pair replaces one place?
    func mayUpdate(
        _ location: String, with values: [(String, String)], as auth: Node, over data: Node = .null, now: Int64 = 0
    ) throws -> Bool {
        let base = try path(location)
        var after = data
        var targets: [Path] = []
        for (relative, json) in values {
            let target = base.appending(try path(relative))
            after = after.setting(target, to: try tree(json))
            targets.append(target)
        }
        return canWrite(targets, auth: auth, oldRoot: data, newRoot: after, now: now).allowed
    }
}

// MARK: - Documents

/// A rules document Firebase refuses, and where it says the problem is.
struct RulesDocumentErrorCase: Sendable, CustomTestStringConvertible {
    var what: String
    var text: String
    var line: Int
    var column: Int

    var testDescription: String { what }
}

private let documentErrors: [RulesDocumentErrorCase] = [
    RulesDocumentErrorCase(what: "text after the document", text: #"{"rules": {}} x"#, line: 1, column: 15),
    RulesDocumentErrorCase(
        what: "a missing comma",
        text: """
            {
              "rules": {
                ".read": true
                ".write": true
              }
            }
            """, line: 4, column: 5),
    RulesDocumentErrorCase(
        what: "an unterminated comment",
        text: """
            {
              "rules": {
                /* TODO: lock this down
                ".read": true
              }
            }
            """, line: 3, column: 5),
    RulesDocumentErrorCase(
        what: "a duplicate key",
        text: """
            {
              "rules": {
                ".read": true,
                ".read": false
              }
            }
            """, line: 4, column: 5),
    RulesDocumentErrorCase(
        what: "an unknown rule type",
        text: """
            {
              "rules": {
                "a": {
                  ".foo": true
                }
              }
            }
            """, line: 4, column: 7),
    RulesDocumentErrorCase(
        what: "two wildcards at one level",
        text: """
            {
              "rules": {
                "users": {
                  "$uid": {},
                  "$other": {}
                }
              }
            }
            """, line: 5, column: 7),
    RulesDocumentErrorCase(
        what: "a wildcard name used twice on one path",
        text: """
            {
              "rules": {
                "$id": {
                  "$id": {}
                }
              }
            }
            """, line: 4, column: 7),
    RulesDocumentErrorCase(
        what: "a wildcard without a name",
        text: """
            {
              "rules": {
                "$": {}
              }
            }
            """, line: 3, column: 5),
    RulesDocumentErrorCase(
        what: "a number as a .read rule",
        text: """
            {
              "rules": {
                ".read": 1
              }
            }
            """, line: 3, column: 14),
    RulesDocumentErrorCase(
        what: "null as a .validate rule",
        text: """
            {
              "rules": {
                ".validate": null
              }
            }
            """, line: 3, column: 18),
    RulesDocumentErrorCase(
        what: "a number as .indexOn",
        text: """
            {
              "rules": {
                ".indexOn": 5
              }
            }
            """, line: 3, column: 17),
    RulesDocumentErrorCase(
        what: "a number inside .indexOn",
        text: """
            {
              "rules": {
                ".indexOn": [1]
              }
            }
            """, line: 3, column: 18),
    RulesDocumentErrorCase(what: "no rules key", text: #"{"foo": {}}"#, line: 1, column: 1),
    RulesDocumentErrorCase(what: "an empty object", text: "{}", line: 1, column: 1),
    RulesDocumentErrorCase(what: "an array", text: "[]", line: 1, column: 1),
    RulesDocumentErrorCase(what: "rules that are not an object", text: #"{"rules": true}"#, line: 1, column: 11),
    RulesDocumentErrorCase(
        what: "an extra top-level key",
        text: """
            {
              "rules": {},
              "extra": true
            }
            """, line: 3, column: 3),
    RulesDocumentErrorCase(
        what: "an invalid child key",
        text: """
            {
              "rules": {
                "a#b": {}
              }
            }
            """, line: 3, column: 5),
    RulesDocumentErrorCase(
        what: "an unterminated string", text: #"{"rules": {".read": "auth != null}}"#, line: 1, column: 21),
    // Errors inside an expression point into the string: its line, and the column of the token.
    RulesDocumentErrorCase(
        what: "an unknown variable in an expression",
        text: """
            {
              "rules": {
                ".read": "auth.uid == skies"
              }
            }
            """, line: 3, column: 27),
    RulesDocumentErrorCase(
        what: "a wildcard that does not enclose the rule",
        text: """
            {
              "rules": {
                ".write": "$uid === auth.uid"
              }
            }
            """, line: 3, column: 16),
    // The column counts the document's characters, so escapes before the token count in full.
    RulesDocumentErrorCase(
        what: "an unknown variable after escaped quotes",
        text: #"""
            {
              "rules": {
                ".read": "auth.uid == \"x\" && skies"
              }
            }
            """#, line: 3, column: 36),
]

@Suite("Rules documents")
struct RuleSetTests {
    @Test("refused documents name the line and column", arguments: documentErrors)
    func refused(_ example: RulesDocumentErrorCase) {
        let error = #expect(throws: RuleError.self) { try RuleSet.parse(example.text) }
        #expect(error?.position == SourcePosition(line: example.line, column: example.column), "\(error?.description ?? "")")
    }

    @Test func errorsReadLikeFirebaseMessages() throws {
        let text = """
            {
              "rules": {
                ".read": "auth.uid == skies"
              }
            }
            """
        do {
            _ = try RuleSet.parse(text)
            Issue.record("the document should be refused")
        } catch {
            #expect(error.description.hasPrefix("Line 3, column 27: "))
            #expect(error.message.contains("skies"))
        }
    }

    static let commented = """
        // Rules for the chat app
        {
          /* Everything is private
             unless a rule below says otherwise. */
          "rules": {
            ".read": "auth != null", // signed-in users
            ".write": false,
            "scores": { ".indexOn": ".value" }
          }
        }
        """

    @Test func commentsAreAccepted() throws {
        let rules = try RuleSet.parse(Self.commented)
        #expect(try rules.mayRead("messages", as: user("alice")))
        #expect(try !rules.mayRead("messages", as: anonymous))
    }

    @Test func theSourceIsKeptVerbatim() throws {
        #expect(try RuleSet.parse(Self.commented).source == Self.commented)
    }

    @Test func strictJSONHasNoCommentsAndParses() throws {
        let strict = try RuleSet.parse(Self.commented).strictJSON
        #expect(!strict.contains("//"))
        #expect(!strict.contains("/*"))
        let object = try JSONSerialization.jsonObject(with: Data(strict.utf8)) as? [String: Any]
        let rules = try #require(object?["rules"] as? [String: Any])
        #expect(rules[".read"] as? String == "auth != null")
        #expect(rules[".write"] as? Bool == false)
        #expect((rules["scores"] as? [String: Any])?[".indexOn"] as? String == ".value")
        #expect(try RuleSet.parse(strict).strictJSON == strict)
    }

    @Test func commentMarkersInsideStringsAreText() throws {
        let rules = try RuleSet.parse(
            #"{"rules": {".read": "auth.token.iss == 'https://securetoken.google.com/demo'", ".write": "'/* x */'.length == 7"}}"#)
        let auth = try tree(#"{"uid": "alice", "token": {"iss": "https://securetoken.google.com/demo"}}"#)
        #expect(try rules.mayRead("a", as: auth))
        #expect(try rules.maySet("a", to: "1", as: auth))
        #expect(rules.strictJSON.contains("https://securetoken.google.com/demo"))
    }

    @Test func theTreeMirrorsTheDocument() throws {
        let rules = try RuleSet.parse(
            """
            {
              "rules": {
                ".read": "auth != null",
                "users": {
                  "$uid": {
                    ".write": "$uid === auth.uid",
                    ".validate": "newData.hasChildren(['name'])"
                  }
                },
                "dinosaurs": { ".indexOn": ["height", "ratings/pos"] },
                "scores": { ".indexOn": ".value" },
                "public": { ".read": true, ".write": false }
              }
            }
            """)
        #expect(rules.root.read != nil)
        #expect(rules.root.write == nil)
        #expect(rules.root.children.keys.sorted() == ["dinosaurs", "public", "scores", "users"])
        #expect(rules.root.wildcardName == nil)
        let users = try #require(rules.root.children["users"])
        #expect(users.wildcardName == "$uid")
        #expect(users.wildcard?.write != nil)
        #expect(users.wildcard?.validate != nil)
        #expect(users.wildcard?.read == nil)
        #expect(rules.root.children["dinosaurs"]?.indexOn == ["height", "ratings/pos"])
        #expect(rules.root.children["scores"]?.indexOn == [".value"])
        #expect(rules.root.children["public"]?.read?.evaluate(RuleContext()) == true)
        #expect(rules.root.children["public"]?.write?.evaluate(RuleContext()) == false)
    }
}

// MARK: - Access decisions

@Suite("Access decisions")
struct RuleAccessTests {
    @Test func webhookRulesLetOnlyAnonymousCallersWrite() throws {
        let rules = try RuleSet.parse(#"{"rules": {".read": "auth != null", ".write": "auth == null"}}"#)
        let alice = try user("alice")
        #expect(try rules.maySet("hooks/h1", to: #"{"event": "push"}"#, as: anonymous))
        #expect(try !rules.mayRead("hooks", as: anonymous))
        #expect(try rules.mayRead("hooks", as: alice))
        #expect(try !rules.maySet("hooks/h1", to: #"{"event": "push"}"#, as: alice))
    }

    @Test func withoutRulesEverythingIsDenied() throws {
        let empty = try RuleSet.parse(#"{"rules": {}}"#)
        let alice = try user("alice")
        for rules in [RuleSet.denyAll, empty] {
            for auth in [anonymous, alice] {
                #expect(try !rules.mayRead("/", as: auth))
                #expect(try !rules.mayRead("a/b", as: auth))
                #expect(try !rules.maySet("a", to: "1", as: auth))
                #expect(try !rules.maySet("a", to: "null", as: auth, over: tree(#"{"a": 1}"#)))
            }
        }
        let verdict = RuleSet.denyAll.canRead(.root, auth: anonymous, root: .null, now: 0)
        #expect(!verdict.allowed)
        #expect(!verdict.reason.isEmpty)
    }

    @Test func allowAllAllowsEverything() throws {
        #expect(try RuleSet.allowAll.mayRead("a/b", as: anonymous))
        #expect(try RuleSet.allowAll.maySet("a/b", to: #"{"c": true}"#, as: anonymous))
        let verdict = RuleSet.allowAll.canRead(.root, auth: anonymous, root: .null, now: 0)
        #expect(verdict == .allowed)
        #expect(verdict.reason.isEmpty)
    }

    @Test func aReadGrantCoversEverythingBelowIt() throws {
        let rules = try RuleSet.parse(#"{"rules": {"a": {".read": true, "b": {".read": false}}}}"#)
        #expect(try rules.mayRead("a", as: anonymous))
        #expect(try rules.mayRead("a/b", as: anonymous))
        #expect(try rules.mayRead("a/b/c", as: anonymous))
        #expect(try !rules.mayRead("/", as: anonymous))
        #expect(try !rules.mayRead("c", as: anonymous))
    }

    @Test func rulesAreNotFilters() throws {
        let rules = try RuleSet.parse(#"{"rules": {"a": {"b": {".read": true, ".write": true}}}}"#)
        #expect(try !rules.mayRead("a", as: anonymous))
        #expect(try !rules.mayRead("/", as: anonymous))
        #expect(try rules.mayRead("a/b", as: anonymous))
        #expect(try rules.mayRead("a/b/c", as: anonymous))
        #expect(try !rules.maySet("a", to: #"{"b": 1}"#, as: anonymous))
        #expect(try rules.maySet("a/b", to: "1", as: anonymous))
    }

    @Test func readRulesSeeTheDataAtTheirLocation() throws {
        let rules = try RuleSet.parse(#"{"rules": {"messages": {"$m": {".read": "data.child('public').val() === true"}}}}"#)
        let data = try tree(#"{"messages": {"m1": {"public": true}, "m2": {"public": false}}}"#)
        #expect(try rules.mayRead("messages/m1", as: anonymous, in: data))
        #expect(try !rules.mayRead("messages/m2", as: anonymous, in: data))
        #expect(try !rules.mayRead("messages/m3", as: anonymous, in: data))
        #expect(try !rules.mayRead("messages", as: anonymous, in: data))
    }

    @Test func aWriteGrantCoversEverythingBelowIt() throws {
        let rules = try RuleSet.parse(#"{"rules": {"a": {".write": true, "b": {".write": false}}}}"#)
        #expect(try rules.maySet("a/b", to: "1", as: anonymous))
        #expect(try rules.maySet("a", to: #"{"b": 1}"#, as: anonymous))
        #expect(try !rules.maySet("c", to: "1", as: anonymous))
    }

    @Test func validateRunsOnEveryWrittenDescendant() throws {
        let rules = try RuleSet.parse(
            #"{"rules": {"users": {"$uid": {".write": "$uid === auth.uid", "name": {".validate": "newData.isString()"}}}}}"#)
        let alice = try user("alice")
        #expect(try !rules.maySet("users/alice", to: #"{"name": 5}"#, as: alice))
        #expect(try rules.maySet("users/alice", to: #"{"name": "Alice"}"#, as: alice))
        #expect(try !rules.maySet("users/alice/name", to: "5", as: alice))
        #expect(try rules.maySet("users/alice", to: #"{"age": 5}"#, as: alice))
    }

    @Test func validateDoesNotRunWhereDataIsDeleted() throws {
        let rules = try RuleSet.parse(
            #"{"rules": {".write": true, "a": {".validate": false}, "b": {"c": {".validate": "newData.isString()"}}}}"#)
        #expect(try rules.maySet("a", to: "null", as: anonymous, over: tree(#"{"a": 1}"#)))
        #expect(try !rules.maySet("a", to: "1", as: anonymous))
        #expect(try rules.maySet("b", to: "null", as: anonymous, over: tree(#"{"b": {"c": "x"}}"#)))
        #expect(try rules.maySet("b/c", to: "null", as: anonymous, over: tree(#"{"b": {"c": "x"}, "d": 1}"#)))
    }

    @Test func validateRunsOnAncestorsThatWillStillExist() throws {
        let rules = try RuleSet.parse(
            #"{"rules": {".write": true, "users": {"$uid": {".validate": "newData.hasChildren(['name', 'age'])"}}}}"#)
        let complete = try tree(#"{"users": {"alice": {"name": "Alice", "age": 30}}}"#)
        #expect(try !rules.maySet("users/alice/name", to: #""Alice""#, as: anonymous))
        #expect(try rules.maySet("users/alice/name", to: #""Alice""#, as: anonymous, over: tree(#"{"users": {"alice": {"age": 30}}}"#)))
        #expect(try !rules.maySet("users/alice/age", to: "null", as: anonymous, over: complete))
        #expect(try rules.maySet("users/alice", to: "null", as: anonymous, over: complete))
    }

    @Test func anOtherWildcardRefusesUnknownChildren() throws {
        let rules = try RuleSet.parse(
            """
            {
              "rules": {
                "users": {
                  "$uid": {
                    ".write": true,
                    "name": { ".validate": "newData.isString()" },
                    "$other": { ".validate": false }
                  }
                }
              }
            }
            """)
        #expect(try rules.maySet("users/alice", to: #"{"name": "Alice"}"#, as: anonymous))
        #expect(try !rules.maySet("users/alice", to: #"{"name": "Alice", "admin": true}"#, as: anonymous))
        #expect(try !rules.maySet("users/alice/admin", to: "true", as: anonymous))
        #expect(try rules.maySet("users/alice/name", to: #""Alicia""#, as: anonymous))
    }

    // The overlapping example of Firebase's rules documentation.
    @Test func aNamedChildTakesPrecedenceOverTheWildcard() throws {
        let rules = try RuleSet.parse(
            """
            {
              "rules": {
                "messages": {
                  "$message": { ".read": true, ".write": true },
                  "message1": { ".read": false, ".write": false }
                }
              }
            }
            """)
        #expect(try !rules.maySet("messages/message1", to: #""hi""#, as: anonymous))
        #expect(try rules.maySet("messages/message2", to: #""hi""#, as: anonymous))
        #expect(try !rules.mayRead("messages/message1", as: anonymous))
        #expect(try rules.mayRead("messages/message2", as: anonymous))
    }

    @Test func aWildcardCapturesTheKey() throws {
        let rules = try RuleSet.parse(
            #"{"rules": {"users": {"$uid": {".read": "$uid === auth.uid", ".write": "$uid === auth.uid"}}}}"#)
        let alice = try user("alice")
        let bob = try user("bob")
        #expect(try rules.maySet("users/alice", to: #"{"name": "Alice"}"#, as: alice))
        #expect(try !rules.maySet("users/alice", to: #"{"name": "Alice"}"#, as: bob))
        #expect(try !rules.maySet("users/alice", to: #"{"name": "Alice"}"#, as: anonymous))
        #expect(try rules.mayRead("users/alice", as: alice))
        #expect(try rules.mayRead("users/alice/private/diary", as: alice))
        #expect(try !rules.mayRead("users/bob", as: alice))
        #expect(try !rules.mayRead("users", as: alice))
    }

    @Test func nestedWildcardsCaptureInOrder() throws {
        let rules = try RuleSet.parse(
            #"{"rules": {"rooms": {"$room": {"$message": {".write": "$room == 'lobby' && $message.beginsWith('m')"}}}}}"#)
        #expect(try rules.maySet("rooms/lobby/m1", to: #""hi""#, as: anonymous))
        #expect(try !rules.maySet("rooms/attic/m1", to: #""hi""#, as: anonymous))
        #expect(try !rules.maySet("rooms/lobby/x1", to: #""hi""#, as: anonymous))
    }

    @Test func validatedDescendantsSeeTheirOwnCaptures() throws {
        let rules = try RuleSet.parse(
            #"{"rules": {".write": true, "users": {"$uid": {"name": {".validate": "newData.val() === $uid"}}}}}"#)
        #expect(try rules.maySet("users", to: #"{"alice": {"name": "alice"}, "bob": {"name": "bob"}}"#, as: anonymous))
        #expect(try !rules.maySet("users", to: #"{"alice": {"name": "alice"}, "bob": {"name": "alice"}}"#, as: anonymous))
    }

    @Test func newDataIsTheMergedFutureState() throws {
        let rules = try RuleSet.parse(
            #"{"rules": {".write": true, "a": {".validate": "newData.child('b').val() === newData.child('c').val()"}}}"#)
        #expect(try rules.mayUpdate("/", with: [("a/b", "1"), ("a/c", "1")], as: anonymous))
        #expect(try !rules.mayUpdate("/", with: [("a/b", "1")], as: anonymous))
        #expect(try rules.mayUpdate("/", with: [("a/b", "1")], as: anonymous, over: tree(#"{"a": {"c": 1}}"#)))
        #expect(try rules.mayUpdate("a", with: [("b", "2"), ("c", "2")], as: anonymous, over: tree(#"{"a": {"b": 1, "c": 1}}"#)))

        let profile = try RuleSet.parse(
            """
            {
              "rules": {
                ".write": true,
                "profile": {
                  "name": { ".validate": "newData.parent().child('nameLower').val() === newData.val().toLowerCase()" }
                }
              }
            }
            """)
        #expect(try profile.mayUpdate("profile", with: [("name", #""Alice""#), ("nameLower", #""alice""#)], as: anonymous))
        #expect(try !profile.mayUpdate("profile", with: [("name", #""Alice""#)], as: anonymous))
    }

    @Test func aMultiPathWriteIsAllowedWholeOrNotAtAll() throws {
        let rules = try RuleSet.parse(
            """
            {
              "rules": {
                "open": { ".write": true },
                "closed": { ".write": false },
                "numbers": { ".write": true, "$n": { ".validate": "newData.isNumber()" } }
              }
            }
            """)
        #expect(try rules.mayUpdate("/", with: [("open/x", "1")], as: anonymous))
        #expect(try !rules.mayUpdate("/", with: [("open/x", "1"), ("closed/y", "2")], as: anonymous))
        #expect(try rules.mayUpdate("numbers", with: [("a", "1"), ("b", "2")], as: anonymous))
        #expect(try !rules.mayUpdate("numbers", with: [("a", "1"), ("b", #""two""#)], as: anonymous))
    }

    @Test func dataIsTheValueBeforeTheWrite() throws {
        let rules = try RuleSet.parse(
            """
            {
              "rules": {
                "posts": { "$id": { ".write": "!data.exists()" } },
                "trash": { "$id": { ".write": "data.exists() && !newData.exists()" } }
              }
            }
            """)
        let existing = try tree(#"{"posts": {"p1": {"title": "Old"}}, "trash": {"t1": true}}"#)
        #expect(try rules.maySet("posts/p2", to: #"{"title": "New"}"#, as: anonymous, over: existing))
        #expect(try !rules.maySet("posts/p1", to: #"{"title": "New"}"#, as: anonymous, over: existing))
        #expect(try !rules.maySet("posts/p1", to: "null", as: anonymous, over: existing))
        #expect(try rules.maySet("trash/t1", to: "null", as: anonymous, over: existing))
        #expect(try !rules.maySet("trash/t1", to: "false", as: anonymous, over: existing))
        #expect(try !rules.maySet("trash/t2", to: "true", as: anonymous, over: existing))
    }

    @Test func rootIsTheDatabaseBeforeTheWrite() throws {
        let rules = try RuleSet.parse(#"{"rules": {"counter": {".write": "root.child('counter').val() + 1 === newData.val()"}}}"#)
        #expect(try rules.maySet("counter", to: "2", as: anonymous, over: tree(#"{"counter": 1}"#)))
        #expect(try !rules.maySet("counter", to: "3", as: anonymous, over: tree(#"{"counter": 1}"#)))
        #expect(try !rules.maySet("counter", to: "2", as: anonymous, over: tree(#"{"counter": 2}"#)))
    }

    @Test func validateCanCompareWithNow() throws {
        let rules = try RuleSet.parse(
            #"{"rules": {".write": true, "stamp": {".validate": "newData.isNumber() && newData.val() <= now"}}}"#)
        #expect(try rules.maySet("stamp", to: "999", as: anonymous, now: 1000))
        #expect(try rules.maySet("stamp", to: "1000", as: anonymous, now: 1000))
        #expect(try !rules.maySet("stamp", to: "1001", as: anonymous, now: 1000))
    }

    @Test func readRulesCanRequireALimit() throws {
        let rules = try RuleSet.parse(#"{"rules": {"items": {".read": "query.limitToFirst <= 100"}}}"#)
        var query = RuleQuery()
        query.limitToFirst = 50
        #expect(try rules.mayRead("items", as: anonymous, query: query))
        query.limitToFirst = 500
        #expect(try !rules.mayRead("items", as: anonymous, query: query))
        #expect(try !rules.mayRead("items", as: anonymous))
    }

    @Test func aRuleThatFailsDenies() throws {
        let rules = try RuleSet.parse(#"{"rules": {".read": "auth.uid.length > 0", ".write": "root.parent().exists()"}}"#)
        #expect(try !rules.mayRead("a", as: anonymous))
        #expect(try rules.mayRead("a", as: user("alice")))
        #expect(try !rules.maySet("a", to: "1", as: user("alice")))
    }
}

import HearthCore
import Testing

// Rule expressions one at a time: every operator, method and variable of the rules language
// (reference §3.2-3.5). The live-recorded cases are in RuleFixtureTests; these go further.

/// What compiling a rule and then evaluating it gives.
enum RuleOutcome: Sendable, Equatable, CustomStringConvertible {
    /// Refused when compiled: Firebase would refuse to deploy the rule.
    case invalid
    /// Compiled, but evaluation failed, so the rule denies.
    case fails
    case isTrue
    case isFalse

    var description: String {
        switch self {
        case .invalid: return "invalid"
        case .fails: return "fails at run time"
        case .isTrue: return "true"
        case .isFalse: return "false"
        }
    }
}

// MARK: - Helpers

private func json(_ text: String) throws -> Node {
    try JSONParser.parse(Array(text.utf8)).node
}

/// Compiles `rule` and evaluates it in `context`.
private func outcome(
    of rule: String, _ kind: RuleExpression.Kind = .read, wildcards: [String] = [], in context: RuleContext = RuleContext()
) -> RuleOutcome {
    let expression: RuleExpression
    do {
        expression = try RuleExpression.compile(rule, kind: kind, wildcards: wildcards)
    } catch {
        return .invalid
    }
    switch expression.evaluate(context) {
    case nil: return .fails
    case true?: return .isTrue
    case false?: return .isFalse
    }
}

/// The error compiling `rule` gives, or nil if it compiles.
private func compileError(_ rule: String, _ kind: RuleExpression.Kind = .read, wildcards: [String] = []) -> RuleError? {
    do {
        _ = try RuleExpression.compile(rule, kind: kind, wildcards: wildcards)
        return nil
    } catch {
        return error
    }
}

/// A signed-in user with a Firebase ID token.
private let bobJSON = #"""
    {"uid": "bob", "provider": "password",
     "token": {"email": "bob@example.com", "email_verified": true, "isAdmin": true,
               "firebase": {"sign_in_provider": "password", "identities": {"email": ["bob@example.com"]}}}}
    """#

/// The database the snapshot tables read.
private let databaseJSON = #"""
    {"users": {"alice": {"name": "Alice", "age": 30, "score": 2.5, "admin": true},
               "bob": {"name": "Bob"}},
     "letters": "abc"}
    """#

/// `databaseJSON`, plus `ranked` (priority 5) and `labelled` (priority "high").
private func database() throws -> Node {
    try json(databaseJSON)
        .setting(Path(keys: ["ranked"]), to: .prioritized(.string("x"), .number(5)))
        .setting(Path(keys: ["labelled"]), to: .prioritized(.string("y"), .string("high")))
}

/// Bob reading `/users/alice` of `database()` at `now` = 1 500 000 000 000.
private func aliceContext() throws -> RuleContext {
    RuleContext(
        auth: try json(bobJSON), root: try database(), location: Path(keys: ["users", "alice"]), now: 1_500_000_000_000)
}

// MARK: - Tables

private let literals: [(String, RuleOutcome)] = [
    ("true", .isTrue),
    ("false", .isFalse),
    ("null == null", .isTrue),
    ("1 == 1.0", .isTrue),
    (".5 == 0.5", .isTrue),
    ("1e3 == 1000", .isTrue),
    ("2.5e-1 == 0.25", .isTrue),
    (#"'a' == "a""#, .isTrue),
    (#"'it\'s' == "it's""#, .isTrue),
    (#"'\u0041' == 'A'"#, .isTrue),
    (#"'tab\there'.length == 8"#, .isTrue),
    ("-5 < 0", .isTrue),
    // A rule must be a boolean.
    ("7", .invalid),
    ("'yes'", .invalid),
    ("null", .invalid),
]

private let equality: [(String, RuleOutcome)] = [
    ("1 == 1", .isTrue),
    ("'abc' === 'abc'", .isTrue),
    ("'abc' !== 'abd'", .isTrue),
    // No type coercion: == is ===.
    ("'1' == 1", .isFalse),
    ("'1' === 1", .isFalse),
    ("1 != '1'", .isTrue),
    ("1 !== '1'", .isTrue),
    ("true == 1", .isFalse),
    ("0 == false", .isFalse),
    ("null == false", .isFalse),
    ("root.child('users/alice/age').val() == 30", .isTrue),
    ("root.child('users/alice/age').val() == '30'", .isFalse),
    // Strings are equal when their code units are: composed é is not e + combining accent.
    (#"'\u00e9' == 'e\u0301'"#, .isFalse),
]

private let concatenation: [(String, RuleOutcome)] = [
    ("1 + 2 == 3", .isTrue),
    ("'a' + 'b' == 'ab'", .isTrue),
    ("'a' + 1 == 'a1'", .isTrue),
    ("1 + 'a' == '1a'", .isTrue),
    ("'one' + 1 == 'one1'", .isTrue),
    ("'a' + 1.5 == 'a1.5'", .isTrue),
    ("1 + 2 + '3' == '33'", .isTrue),
    ("'1' + 2 + 3 == '123'", .isTrue),
    // Numbers are written as JavaScript writes them.
    ("'' + 100 == '100'", .isTrue),
    ("'' + 0.1 == '0.1'", .isTrue),
    ("'' + -2 == '-2'", .isTrue),
    ("'' + 1e21 == '1e+21'", .isTrue),
    ("'' + 1.5e-7 == '1.5e-7'", .isTrue),
    ("0.1 + 0.2 == 0.3", .isFalse),
    // Division by zero is NaN in rules (live: (1/0 + '') == 'NaN').
    ("'' + 1/0 == 'NaN'", .isTrue),
    ("'' + 0/0 == 'NaN'", .isTrue),
    ("1/0 == 1/0", .isFalse),
    ("root.child('users/alice/name').val() + '!' == 'Alice!'", .isTrue),
    ("root.child('nothing').val() + 'x' == 'nullx'", .fails),
]

private let arithmetic: [(String, RuleOutcome)] = [
    ("7 - 2 == 5", .isTrue),
    ("3 * 4 == 12", .isTrue),
    ("7 / 2 == 3.5", .isTrue),
    ("7 % 3 == 1", .isTrue),
    ("-7 % 3 == -1", .isTrue),
    ("5.5 % 2 == 1.5", .isTrue),
    ("1 + 2 * 3 == 7", .isTrue),
    ("(1 + 2) * 3 == 9", .isTrue),
    ("10 - 2 - 3 == 5", .isTrue),
    ("12 / 3 / 2 == 2", .isTrue),
    ("2 * 3 % 4 == 2", .isTrue),
    ("-(2 + 3) == -5", .isTrue),
    ("- -2 == 2", .isTrue),
    ("'' + 5 % 0 == 'NaN'", .isTrue),
    ("root.child('users/alice/age').val() * 2 == 60", .isTrue),
    ("root.child('users/alice/score').val() * 2 == 5", .isTrue),
    ("root.child('users/alice/age').val() - 1 == 29", .isTrue),
    // Arithmetic on anything but numbers (strings except with +, booleans, null) fails.
    ("root.child('users/alice/name').val() - 1 == 0", .fails),
    ("root.child('users/alice/name').val() * 1 == 0", .fails),
    ("root.child('users/alice/admin').val() + 1 == 2", .fails),
    ("root.child('nothing').val() + 1 == 1", .fails),
    ("-root.child('users/alice/name').val() == 0", .fails),
]

private let comparisons: [(String, RuleOutcome)] = [
    ("1 < 2", .isTrue),
    ("2 > 1", .isTrue),
    ("2 <= 1", .isFalse),
    ("1.5 >= 1.5", .isTrue),
    ("-1 < 0", .isTrue),
    ("2 < 10", .isTrue),
    ("'2' < '10'", .isFalse),
    ("'a' < 'b'", .isTrue),
    ("'B' < 'a'", .isTrue),
    ("'abc' < 'abd'", .isTrue),
    ("'ab' < 'abc'", .isTrue),
    ("'' < 'a'", .isTrue),
    ("'b' >= 'b'", .isTrue),
    ("'b' <= 'a'", .isFalse),
    // UTF-16 order: a surrogate pair (😀) sorts before U+FF5E (～), unlike code-point order.
    ("'\u{1F600}' < '\u{FF5E}'", .isTrue),
    ("'\u{FF5E}' < '\u{1F600}'", .isFalse),
    ("1/0 > 2", .isFalse),
    ("1/0 < 2", .isFalse),
    ("root.child('users/alice/age').val() >= 18", .isTrue),
    ("root.child('users/alice/name').val() > 'Aaron'", .isTrue),
    // Mixed types fail when evaluated...
    ("root.child('users/alice/age').val() < 'a'", .fails),
    ("root.child('users/alice/name').val() > 1", .fails),
    ("root.child('users/alice/admin').val() < 1", .fails),
    ("root.child('nothing').val() < 1", .fails),
    // ...and booleans and snapshots cannot be ordered at all.
    ("true < false", .invalid),
    ("root < 1", .invalid),
]

private let logic: [(String, RuleOutcome)] = [
    ("true && true", .isTrue),
    ("true && false", .isFalse),
    ("false || true", .isTrue),
    ("false || false", .isFalse),
    ("!false", .isTrue),
    ("!true", .isFalse),
    ("!!true", .isTrue),
    ("!(1 < 2)", .isFalse),
    ("true || false && false", .isTrue),
    ("(true || false) && false", .isFalse),
    // Short-circuit: the right side is not evaluated, so its failure does not count.
    ("false && auth.nothing.length > 0", .isFalse),
    ("true || auth.nothing.length > 0", .isTrue),
    ("true && auth.nothing.length > 0", .fails),
    ("false || auth.nothing.length > 0", .fails),
    ("auth.nothing.length > 0 || true", .fails),
    ("auth.nothing.length > 0 && false", .fails),
    ("!(auth.nothing.length > 0)", .fails),
    // The conditional operator.
    ("true ? true : false", .isTrue),
    ("false ? false : true", .isTrue),
    ("1 > 2 ? false : true", .isTrue),
    ("true ? false : true ? true : true", .isFalse),
    ("true ? true : auth.nothing.length > 0", .isTrue),
    ("false ? auth.nothing.length > 0 : true", .isTrue),
    ("auth.nothing.length > 0 ? true : true", .fails),
    ("true ? 1 : 2", .invalid),
    ("true ? 'yes' : false", .invalid),
]

private let snapshots: [(String, RuleOutcome)] = [
    // val(), child(), exists()
    ("data.exists()", .isTrue),
    ("data.child('name').val() == 'Alice'", .isTrue),
    ("data.child('name').val().length == 5", .isTrue),
    ("data.child('missing').exists()", .isFalse),
    ("data.child('missing').val() == null", .isTrue),
    ("root.child('users/alice/age').val() == 30", .isTrue),
    ("root.child('users').child('alice').child('age').val() == 30", .isTrue),
    ("root.child('users/' + 'alice').exists()", .isTrue),
    ("root.child('letters').val() == 'abc'", .isTrue),
    ("root.child('letters/a').exists()", .isFalse),
    // parent()
    ("data.parent().hasChild('bob')", .isTrue),
    ("data.parent().parent().hasChild('users')", .isTrue),
    ("data.child('name').parent().child('age').val() == 30", .isTrue),
    ("data.parent().parent().parent().exists()", .fails),
    ("root.parent().exists()", .fails),
    // hasChild(), hasChildren()
    ("data.hasChild('name')", .isTrue),
    ("data.hasChild('missing')", .isFalse),
    ("root.hasChild('users/bob/name')", .isTrue),
    ("data.hasChildren()", .isTrue),
    ("data.child('name').hasChildren()", .isFalse),
    ("data.child('missing').hasChildren()", .isFalse),
    ("data.hasChildren(['name', 'age'])", .isTrue),
    ("data.hasChildren(['name', 'missing'])", .isFalse),
    ("root.hasChildren(['users/alice', 'users/bob/name'])", .isTrue),
    ("data.hasChildren([])", .invalid),
    ("data.hasChildren('name', 'age')", .invalid),
    ("data.hasChildren('name')", .invalid),
    ("data.hasChildren(['name', 1])", .invalid),
    // Type tests
    ("data.child('name').isString()", .isTrue),
    ("data.child('age').isNumber()", .isTrue),
    ("data.child('score').isNumber()", .isTrue),
    ("data.child('admin').isBoolean()", .isTrue),
    ("data.child('name').isNumber()", .isFalse),
    ("data.child('age').isString()", .isFalse),
    ("data.child('admin').isString()", .isFalse),
    ("data.child('age').isBoolean()", .isFalse),
    ("data.isString()", .isFalse),
    ("data.child('missing').isString()", .isFalse),
    ("data.child('missing').isNumber()", .isFalse),
    ("data.child('missing').isBoolean()", .isFalse),
    // getPriority(); a priority does not change the value or its type
    ("root.child('ranked').getPriority() == 5", .isTrue),
    ("root.child('labelled').getPriority() == 'high'", .isTrue),
    ("root.child('ranked').val() == 'x'", .isTrue),
    ("root.child('ranked').isString()", .isTrue),
    ("data.getPriority() == null", .isTrue),
    ("data.child('missing').getPriority() == null", .isTrue),
    // What a snapshot is not
    ("data == null", .invalid),
    ("data.child('name') == 'Alice'", .invalid),
    ("data.name == 'Alice'", .invalid),
    ("data.exists", .invalid),
    ("data.val().name == 'Alice'", .invalid),
    ("data.child()", .invalid),
    ("data.child('a', 'b').exists()", .invalid),
    ("data.child(1).exists()", .invalid),
    ("data.exists(1)", .invalid),
    ("data.size() > 0", .invalid),
]

private let strings: [(String, RuleOutcome)] = [
    // length counts UTF-16 code units
    ("'hello'.length == 5", .isTrue),
    ("''.length == 0", .isTrue),
    ("'\u{E9}'.length == 1", .isTrue),
    ("'日本'.length == 2", .isTrue),
    ("'\u{1F600}'.length == 2", .isTrue),
    // contains, beginsWith, endsWith
    ("'hello'.contains('ell')", .isTrue),
    ("'hello'.contains('xyz')", .isFalse),
    ("'hello'.contains('')", .isTrue),
    ("'Hello'.contains('h')", .isFalse),
    ("'hello'.beginsWith('he')", .isTrue),
    ("'hello'.beginsWith('lo')", .isFalse),
    ("'hello'.beginsWith('')", .isTrue),
    ("'hello'.endsWith('lo')", .isTrue),
    ("'hello'.endsWith('he')", .isFalse),
    // replace replaces every occurrence, literally
    ("'a-b-c'.replace('-', '+') == 'a+b+c'", .isTrue),
    ("'aaa'.replace('a', 'b') == 'bbb'", .isTrue),
    ("'abcabc'.replace('bc', '') == 'aa'", .isTrue),
    ("'a.b'.replace('.', '/') == 'a/b'", .isTrue),
    ("'hello'.replace('xyz', '!') == 'hello'", .isTrue),
    // case
    ("'MiXeD'.toLowerCase() == 'mixed'", .isTrue),
    ("'MiXeD'.toUpperCase() == 'MIXED'", .isTrue),
    ("'straße'.toUpperCase() == 'STRASSE'", .isTrue),
    // matches
    ("'abc'.matches(/^a/)", .isTrue),
    ("'abc'.matches(/^b/)", .isFalse),
    ("'ABC'.matches(/^abc$/i)", .isTrue),
    ("'abc'.matches('abc')", .invalid),
    ("'abc'.matches(/a/g)", .invalid),
    ("'abc'.matches(/(/)", .invalid),
    // chains, and values read from the database
    ("' Hi '.replace(' ', '').toLowerCase() == 'hi'", .isTrue),
    ("root.child('users/alice/name').val().toLowerCase().beginsWith('al')", .isTrue),
    ("root.child('users/alice/name').val().matches(/^[A-Z][a-z]+$/)", .isTrue),
    // methods of numbers and null fail; unknown methods and wrong arities are invalid
    ("root.child('users/alice/age').val().contains('3')", .fails),
    ("root.child('users/alice/age').val().length == 2", .fails),
    ("root.child('nothing').val().length == 0", .fails),
    ("root.child('nothing').val().matches(/x/)", .fails),
    ("'abc'.size == 3", .invalid),
    ("'abc'.trim() == 'abc'", .invalid),
    ("'abc'.contains()", .invalid),
    ("'abc'.contains('a', 'b')", .invalid),
    ("'abc'.replace('a') == 'a'", .invalid),
    ("'abc'.toLowerCase('x') == 'abc'", .invalid),
    ("'abc'.beginsWith(1)", .invalid),
]

private let signedIn: [(String, RuleOutcome)] = [
    ("auth != null", .isTrue),
    ("auth.uid == 'bob'", .isTrue),
    ("auth.uid.length == 3", .isTrue),
    ("auth.provider == 'password'", .isTrue),
    ("auth.token.email == 'bob@example.com'", .isTrue),
    ("auth.token.email.endsWith('@example.com')", .isTrue),
    ("auth.token.email_verified == true", .isTrue),
    ("auth.token.isAdmin === true", .isTrue),
    ("auth.token.firebase.sign_in_provider == 'password'", .isTrue),
    ("auth.token.firebase.identities.email[0] == 'bob@example.com'", .isTrue),
    ("auth.token['email'] == 'bob@example.com'", .isTrue),
    ("auth['token']['isAdmin'] == true", .isTrue),
    ("auth.token.missing == null", .isTrue),
    ("auth.token.missing.deeper == null", .isTrue),
    ("auth.token.missing.length > 0", .fails),
    ("auth.token.email_verified.length > 0", .fails),
]

private let anonymous: [(String, RuleOutcome)] = [
    ("auth == null", .isTrue),
    ("auth.uid == null", .isTrue),
    ("auth.uid != 'bob'", .isTrue),
    ("auth.token.email == null", .isTrue),
    ("auth.uid.length > 0", .fails),
    ("auth.token.email.endsWith('@example.com')", .fails),
    ("root.child('users/' + auth.uid).exists()", .fails),
]

/// A rule under `$wildcards`: their names, the keys they captured, and the outcome.
private let wildcardCases: [(String, [String], [String], RuleOutcome)] = [
    ("$uid == 'alice'", ["$uid"], ["alice"], .isTrue),
    ("$uid === 'bob'", ["$uid"], ["alice"], .isFalse),
    ("$uid.length == 5", ["$uid"], ["alice"], .isTrue),
    ("$uid.beginsWith('al')", ["$uid"], ["alice"], .isTrue),
    ("root.child('users/' + $uid + '/name').val() == 'Alice'", ["$uid"], ["alice"], .isTrue),
    ("$room + '/' + $message == 'lobby/m1'", ["$room", "$message"], ["lobby", "m1"], .isTrue),
    ("$room == 'lobby' && $message.beginsWith('m')", ["$room", "$message"], ["lobby", "m1"], .isTrue),
    // A capture is always a string: compare it with a string, or turn the number into one.
    ("$id == 1", ["$id"], ["1"], .isFalse),
    ("$id == '1'", ["$id"], ["1"], .isTrue),
    ("$id == 1 + ''", ["$id"], ["1"], .isTrue),
    // Only wildcards that enclose the rule exist.
    ("$other == 'x'", ["$uid"], ["alice"], .invalid),
    ("$uid == 'alice'", [], [], .invalid),
]

// MARK: - Tests

@Suite("Rule expressions")
struct RuleExpressionTests {
    @Test("literals", arguments: literals)
    func literal(_ rule: String, _ expected: RuleOutcome) {
        #expect(outcome(of: rule) == expected)
    }

    @Test("== and === never coerce", arguments: equality)
    func equal(_ rule: String, _ expected: RuleOutcome) throws {
        let context = try aliceContext()
        #expect(outcome(of: rule, in: context) == expected)
    }

    @Test("+ adds numbers and concatenates strings", arguments: concatenation)
    func add(_ rule: String, _ expected: RuleOutcome) throws {
        let context = try aliceContext()
        #expect(outcome(of: rule, in: context) == expected)
    }

    @Test("- * / % on numbers", arguments: arithmetic)
    func compute(_ rule: String, _ expected: RuleOutcome) throws {
        let context = try aliceContext()
        #expect(outcome(of: rule, in: context) == expected)
    }

    @Test("< <= > >= order numbers, and strings by UTF-16", arguments: comparisons)
    func compare(_ rule: String, _ expected: RuleOutcome) throws {
        let context = try aliceContext()
        #expect(outcome(of: rule, in: context) == expected)
    }

    @Test("&& || ! and ?: short-circuit", arguments: logic)
    func logical(_ rule: String, _ expected: RuleOutcome) {
        #expect(outcome(of: rule) == expected)
    }

    @Test("snapshot methods", arguments: snapshots)
    func snapshot(_ rule: String, _ expected: RuleOutcome) throws {
        let context = try aliceContext()
        #expect(outcome(of: rule, in: context) == expected)
    }

    @Test("string members and methods", arguments: strings)
    func string(_ rule: String, _ expected: RuleOutcome) throws {
        let context = try aliceContext()
        #expect(outcome(of: rule, in: context) == expected)
    }

    @Test("auth when signed in with an ID token", arguments: signedIn)
    func authSignedIn(_ rule: String, _ expected: RuleOutcome) throws {
        let context = RuleContext(auth: try json(bobJSON))
        #expect(outcome(of: rule, in: context) == expected)
    }

    @Test("auth when anonymous", arguments: anonymous)
    func authAnonymous(_ rule: String, _ expected: RuleOutcome) {
        #expect(outcome(of: rule, in: RuleContext(auth: .null)) == expected)
    }

    @Test("$wildcards", arguments: wildcardCases)
    func wildcard(_ rule: String, _ names: [String], _ keys: [String], _ expected: RuleOutcome) throws {
        let context = RuleContext(root: try database(), wildcards: keys)
        #expect(outcome(of: rule, wildcards: names, in: context) == expected)
    }

    @Test func nowIsTheServerTime() {
        let context = RuleContext(now: 1_500_000_000_000)
        #expect(outcome(of: "now == 1500000000000", in: context) == .isTrue)
        #expect(outcome(of: "now > 0", in: context) == .isTrue)
        #expect(outcome(of: "now - 600000 < now", in: context) == .isTrue)
        #expect(outcome(of: "now + '' == '1500000000000'", in: context) == .isTrue)
        #expect(outcome(of: "now.length > 0", in: context) == .invalid)
    }

    // MARK: root, data and newData

    /// Alice renames herself: the rules at /users/alice see both versions of the tree.
    func renameContext() throws -> RuleContext {
        let before = try json(#"{"users": {"alice": {"name": "Alice"}, "bob": {"name": "Bob"}}}"#)
        let after = before.setting(Path(keys: ["users", "alice", "name"]), to: .string("Alicia"))
        return RuleContext(root: before, newRoot: after, location: Path(keys: ["users", "alice"]))
    }

    @Test func dataIsTheCurrentValueAtTheRulesLocation() throws {
        let context = try renameContext()
        for kind in [RuleExpression.Kind.read, .write, .validate] {
            #expect(outcome(of: "data.child('name').val() == 'Alice'", kind, in: context) == .isTrue)
            #expect(outcome(of: "data.parent().child('bob/name').val() == 'Bob'", kind, in: context) == .isTrue)
        }
    }

    @Test func rootIsTheCurrentDatabase() throws {
        let context = try renameContext()
        for kind in [RuleExpression.Kind.read, .write, .validate] {
            #expect(outcome(of: "root.child('users/alice/name').val() == 'Alice'", kind, in: context) == .isTrue)
        }
    }

    @Test func newDataIsTheValueAfterTheWrite() throws {
        let context = try renameContext()
        for kind in [RuleExpression.Kind.write, .validate] {
            #expect(outcome(of: "newData.child('name').val() == 'Alicia'", kind, in: context) == .isTrue)
            #expect(outcome(of: "newData.child('name').val() != data.child('name').val()", kind, in: context) == .isTrue)
            #expect(outcome(of: "newData.parent().child('bob/name').val() == 'Bob'", kind, in: context) == .isTrue)
            #expect(
                outcome(of: "newData.parent().parent().child('users/alice/name').val() == 'Alicia'", kind, in: context)
                    == .isTrue)
        }
    }

    @Test func newDataDoesNotExistInReadRules() {
        #expect(compileError("newData.exists()", .read) != nil)
        #expect(compileError("data.exists() || newData.exists()", .read) != nil)
    }

    // MARK: query

    @Test func queryLimitsCanBeRequired() {
        let rule = "query.limitToFirst <= 100"
        var query = RuleQuery()
        query.limitToFirst = 50
        #expect(outcome(of: rule, in: RuleContext(query: query)) == .isTrue)
        query.limitToFirst = 500
        #expect(outcome(of: rule, in: RuleContext(query: query)) == .isFalse)
        // No limit: null <= 100 fails, so an unbounded read is denied.
        query.limitToFirst = nil
        #expect(outcome(of: rule, in: RuleContext(query: query)) == .fails)
    }

    @Test func queryReportsOrderingAndBounds() {
        var query = RuleQuery()
        query.orderByKey = false
        query.orderByChild = "age"
        query.startAt = .int(18)
        query.endAt = .int(65)
        query.limitToLast = 10
        let context = RuleContext(query: query)
        #expect(outcome(of: "query.orderByChild == 'age' && query.startAt >= 18", in: context) == .isTrue)
        #expect(outcome(of: "query.endAt == 65 && query.equalTo == null", in: context) == .isTrue)
        #expect(outcome(of: "query.limitToLast == 10 && query.limitToFirst == null", in: context) == .isTrue)
        #expect(outcome(of: "query.orderByKey == false && query.orderByValue == false", in: context) == .isTrue)

        var byPriority = RuleQuery()
        byPriority.orderByKey = false
        byPriority.orderByPriority = true
        byPriority.equalTo = .string("x")
        let priorityContext = RuleContext(query: byPriority)
        #expect(outcome(of: "query.orderByPriority == true && query.equalTo == 'x'", in: priorityContext) == .isTrue)
    }

    @Test func queryExistsOnlyInReadRules() {
        #expect(compileError("query.limitToFirst <= 100", .read) == nil)
        #expect(compileError("query.limitToFirst <= 100", .write) != nil)
        #expect(compileError("query.limitToFirst <= 100", .validate) != nil)
    }

    @Test("query has only its parameters", arguments: [
        "query == null", "query.limit <= 100", "query.limitToFirst() <= 100", "query.orderByChild.length > 0 || query",
    ])
    func queryIsNotAValue(_ rule: String) {
        #expect(compileError(rule, .read) != nil)
    }

    // MARK: Errors

    @Test("compile errors point at the offending token", arguments: [
        ("auth.uid == skies", RuleExpression.Kind.read, 13),
        ("newData.exists()", .read, 1),
        ("true && query.limitToFirst == 1", .write, 9),
        ("root.child('a') == null", .read, 17),
        ("auth.uid = 'x'", .read, 10),
        ("'a'.matches(/a/g)", .read, 13),
        ("auth.uid === 'x' && data.foo()", .read, 26),
        ("auth.token.email.trim() == 'x'", .read, 18),
        ("root.child('a').val() > true", .read, 23),
        ("data.child('x').val() === 1 &&", .read, 31),
    ])
    func errorPosition(_ rule: String, _ kind: RuleExpression.Kind, _ column: Int) throws {
        let error = try #require(compileError(rule, kind))
        #expect(error.position == SourcePosition(line: 1, column: column))
    }

    @Test func unknownVariablesAreNamed() throws {
        let error = try #require(compileError("auth.uid == skies"))
        #expect(error.message.contains("skies"))
        #expect(error.description.hasPrefix("Line 1, column 13: "))
    }

    @Test func statementsAndJavaScriptExtrasAreRefused() {
        for rule in ["var x = 1", "auth.uid === '5'; true", "(2 ** 2) == 4", "typeof auth == 'object'", "this == null",
            "auth.uid & 1 == 1", "new Date() > 0"]
        {
            #expect(compileError(rule) != nil, "\(rule)")
        }
    }

    @Test func evaluationFailuresExplainThemselves() throws {
        let parentOfRoot = try RuleExpression.compile("root.parent().exists()", kind: .read)
        guard case .failure(let failure) = parentOfRoot.evaluateExplained(RuleContext()) else {
            Issue.record("parent() of the root should fail")
            return
        }
        #expect(!failure.reason.isEmpty)
        #expect(parentOfRoot.evaluate(RuleContext()) == nil)

        let simple = try RuleExpression.compile("auth == null", kind: .read)
        #expect(simple.evaluateExplained(RuleContext()) == .success(true))
        #expect(simple.source == "auth == null")
    }

    /// Numbers beyond Int64 (2^63) are formatted, not trapped on.
    @Test
    func concatenatingHugeIntegers() {
        #expect(outcome(of: "'' + 1e20 == '100000000000000000000'") == .isTrue)
        #expect(outcome(of: "'' + -1e20 == '-100000000000000000000'") == .isTrue)
    }

    /// Numbers become strings as JavaScript's String(n) writes them.
    @Test(arguments: [
        ("0.00001", "0.00001"), ("0.000001", "0.000001"), ("1e-7", "1e-7"), ("1.5e-7", "1.5e-7"), ("1e21", "1e+21"),
        ("1.5", "1.5"), ("123456789012", "123456789012"), ("0.1 + 0.2", "0.30000000000000004"), ("-0.5", "-0.5"),
        ("2.5e25", "2.5e+25"), ("100", "100"), ("0", "0"),
    ])
    func numbersFormatLikeJavaScript(expression: String, text: String) {
        #expect(outcome(of: "'' + (\(expression)) == '\(text)'") == .isTrue, "\(expression)")
    }

    /// val() of a node with children can be held, never looked into.
    @Test
    func valOfAnObjectIsOpaque() throws {
        let root = try json(#"{"a":{"length":5,"b":1}}"#)
        #expect(outcome(of: "root.child('a').val().length == 5", in: RuleContext(root: root)) == .fails)
        #expect(outcome(of: "root.child('a').val() == null", in: RuleContext(root: root)) == .isFalse)
        #expect(outcome(of: "root.child('a').child('length').val() == 5", in: RuleContext(root: root)) == .isTrue)
    }

    /// Long chains and deep nesting are refused when compiled, so evaluating (and freeing) a
    /// rule never recurses deeply.
    @Test
    func deepRulesAreRefused() {
        let chain = "auth == null" + String(repeating: " && auth == null", count: 4000)
        #expect(outcome(of: chain) == .invalid)
        #expect(outcome(of: String(repeating: "!", count: 100_000) + "true") == .invalid)
        #expect(outcome(of: "auth" + String(repeating: ".a", count: 500) + " == null") == .invalid)
        let fine = "auth == null" + String(repeating: " && auth == null", count: 50)
        #expect(outcome(of: fine) == .isTrue)
    }

    /// A request's regex steps are shared by all its rules.
    @Test
    func regexStepsComeFromTheRequestBudget() throws {
        let rule = try RuleExpression.compile("'aaaaaaaaaaaaaaaaaaaaaaax'.matches(/^(a|a)*b$/)", kind: .read)
        var context = RuleContext()
        context.budget = RuleBudget(steps: 1000)
        #expect(rule.evaluate(context) == nil)
    }
}

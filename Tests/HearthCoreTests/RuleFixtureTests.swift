import HearthCore
import Testing

// A port of targaryen's parser fixtures (goldibex/targaryen, test/spec/lib/parser/fixtures.json
// at e4151e75, plus five entries from its earlier revision 18563fd): each result was recorded
// against a live Firebase database by targaryen's `bin/targaryen-specs`. They are facts about
// Firebase; when one fails, the engine is wrong, not the table.

/// One rule and what live Firebase did with it.
struct RecordedRuleFixture: Sendable, CustomTestStringConvertible {
    /// The identities the fixtures were recorded with.
    enum User: String, Sendable {
        case bob, uidWithEmail, unauth

        var auth: String {
            switch self {
            case .bob:
                return #"{"foo":{"bar":true},"provider":"custom","someBool":true,"someInt":1,"someString":"one","uid":"custom:bob"}"#
            case .uidWithEmail: return #"{"uid":"bob@example.com"}"#
            case .unauth: return "null"
            }
        }
    }

    enum Outcome: Sendable, Equatable {
        /// Firebase refused to deploy the rule.
        case invalid
        /// The rule deployed, but evaluating it failed (so it denied).
        case failsAtRuntime
        case evaluatesTo(Bool)
    }

    var rule: String
    var user: User
    /// The whole database, as JSON.
    var data: String?
    /// `$name` → the key it captured.
    var wildchildren: [String: String]
    /// targaryen's query parameters, as JSON (`orderByChild`, `orderByValue`, `startAt`, ...).
    var query: String?
    var outcome: Outcome

    static func rule(
        _ rule: String, _ user: User, data: String? = nil, wildchildren: [String: String] = [:], query: String? = nil,
        _ outcome: Outcome
    ) -> RecordedRuleFixture {
        RecordedRuleFixture(rule: rule, user: user, data: data, wildchildren: wildchildren, query: query, outcome: outcome)
    }

    var testDescription: String { "\(rule) [\(user.rawValue)]" }
}

// MARK: - Helpers

private func node(_ json: String) throws -> Node {
    try JSONParser.parse(Array(json.utf8)).node
}

extension RecordedRuleFixture {
    var wildcardNames: [String] { wildchildren.keys.sorted() }

    /// The `query` variable as targaryen built it: ordered by key unless another order is given.
    func ruleQuery() throws -> RuleQuery {
        var query = RuleQuery()
        guard let text = self.query else { return query }
        let parameters = try node(text)
        if case .string(let child) = parameters.child("orderByChild") {
            query.orderByKey = false
            query.orderByChild = child
        }
        if parameters.child("orderByValue") == .bool(true) {
            query.orderByKey = false
            query.orderByValue = true
        }
        if parameters.child("orderByPriority") == .bool(true) {
            query.orderByKey = false
            query.orderByPriority = true
        }
        query.startAt = parameters.child("startAt")
        query.endAt = parameters.child("endAt")
        query.equalTo = parameters.child("equalTo")
        if case .int(let limit) = parameters.child("limitToFirst") { query.limitToFirst = Int(limit) }
        if case .int(let limit) = parameters.child("limitToLast") { query.limitToLast = Int(limit) }
        return query
    }

    func context() throws -> RuleContext {
        RuleContext(
            auth: try node(user.auth), root: try data.map(node) ?? .null,
            wildcards: wildcardNames.map { wildchildren[$0]! }, query: try ruleQuery())
    }
}

// MARK: - The fixtures

let recordedRuleFixtures: [RecordedRuleFixture] = [
    // MARK: Literals, auth members, snapshot methods
    .rule(#"1 < 2"#, .unauth, .evaluatesTo(true)),
    .rule(#"true"#, .unauth, .evaluatesTo(true)),
    .rule(#"'foo'.contains('o')"#, .unauth, .evaluatesTo(true)),
    .rule(#"auth !== null"#, .unauth, .evaluatesTo(false)),
    .rule(#"auth.uid !== 'eviluser'"#, .unauth, .evaluatesTo(true)),
    .rule(#"auth.someInt < 5"#, .bob, .evaluatesTo(true)),
    .rule(#"auth.provider === 'custom'"#, .bob, .evaluatesTo(true)),
    .rule(#"auth.contains('75')"#, .unauth, .failsAtRuntime),
    .rule(#"auth.notfound.contains('75')"#, .bob, .failsAtRuntime),
    .rule(#"auth.not.found.length > 0"#, .bob, .failsAtRuntime),
    .rule(#"auth.isTernary === true ? root.child('x').exists() : true"#, .bob, .evaluatesTo(true)),
    .rule(#"root.isBoolean()"#, .unauth, .evaluatesTo(false)),
    .rule(#"root.child(auth.someString.toUpperCase()).val() === null"#, .unauth, .failsAtRuntime),
    .rule(#"root.hasChildren()"#, .unauth, .evaluatesTo(false)),
    .rule(#"root.hasChildren(['foo', 'bar', 'baz'])"#, .unauth, .evaluatesTo(false)),
    .rule(#"root.hasChildren([auth.uid])"#, .unauth, .failsAtRuntime),
    .rule(#"root.child('users/' + auth.uid).exists()"#, .unauth, .failsAtRuntime),
    .rule(#"root.child(auth.x + auth.y).exists()"#, .unauth, .failsAtRuntime),

    // MARK: Rules Firebase refuses to deploy
    .rule(#"var foo = 8"#, .unauth, .invalid),
    .rule(#"root = 5"#, .unauth, .invalid),
    .rule(#"auth.uid === '5'; auth.id === 5"#, .unauth, .invalid),
    .rule(#"7"#, .unauth, .invalid),
    .rule(#"'foo'"#, .unauth, .invalid),
    .rule(#"auth.someString === 'one' ? 7 : true"#, .bob, .invalid),
    .rule(#"auth.foo.contains(7)"#, .unauth, .invalid),
    .rule(#"skies === 'blue'"#, .unauth, .invalid),
    .rule(#"root.hasChildren('foo', 'bar')"#, .unauth, .invalid),
    .rule(#"root.hasChildren(['foo', 7])"#, .unauth, .invalid),
    .rule(#"root.child('str').val().matches('/foo/')"#, .unauth, .invalid),
    .rule(#"auth.foo.notFound() == false"#, .unauth, .invalid),
    .rule(#"root.val().notFound == false"#, .unauth, .invalid),
    .rule(#"root.child('foo') != null"#, .unauth, .invalid),
    .rule(#"root.val() > true"#, .unauth, .invalid),
    .rule(#"root.val() < true"#, .unauth, .invalid),
    .rule(#"root.val() >= true"#, .unauth, .invalid),
    .rule(#"root.val() <= true"#, .unauth, .invalid),

    // MARK: $wildcards
    .rule(#"$color == 'blue'"#, .unauth, wildchildren: ["$color": "blue"], .evaluatesTo(true)),
    .rule(#"$color == 'green'"#, .unauth, wildchildren: ["$color": "orange"], .evaluatesTo(false)),
    .rule(#"$color == 'red'"#, .unauth, .invalid),
    .rule(#"$color == 'blue' && auth.foo.bar == true"#, .bob, wildchildren: ["$color": "blue"], .evaluatesTo(true)),

    // MARK: Members of null, data, computed member names
    .rule(#"auth.dreams.length > 1"#, .unauth, .failsAtRuntime),
    .rule(#"auth.dreams.length > 1 ? false : true"#, .unauth, .failsAtRuntime),
    .rule(#"!(auth.dreams.length > 1)"#, .unauth, .failsAtRuntime),
    .rule(#"root.val() == 'bar'"#, .unauth, data: #""bar""#, .evaluatesTo(true)),
    .rule(#"root.val().contains('ba')"#, .unauth, data: #""bar""#, .evaluatesTo(true)),
    .rule(#"auth.foo[$bar] == true"#, .bob, wildchildren: ["$bar": "bar"], .evaluatesTo(true)),
    .rule(#"auth.foo['bar'] == true"#, .bob, .evaluatesTo(true)),
    .rule(#"auth.foo.bar == true"#, .bob, .evaluatesTo(true)),
    .rule(#"auth.foo.baz == null"#, .unauth, .evaluatesTo(true)),

    // MARK: Child paths built from null
    .rule(#"root.child('foo').child(auth.foo).val() != null"#, .unauth, data: #"{"foo":{"bar":true}}"#, .failsAtRuntime),
    .rule(#"root.child('foo').child(auth.foo).val() == null"#, .unauth, data: #"{"foo":{"bar":true}}"#, .failsAtRuntime),
    .rule(#"root.child('foo').child(auth.foo).exists()"#, .unauth, data: #"{"foo":{"bar":true}}"#, .failsAtRuntime),
    .rule(
        #"root.child('foo').child(auth.foo).exists() == false"#,
        .unauth, data: #"{"foo":{"bar":true}}"#, .failsAtRuntime),
    .rule(#"root.child('foo').hasChild(auth.foo)"#, .unauth, data: #"{"foo":{"bar":true}}"#, .failsAtRuntime),
    .rule(#"root.child('foo').hasChild(auth.foo) == false"#, .unauth, data: #"{"foo":{"bar":true}}"#, .failsAtRuntime),
    .rule(#"root.child('foo').hasChildren([auth.foo])"#, .unauth, data: #"{"foo":{"bar":true}}"#, .failsAtRuntime),
    .rule(#"root.child('foo').hasChildren([auth.foo]) == false"#, .unauth, data: #"{"foo":{"bar":true}}"#, .failsAtRuntime),

    // MARK: String methods given non-strings, unary minus on non-numbers
    .rule(#"'foo'.contains(auth.foo)"#, .unauth, .failsAtRuntime),
    .rule(#"'foo1'.contains(auth.someInt)"#, .bob, .failsAtRuntime),
    .rule(#"'foo'.beginsWith(auth.foo)"#, .unauth, .failsAtRuntime),
    .rule(#"'1foo'.beginsWith(auth.someInt)"#, .bob, .failsAtRuntime),
    .rule(#"'foo'.endsWith(auth.foo)"#, .unauth, .failsAtRuntime),
    .rule(#"'foo1'.endsWith(auth.someInt)"#, .bob, .failsAtRuntime),
    .rule(#"'foo'.replace(auth.foo, 'bar') == 'foo'"#, .unauth, .failsAtRuntime),
    .rule(#"'foo1'.replace(auth.someInt, 'bar') == 'foobar'"#, .bob, .failsAtRuntime),
    .rule(#"'foobar'.replace('bar', auth.someInt) == 'foo1'"#, .bob, .failsAtRuntime),
    .rule(#"-auth.foo == -1"#, .unauth, .failsAtRuntime),
    .rule(#"-auth.someString == -1"#, .bob, .failsAtRuntime),

    // MARK: Negation, and arithmetic on numbers, strings, booleans and null
    .rule(#"!(auth.foo == null)"#, .unauth, .evaluatesTo(false)),
    .rule(#"!(auth.someString == null)"#, .bob, .evaluatesTo(true)),
    .rule(#"(2**2) == 4"#, .bob, .invalid),
    .rule(#"(auth.someInt + 1) == 2"#, .bob, .evaluatesTo(true)),
    .rule(#"(1 + auth.someInt) == 2"#, .bob, .evaluatesTo(true)),
    .rule(#"(auth.someInt - 1) == 0"#, .bob, .evaluatesTo(true)),
    .rule(#"(1 - auth.someInt) == 0"#, .bob, .evaluatesTo(true)),
    .rule(#"(auth.someInt * 1) == 1"#, .bob, .evaluatesTo(true)),
    .rule(#"(1 * auth.someInt) == 1"#, .bob, .evaluatesTo(true)),
    .rule(#"(auth.someInt / 2) == 0.5"#, .bob, .evaluatesTo(true)),
    .rule(#"(1 / auth.someInt) == 1"#, .bob, .evaluatesTo(true)),
    .rule(#"(auth.someInt % 2) == 1"#, .bob, .evaluatesTo(true)),
    .rule(#"(1 % auth.someInt) == 1"#, .bob, .evaluatesTo(false)),
    .rule(#"(auth.someString + 'two') == 'onetwo'"#, .bob, .evaluatesTo(true)),
    .rule(#"(auth.someString + 1) == 2"#, .bob, .evaluatesTo(false)),
    .rule(#"('two' + auth.someString) == 'twoone'"#, .bob, .evaluatesTo(true)),
    .rule(#"(1 + auth.someString) == 2"#, .bob, .evaluatesTo(false)),
    .rule(#"(1 + 1) == 2"#, .bob, .evaluatesTo(true)),
    .rule(#"(auth.someString - 1) == 0"#, .bob, .failsAtRuntime),
    .rule(#"(1 - auth.someString) == 0"#, .bob, .failsAtRuntime),
    .rule(#"(auth.someString * 1) == 1"#, .bob, .failsAtRuntime),
    .rule(#"(1 * auth.someString) == 1"#, .bob, .failsAtRuntime),
    .rule(#"(auth.someString / 2) == 0.5"#, .bob, .failsAtRuntime),
    .rule(#"(1 / auth.someString) == 1"#, .bob, .failsAtRuntime),
    .rule(#"(auth.someString % 2) == 1"#, .bob, .failsAtRuntime),
    .rule(#"(1 % auth.someString) == 1"#, .bob, .failsAtRuntime),
    .rule(#"(1 + auth.someBool) == 2"#, .bob, .failsAtRuntime),
    .rule(#"(auth.someBool - 1) == 0"#, .bob, .failsAtRuntime),
    .rule(#"(1 - auth.someBool) == 0"#, .bob, .failsAtRuntime),
    .rule(#"(auth.someBool * 1) == 1"#, .bob, .failsAtRuntime),
    .rule(#"(1 * auth.someBool) == 1"#, .bob, .failsAtRuntime),
    .rule(#"(auth.someBool / 2) == 0.5"#, .bob, .failsAtRuntime),
    .rule(#"(1 / auth.someBool) == 1"#, .bob, .failsAtRuntime),
    .rule(#"(auth.someBool % 2) == 1"#, .bob, .failsAtRuntime),
    .rule(#"(1 % auth.someBool) == 1"#, .bob, .failsAtRuntime),
    .rule(#"(1 + auth.none) == 2"#, .bob, .failsAtRuntime),
    .rule(#"(auth.none - 1) == 0"#, .bob, .failsAtRuntime),
    .rule(#"(1 - auth.none) == 0"#, .bob, .failsAtRuntime),
    .rule(#"(auth.none * 1) == 1"#, .bob, .failsAtRuntime),
    .rule(#"(1 * auth.none) == 1"#, .bob, .failsAtRuntime),
    .rule(#"(auth.none / 2) == 0"#, .bob, .failsAtRuntime),
    .rule(#"(1 / auth.none) == 1"#, .bob, .failsAtRuntime),
    .rule(#"(auth.none % 2) == 0"#, .bob, .failsAtRuntime),
    .rule(#"(1 % auth.none) == 0"#, .bob, .failsAtRuntime),

    // MARK: Division by zero is NaN
    // The reference (§3.5) agrees: 1/0 behaves as NaN, unlike JavaScript's Infinity.
    .rule(#"(1/0 + '') == 'NaN'"#, .unauth, .evaluatesTo(true)),
    .rule(#"(1/0) > 2"#, .unauth, .evaluatesTo(false)),
    .rule(#"(1/0) < 2"#, .unauth, .evaluatesTo(false)),

    // MARK: Equality never coerces; ordering mixed types fails
    .rule(#"'foo' == auth.foo"#, .unauth, .evaluatesTo(false)),
    .rule(#"auth.foo == 'foo'"#, .unauth, .evaluatesTo(false)),
    .rule(#"'foo' === auth.foo"#, .unauth, .evaluatesTo(false)),
    .rule(#"auth.foo === 'foo'"#, .unauth, .evaluatesTo(false)),
    .rule(#"'foo' != auth.foo"#, .unauth, .evaluatesTo(true)),
    .rule(#"auth.foo != 'foo'"#, .unauth, .evaluatesTo(true)),
    .rule(#"'foo' !== auth.foo"#, .unauth, .evaluatesTo(true)),
    .rule(#"auth.foo !== 'foo'"#, .unauth, .evaluatesTo(true)),
    .rule(#"'one' == auth.someInt"#, .bob, .evaluatesTo(false)),
    .rule(#"auth.someInt == 'one'"#, .bob, .evaluatesTo(false)),
    .rule(#"'one' === auth.someInt"#, .bob, .evaluatesTo(false)),
    .rule(#"auth.someInt === 'one'"#, .bob, .evaluatesTo(false)),
    .rule(#"'one' != auth.someInt"#, .bob, .evaluatesTo(true)),
    .rule(#"auth.someInt != 'one'"#, .bob, .evaluatesTo(true)),
    .rule(#"'one' !== auth.someInt"#, .bob, .evaluatesTo(true)),
    .rule(#"auth.someInt !== 'one'"#, .bob, .evaluatesTo(true)),
    .rule(#"'foo' > auth.foo"#, .unauth, .failsAtRuntime),
    .rule(#"auth.foo > 'foo'"#, .unauth, .failsAtRuntime),
    .rule(#"'foo' >= auth.foo"#, .unauth, .failsAtRuntime),
    .rule(#"auth.foo >= 'foo'"#, .unauth, .failsAtRuntime),
    .rule(#"'foo' < auth.foo"#, .unauth, .failsAtRuntime),
    .rule(#"auth.foo < 'foo'"#, .unauth, .failsAtRuntime),
    .rule(#"'foo' <= auth.foo"#, .unauth, .failsAtRuntime),
    .rule(#"auth.foo <= 'foo'"#, .unauth, .failsAtRuntime),
    .rule(#"'one' > auth.someInt"#, .bob, .failsAtRuntime),
    .rule(#"auth.someInt > 'one'"#, .bob, .failsAtRuntime),
    .rule(#"'one' >= auth.someInt"#, .bob, .failsAtRuntime),
    .rule(#"auth.someInt >= 'one'"#, .bob, .failsAtRuntime),
    .rule(#"'one' < auth.someInt"#, .bob, .failsAtRuntime),
    .rule(#"auth.someInt < 'one'"#, .bob, .failsAtRuntime),
    .rule(#"'one' <= auth.someInt"#, .bob, .failsAtRuntime),
    .rule(#"auth.someInt <= 'one'"#, .bob, .failsAtRuntime),
    .rule(#"1 >= auth.someInt"#, .bob, .evaluatesTo(true)),
    .rule(#"2 > auth.someInt"#, .bob, .evaluatesTo(true)),
    .rule(#"1 <= auth.someInt"#, .bob, .evaluatesTo(true)),
    .rule(#"0 < auth.someInt"#, .bob, .evaluatesTo(true)),

    // MARK: parent() at the root, method lookup by constant name
    .rule(#"root.parent().exists()"#, .unauth, .failsAtRuntime),
    .rule(#"root["exists"]() == false"#, .unauth, .evaluatesTo(true)),
    .rule(#"root["doesNotExist"]() == true"#, .unauth, .invalid),
    .rule(#"root["exi" + "sts"]() == false"#, .unauth, .invalid),
    .rule(#"root[$foo]() == false"#, .unauth, wildchildren: ["$foo": "exists"], .invalid),
    .rule(#"auth.someString["contains"]("on") == true"#, .bob, .evaluatesTo(true)),
    .rule(#"auth.someString["doesNotContains"]("on") == false"#, .bob, .invalid),
    .rule(#"root.child("foo").val().length < 100"#, .unauth, data: #"{"foo":""}"#, .evaluatesTo(true)),

    // MARK: Child paths with characters that are invalid in keys
    // Firebase accepts child paths that are not valid keys ('.' in an email) and treats them as
    // absent: live results below, and targaryen 9fd6fff ("Firebase allows RuleDataSnapshot
    // methods to receive invalid path"). Keys must be valid only where data is written.
    .rule(#"root.child("banned/" + auth.uid).val() != true"#, .uidWithEmail, .evaluatesTo(true)),
    .rule(#"root.hasChild("banned/" + auth.uid) == false"#, .uidWithEmail, .evaluatesTo(true)),
    .rule(#"root.hasChildren(["banned/" + auth.uid]) == false"#, .uidWithEmail, .evaluatesTo(true)),
    .rule(#"root.child("banned/bob@example.com").val() != true"#, .unauth, .evaluatesTo(true)),
    .rule(#"root.hasChild("banned/bob@example.com") == false"#, .unauth, .evaluatesTo(true)),
    .rule(#"root.hasChildren(["banned/bob@example.com"]) == false"#, .unauth, .evaluatesTo(true)),

    // MARK: The query variable
    .rule(#"query.orderByChild == "foo/bar""#, .unauth, query: #"{"orderByChild":"foo/bar"}"#, .evaluatesTo(true)),
    .rule(#"query.orderByChild == null"#, .unauth, .evaluatesTo(true)),
    .rule(#"query.orderByChild == "owner""#, .unauth, query: #"{"orderByChild":"owner"}"#, .evaluatesTo(true)),
    .rule(
        #"query.orderByKey == true && query.orderByValue == false && query.orderByPriority == false"#,
        .unauth, .evaluatesTo(true)),
    .rule(
        #"query.orderByKey != null && query.orderByValue != null && query.orderByPriority != null"#,
        .unauth, .evaluatesTo(true)),
    .rule(
        #"query.orderByKey == false && query.orderByValue == true && query.orderByPriority == false"#,
        .unauth, query: #"{"orderByValue":true}"#, .evaluatesTo(true)),
    .rule(#"query.startAt == null && query.endAt == null && query.equalTo == null"#, .unauth, .evaluatesTo(true)),
    .rule(#"query.startAt == "foo""#, .unauth, query: #"{"orderByValue":true,"startAt":"foo"}"#, .evaluatesTo(true)),
    .rule(#"query.endAt == 3"#, .unauth, query: #"{"orderByValue":true,"endAt":3}"#, .evaluatesTo(true)),
    .rule(#"query.equalTo == true"#, .unauth, query: #"{"orderByValue":true,"equalTo":true}"#, .evaluatesTo(true)),
    .rule(#"query.limitToLast == null && query.limitToFirst == null"#, .unauth, .evaluatesTo(true)),
    .rule(#"query.limitToLast == 10"#, .unauth, query: #"{"orderByValue":true,"limitToLast":10}"#, .evaluatesTo(true)),
    .rule(#"query.foo == 1"#, .unauth, .invalid),

    // MARK: Regular expressions
    .rule(#"root.val().matches(/bar/)"#, .unauth, data: #""bar""#, .evaluatesTo(true)),
    .rule(#"root.val().matches(/BAR/i)"#, .unauth, data: #""bar""#, .evaluatesTo(true)),
    .rule(#"root.val().matches(/bar/ig)"#, .unauth, .invalid),
    .rule(#"root.val().matches(/^foo/)"#, .unauth, data: #""foo""#, .evaluatesTo(true)),
    .rule(#"root.val().matches(/^foo$/)"#, .unauth, data: #""foo""#, .evaluatesTo(true)),
    .rule(#"root.val().matches(/(^foo$|bar)/)"#, .unauth, data: #""foo""#, .invalid),
    .rule(#"root.val().matches(/^(foo|)$/)"#, .unauth, data: #""foo""#, .invalid),
    .rule(#"root.val().matches(/\{foo}/)"#, .unauth, data: #""{foo}""#, .evaluatesTo(true)),

    // MARK: Recorded in the earlier revision 18563fd of the same file, reworded since
    .rule(#"root.child('foo').val().matches(/bar/)"#, .unauth, data: #"{"foo":"bar"}"#, .evaluatesTo(true)),
    .rule(#"root.child('foo').val().matches(/BAR/i)"#, .unauth, data: #"{"foo":"bar"}"#, .evaluatesTo(true)),
    .rule(#"root.child('foo').val().matches(/bar/ig)"#, .unauth, data: #"{"foo":"bar"}"#, .invalid),
    .rule(#"root.val().matches(/^ba/)"#, .unauth, data: #""bar""#, .evaluatesTo(true)),
    .rule(#"root.val().matches(/^wa/)"#, .unauth, data: #""bar""#, .evaluatesTo(false)),
]

// MARK: - The test

@Suite("Rules as live Firebase evaluated them (targaryen fixtures)")
struct RuleFixtureTests {
    @Test func theTableIsComplete() {
        #expect(recordedRuleFixtures.count == 191)
    }

    // None of the fixtures uses newData, so all compile as .read rules (which the query ones need).
    @Test(arguments: recordedRuleFixtures)
    func firebaseAgrees(_ fixture: RecordedRuleFixture) throws {
        let compile = { () throws(RuleError) -> RuleExpression in
            try RuleExpression.compile(fixture.rule, kind: .read, wildcards: fixture.wildcardNames)
        }
        switch fixture.outcome {
        case .invalid:
            #expect(throws: RuleError.self, "Firebase refused to deploy this rule") { try compile() }
        case .failsAtRuntime:
            let result = try compile().evaluateExplained(try fixture.context())
            guard case .failure = result else {
                Issue.record("Firebase failed this rule at run time; the engine gave \(result)")
                return
            }
        case .evaluatesTo(let expected):
            let result = try compile().evaluateExplained(try fixture.context())
            #expect(result == .success(expected), "Firebase evaluated this rule to \(expected)")
        }
    }
}

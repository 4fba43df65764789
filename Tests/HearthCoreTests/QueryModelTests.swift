import HearthCore
import HearthTestSupport
import Testing

// MARK: - Helpers

/// `text` with every non-ASCII character spelled `\u{...}`, so that comparing two descriptions
/// tells apart strings that Swift's `==` calls equal (canonically equivalent ones such as
/// "\u{E9}" and "e\u{301}", which Firebase orders differently).
private func ascii(_ text: String) -> String {
    text.unicodeScalars.map { $0.isASCII ? String(Character($0)) : "\\u{\(String($0.value, radix: 16))}" }.joined()
}

/// A query answer as `key=value` lines, priorities included.
private func lines(_ entries: [ChildEntry]) -> [String] {
    entries.map { ascii($0.key.string) + "=" + ascii(JSONWriter.string($0.value, options: .init(export: true))) }
}

/// An index's entries spelled out exactly, in order.
private func spelled(_ entries: [IndexEntry]) -> [String] {
    entries.map { entry in
        let value: String
        switch entry.value {
        case .null: value = "null"
        case .bool(let flag): value = String(flag)
        case .number(let number): value = "\(number)"
        case .string(let text): value = "\"" + ascii(text) + "\""
        case .object: value = "{object}"
        }
        return value + " " + ascii(entry.key.string)
    }
}

private func json(_ node: Node) -> String {
    JSONWriter.string(node, options: .init(export: true, preservesNumberTypes: true))
}

/// An object node from members; null members are left out.
private func object(_ members: [(String, Node)]) -> Node {
    var children = ChildMap()
    for (key, value) in members where !value.isNull { children.set(ChildKey(key), value) }
    return .object(normalizing: children)
}

/// Parameters that must make a query.
private func query(_ parameters: [String: String], shallow: Bool = false) throws -> Query {
    let parsed = try Query.parse(parameters, implicitKeyOrder: shallow)
    return try #require(parsed)
}

/// The message `Query.parse` refuses `parameters` with, or nil if it takes them.
private func refusal(_ parameters: [String: String], shallow: Bool = false) -> String? {
    do {
        _ = try Query.parse(parameters, implicitKeyOrder: shallow)
        return nil
    } catch {
        return error.message
    }
}

/// Firebase's ordering, written out plainly from the reference (§1.10) and the JS SDK's
/// `nameCompare`, without using the engine's comparisons.
private enum Firebase {
    /// `tryParseInt`: `^-?(0*)\d{1,10}$` and within the 32-bit signed range.
    static func integer(_ key: String) -> Int64? {
        var digits = Substring(key)
        let negative = digits.first == "-"
        if negative { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.allSatisfy({ ("0"..."9").contains($0) }) else { return nil }
        let significant = digits.drop { $0 == "0" }
        guard significant.count <= 10 else { return nil }
        let magnitude = Int64(significant) ?? 0
        let value = negative ? -magnitude : magnitude
        guard value >= Int64(Int32.min), value <= Int64(Int32.max) else { return nil }
        return value
    }

    /// JavaScript's `<` on strings: UTF-16 code units.
    static func compareText(_ a: [UInt16], _ b: [UInt16]) -> Int {
        if a == b { return 0 }
        return a.lexicographicallyPrecedes(b) ? -1 : 1
    }

    /// A key, read once: its integer value if it has one, and its UTF-16 code units.
    struct Name {
        let integer: Int64?
        let units: [UInt16]

        init(_ key: String) {
            integer = Firebase.integer(key)
            units = Array(key.utf16)
        }
    }

    /// Integer keys first, numerically (equal values: the shorter first), then the rest as text.
    static func compare(_ a: Name, _ b: Name) -> Int {
        switch (a.integer, b.integer) {
        case let (x?, y?):
            if x != y { return x < y ? -1 : 1 }
            if a.units.count != b.units.count { return a.units.count < b.units.count ? -1 : 1 }
            return compareText(a.units, b.units)
        case (.some, nil): return -1
        case (nil, .some): return 1
        case (nil, nil): return compareText(a.units, b.units)
        }
    }

    static func compareKeys(_ a: String, _ b: String) -> Int {
        compare(Name(a), Name(b))
    }

    /// null < false < true < numbers < strings < objects.
    static func typeRank(_ node: Node) -> Int {
        switch node.withoutPriority {
        case .null: return 0
        case .bool(let flag): return flag ? 2 : 1
        case .int, .double: return 3
        case .string: return 4
        case .object, .prioritized: return 5
        }
    }

    /// A value, read once: its rank, and its number or its UTF-16 code units.
    struct Value {
        let rank: Int
        let number: Double
        let units: [UInt16]

        init(_ node: Node) {
            rank = Firebase.typeRank(node)
            switch node.withoutPriority {
            case .int(let value): number = Double(value)
            case .double(let value): number = value
            default: number = 0
            }
            if case .string(let text) = node.withoutPriority { units = Array(text.utf16) } else { units = [] }
        }
    }

    static func compare(_ a: Value, _ b: Value) -> Int {
        if a.rank != b.rank { return a.rank < b.rank ? -1 : 1 }
        switch a.rank {
        case 3: return a.number < b.number ? -1 : (a.number > b.number ? 1 : 0)
        case 4: return compareText(a.units, b.units)
        default: return 0
        }
    }
}

/// A query as the reference describes it, rendered to REST parameters and answered the slow,
/// obvious way: sort every child, keep those inside the bounds, then apply the limit.
private struct ModelQuery: CustomStringConvertible {
    enum Ordering: Equatable {
        case key, value, priority
        case child([String])
    }

    enum Side: String {
        case startAt, startAfter, endAt, endBefore, equalTo
    }

    struct Bound {
        var side: Side
        var value: Node
        var key: String?
    }

    var ordering: Ordering
    var bounds: [Bound] = []
    var limitToFirst: Int?
    var limitToLast: Int?

    var orderByName: String {
        switch ordering {
        case .key: return "$key"
        case .value: return "$value"
        case .priority: return "$priority"
        case .child(let path): return path.joined(separator: "/")
        }
    }

    var expectedOrderBy: Query.OrderBy {
        switch ordering {
        case .key: return .key
        case .value: return .value
        case .priority: return .priority
        case .child(let path): return .child(Path(keys: path.map { ChildKey($0) }))
        }
    }

    var parameters: [String: String] {
        var result = ["orderBy": JSONWriter.string(.string(orderByName))]
        for bound in bounds {
            var text = JSONWriter.string(bound.value)
            if let key = bound.key { text += "," + JSONWriter.string(.string(key)) }
            result[bound.side.rawValue] = text
        }
        if let limitToFirst { result["limitToFirst"] = String(limitToFirst) }
        if let limitToLast { result["limitToLast"] = String(limitToLast) }
        return result
    }

    var description: String {
        ascii(parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&"))
    }

    /// What a child is ordered by (`$key` orders by the key itself).
    func orderingValue(of child: Node) -> Node {
        switch ordering {
        case .key: return .null
        case .value: return child.withoutPriority
        case .priority:
            switch child.priority {
            case nil: return .null
            case .number(let number)?: return .double(number)
            case .string(let text)?: return .string(text)
            }
        case .child(let path):
            var node = child
            for key in path { node = node.child(ChildKey(key)) }
            return node.withoutPriority
        }
    }

    /// Where a child stands against a bound: negative before it, zero at it, positive after.
    /// A bound without a key stands at its value (zero for every key there).
    func position(_ key: Firebase.Name, _ value: Firebase.Value, against bound: Bound) -> Int {
        if ordering == .key {
            guard case .string(let name) = bound.value else { return 1 }
            return Firebase.compare(key, Firebase.Name(name))
        }
        let byValue = Firebase.compare(value, Firebase.Value(bound.value))
        if byValue != 0 { return byValue }
        guard let boundKey = bound.key else { return 0 }
        return Firebase.compare(key, Firebase.Name(boundKey))
    }

    func admits(_ key: Firebase.Name, _ value: Firebase.Value, _ bound: Bound) -> Bool {
        let place = position(key, value, against: bound)
        switch bound.side {
        case .startAt: return place >= 0
        case .startAfter: return place > 0
        case .endAt: return place <= 0
        case .endBefore: return place < 0
        case .equalTo: return place == 0
        }
    }

    func answer(_ node: Node) -> [ChildEntry] {
        guard case .object(let map) = node.withoutPriority else { return [] }
        var children = map.map { entry in
            (entry: entry, name: Firebase.Name(entry.key.string), value: Firebase.Value(orderingValue(of: entry.value)))
        }
        children.sort { a, b in
            if ordering != .key {
                let byValue = Firebase.compare(a.value, b.value)
                if byValue != 0 { return byValue < 0 }
            }
            return Firebase.compare(a.name, b.name) < 0
        }
        children = children.filter { child in bounds.allSatisfy { admits(child.name, child.value, $0) } }
        if let limitToFirst { children = Array(children.prefix(limitToFirst)) }
        if let limitToLast { children = Array(children.suffix(limitToLast)) }
        return children.map { $0.entry }
    }
}

// MARK: Random data

/// Child names: integers of every sort (negative, zero-padded, at and past the 32-bit edge),
/// text, non-ASCII text (one pair canonically equivalent) and names that read as JSON.
private let childKeys = [
    "a", "b", "c", "d", "e", "k1", "k2", "k10", "A", "Z", "\u{E9}", "e\u{301}", "日本", "😀", "\u{FF61}", "0", "1", "2",
    "3", "7", "007", "10", "-1", "-5", "2147483647", "2147483648", "-2147483648", "a b", "a,b", "null", "true",
]

private let texts = ["", "a", "b", "B", "ab", "\u{E9}", "e\u{301}", "😀", "\u{FF61}", "a,b", "10", "null", "true", "say \"hi\", ok"]

private func randomLeaf(using random: inout SeededRandom) -> Node {
    switch Int.random(in: 0..<8, using: &random) {
    case 0: return .bool(Bool.random(using: &random))
    case 1, 2: return .int(Int64.random(in: -3...3, using: &random))
    case 3: return .double([-1.5, 0.5, 2.0, 2.25, 1e300, -0.001].randomElement(using: &random)!)
    case 4, 5: return .string(texts.randomElement(using: &random)!)
    case 6: return .int(Int64.random(in: -1000...1000, using: &random))
    default: return .double(Double(Int.random(in: -100...100, using: &random)) / 8)
    }
}

private func randomPriority(using random: inout SeededRandom) -> Priority {
    Bool.random(using: &random)
        ? .number([-2, -1, 0, 0.5, 1, 2].randomElement(using: &random)!)
        : .string(["", "a", "b", "10"].randomElement(using: &random)!)
}

/// A value to order by: missing, an object, a leaf (sometimes with its own priority, which
/// ordering ignores).
private func randomOrderingValue(using random: inout SeededRandom) -> Node {
    switch Int.random(in: 0..<10, using: &random) {
    case 0, 1: return .null
    case 2: return object([("x", randomLeaf(using: &random))])
    case 3: return randomLeaf(using: &random).with(priority: randomPriority(using: &random))
    default: return randomLeaf(using: &random)
    }
}

/// A child: a bare leaf, an object without a score, or an object with a score and a nested
/// rank (either may be missing); a third of them with a priority.
private func randomChild(using random: inout SeededRandom) -> Node {
    var child: Node
    switch Int.random(in: 0..<6, using: &random) {
    case 0: child = randomLeaf(using: &random)
    case 1: child = object([("name", .string("no score"))])
    default:
        child = object([
            ("score", randomOrderingValue(using: &random)),
            ("meta", object([("rank", randomOrderingValue(using: &random))])),
            ("name", Bool.random(using: &random) ? .string("n") : .null),
        ])
        if child.isNull { child = object([("name", .string("empty"))]) }
    }
    if Int.random(in: 0..<3, using: &random) == 0 { child = child.with(priority: randomPriority(using: &random)) }
    return child
}

/// A location to query: usually an object of up to 31 children, sometimes a large one (so the
/// index has several pages), a leaf or nothing.
private func randomTree(using random: inout SeededRandom) -> Node {
    switch Int.random(in: 0..<20, using: &random) {
    case 0: return randomLeaf(using: &random)
    case 1: return .null
    default: break
    }
    var children = ChildMap()
    let count = [1, 2, 3, 5, 10, 20, 31].randomElement(using: &random)!
    for key in childKeys.shuffled(using: &random).prefix(count) { children.set(ChildKey(key), randomChild(using: &random)) }
    if Int.random(in: 0..<8, using: &random) == 0 {
        for number in 0..<Int.random(in: 100...300, using: &random) { children.set(ChildKey("x\(number)"), randomChild(using: &random)) }
    }
    var node = Node.object(children)
    if Int.random(in: 0..<5, using: &random) == 0 { node = node.with(priority: randomPriority(using: &random)) }
    return node
}

private let orderings: [ModelQuery.Ordering] = [.key, .value, .priority, .child(["score"]), .child(["meta", "rank"])]

/// A random query on `node`: each ordering, bounds of every kind taken from the children's own
/// values and keys or made up, with and without tie-break keys, and random limits.
private func randomQuery(
    on node: Node, orderedBy chosen: ModelQuery.Ordering? = nil, using random: inout SeededRandom
) -> ModelQuery {
    let ordering = chosen ?? orderings.randomElement(using: &random)!
    let reader = ModelQuery(ordering: ordering)
    let children = node.children.map { $0 }
    let extraKeys = ["b0", "k", "zz", "5", "-3", "100", "x150", "x7"]

    func boundValue() -> Node {
        if ordering == .key {
            if let child = children.randomElement(using: &random), Bool.random(using: &random) { return .string(child.key.string) }
            return .string((childKeys + extraKeys).randomElement(using: &random)!)
        }
        if Bool.random(using: &random), let child = children.randomElement(using: &random) {
            let value = reader.orderingValue(of: child.value)
            if Firebase.typeRank(value) < 5 { return value }
        }
        while true {
            let value: Node = Int.random(in: 0..<6, using: &random) == 0 ? .null : randomLeaf(using: &random)
            if ordering == .priority, case .bool = value { continue }
            return value
        }
    }

    func tieBreakKey() -> String? {
        guard ordering != .key else { return nil }
        switch Int.random(in: 0..<5, using: &random) {
        case 0, 1: return nil
        case 2, 3: return children.randomElement(using: &random)?.key.string
        default: return (childKeys + extraKeys).randomElement(using: &random)!
        }
    }

    func bound(_ side: ModelQuery.Side) -> ModelQuery.Bound {
        ModelQuery.Bound(side: side, value: boundValue(), key: tieBreakKey())
    }

    var model = ModelQuery(ordering: ordering)
    if Int.random(in: 0..<6, using: &random) == 0 {
        model.bounds = [bound(.equalTo)]
    } else {
        let starts: [ModelQuery.Side?] = [nil, .startAt, .startAfter]
        let ends: [ModelQuery.Side?] = [nil, .endAt, .endBefore]
        if let start = starts.randomElement(using: &random)! { model.bounds.append(bound(start)) }
        if let end = ends.randomElement(using: &random)! { model.bounds.append(bound(end)) }
    }
    let limit = Int.random(in: 0...10, using: &random) == 0 ? 0 : Int.random(in: 1...8, using: &random)
    switch Int.random(in: 0..<5, using: &random) {
    case 0, 1: model.limitToFirst = limit
    case 2, 3: model.limitToLast = limit
    default: break
    }
    return model
}

// MARK: - Ordering

@Suite("Query ordering")
struct QueryOrderingTests {
    @Test func valuesSortNullThenFalseTrueNumbersStringsObjects() {
        let ascending: [IndexValue] = [
            .null, .bool(false), .bool(true), .number(-1e300), .number(-2.5), .number(0), .number(1), .number(1.5), .number(10),
            .string(""), .string("10"), .string("A"), .string("Z"), .string("a"), .string("ab"), .string("b"), .string("\u{E9}"),
            .object,
        ]
        for (i, lhs) in ascending.enumerated() {
            for (j, rhs) in ascending.enumerated() {
                #expect(IndexValue.compare(lhs, rhs) == (i < j ? -1 : (i > j ? 1 : 0)), "\(lhs) against \(rhs)")
            }
        }
    }

    @Test func everyObjectOrdersTheSame() {
        #expect(IndexValue(object([("a", .int(1))])) == .object)
        #expect(IndexValue.compare(IndexValue(object([("a", .int(1))])), IndexValue(object([("z", .string("z"))]))) == 0)
    }

    @Test func integersAndDoublesAreOneKindOfNumber() {
        #expect(IndexValue(.int(3)) == .number(3))
        #expect(IndexValue.compare(IndexValue(.double(3)), IndexValue(.int(3))) == 0)
        #expect(IndexValue.compare(IndexValue(.double(2.5)), IndexValue(.int(3))) < 0)
    }

    @Test func aValueIsOrderedWithoutItsPriority() {
        #expect(IndexValue(Node.string("x").with(priority: .number(1))) == .string("x"))
        #expect(IndexValue(.null) == .null)
    }

    @Test func prioritiesOrderNoneThenNumbersThenStrings() {
        #expect(IndexValue(priorityOf: .int(1)) == .null)
        #expect(IndexValue(priorityOf: Node.int(1).with(priority: .number(2))) == .number(2))
        #expect(IndexValue(priorityOf: Node.int(1).with(priority: .string("p"))) == .string("p"))
        let none = IndexValue(priorityOf: .int(1))
        let number = IndexValue(priorityOf: Node.int(1).with(priority: .number(1e9)))
        let text = IndexValue(priorityOf: Node.int(1).with(priority: .string("")))
        #expect(IndexValue.compare(none, number) < 0)
        #expect(IndexValue.compare(number, text) < 0)
    }

    @Test func tiesAreBrokenByKey() {
        let entries = [
            IndexEntry(value: .number(1), key: "b"), IndexEntry(value: .number(1), key: "10"),
            IndexEntry(value: .number(1), key: "a"), IndexEntry(value: .number(1), key: "2"), IndexEntry(value: .number(0), key: "z"),
        ]
        let sorted = entries.sorted { IndexEntry.compare($0, $1) < 0 }
        #expect(sorted.map(\.key) == ["z", "2", "10", "a", "b"])
    }

    @Test func keyOrderPutsThirtyTwoBitIntegersFirstNumerically() {
        let keys: [ChildKey] = [
            "b", "10", "a", "-1", "2", "007", "7", "2147483647", "2147483648", "-2147483648", "-2147483649", "1a", "A", "Z",
        ]
        let sorted = keys.sorted { ChildKey.compare($0, $1) < 0 }
        #expect(sorted.map(\.string) == [
            "-2147483648", "-1", "2", "7", "007", "10", "2147483647", "-2147483649", "1a", "2147483648", "A", "Z", "a", "b",
        ])
        for (a, b) in zip(sorted, sorted.dropFirst()) {
            #expect(Firebase.compareKeys(a.string, b.string) < 0, "the test's own model agrees: \(a) < \(b)")
        }
    }

    @Test func orderingByKeyReadsChildrenInKeyOrder() throws {
        let node = object(["b", "10", "a", "-1", "2", "007"].map { ($0, Node.int(1)) })
        #expect(try query(["orderBy": "\"$key\""]).scan(node).map(\.key.string) == ["-1", "2", "007", "10", "a", "b"])
        let range = try query(["orderBy": "\"$key\"", "startAt": "\"-1\"", "endAt": "\"10\""])
        #expect(range.scan(node).map(\.key.string) == ["-1", "2", "007", "10"])
    }

    @Test func stringsCompareByUTF16CodeUnits() {
        // U+1F600 is the surrogate pair D83D DE00: before U+FF61 in UTF-16, after it by code point.
        #expect(IndexValue.compare(.string("😀"), .string("\u{FF61}")) < 0)
        #expect(ChildKey.compare("😀", "\u{FF61}") < 0)
        // Canonically equivalent, but different code units: U+00E9 after "e" U+0301.
        #expect(IndexValue.compare(.string("\u{E9}"), .string("e\u{301}")) > 0)
        #expect(IndexValue.compare(.string("a"), .string("ab")) < 0)
        #expect(IndexValue.compare(.string("Z"), .string("a")) < 0)
    }
}

// MARK: - Parsing

/// Parameters the parser refuses, and Firebase's (or Hearth's) message for each.
private let refusals: [([String: String], String)] = [
    (["orderBy": "score"], "orderBy must be a valid JSON encoded path"),
    (["orderBy": "$key"], "orderBy must be a valid JSON encoded path"),
    (["orderBy": "\"\""], "orderBy must be a valid JSON encoded path"),
    (["orderBy": "\"$other\""], "orderBy must be a valid JSON encoded path"),
    (["orderBy": "\"a.b\""], "orderBy must be a valid JSON encoded path"),
    (["orderBy": "5"], "orderBy must be a valid JSON encoded path"),
    (["limitToFirst": "1"], "orderBy must be defined when other query parameters are defined"),
    (["startAt": "\"a\""], "orderBy must be defined when other query parameters are defined"),
    (["equalTo": "1", "limitToLast": "2"], "orderBy must be defined when other query parameters are defined"),
    (["orderBy": "\"score\"", "startAt": "{\"a\":1}"], "Constraint index field must be a JSON primitive"),
    (["orderBy": "\"score\"", "endAt": "abc"], "Constraint index field must be a JSON primitive"),
    (["orderBy": "\"score\"", "equalTo": "[1,2]"], "Constraint index field must be a JSON primitive"),
    (["orderBy": "\"score\"", "startAt": "1,2"], "The key of startAt (after the comma) must be a JSON string"),
    (["orderBy": "\"$key\"", "startAt": "0"], "Provided key index type is invalid, must be string"),
    (["orderBy": "\"$key\"", "endAt": "true"], "Provided key index type is invalid, must be string"),
    (["orderBy": "\"$key\"", "equalTo": "null"], "Provided key index type is invalid, must be string"),
    (["orderBy": "\"$key\"", "startAt": "\"a\",\"b\""], "startAt cannot have a key after the comma when orderBy is \"$key\""),
    (["orderBy": "\"$priority\"", "endAt": "true"], "endAt must be null, a number or a string when orderBy is \"$priority\""),
    (["orderBy": "\"score\"", "limitToFirst": "1", "limitToLast": "1"], "limitToFirst and limitToLast cannot be used together"),
    (["orderBy": "\"score\"", "equalTo": "1", "startAt": "1"], "equalTo cannot be combined with startAt, startAfter, endAt or endBefore"),
    (["orderBy": "\"score\"", "equalTo": "1", "endBefore": "1"], "equalTo cannot be combined with startAt, startAfter, endAt or endBefore"),
    (["orderBy": "\"score\"", "startAt": "1", "startAfter": "2"], "startAt and startAfter cannot be used together"),
    (["orderBy": "\"score\"", "endAt": "1", "endBefore": "2"], "endAt and endBefore cannot be used together"),
    (["orderBy": "\"score\"", "limitToFirst": "-1"], "limitToFirst must be a non-negative integer"),
    (["orderBy": "\"score\"", "limitToLast": "1.5"], "limitToLast must be a non-negative integer"),
    (["orderBy": "\"score\"", "limitToFirst": "ten"], "limitToFirst must be a non-negative integer"),
    (["orderBy": "\"score\"", "limitToFirst": "2147483648"], "limitToFirst must be a non-negative integer"),
]

@Suite("Query parameters")
struct QueryParsingTests {
    @Test("refused parameters", arguments: refusals)
    func refused(parameters: [String: String], message: String) {
        #expect(refusal(parameters) == message)
    }

    @Test func noParametersMakeNoQuery() throws {
        #expect(try Query.parse([:]) == nil)
    }

    @Test func orderByNamesAnOrderingOrAChildPath() throws {
        #expect(try query(["orderBy": "\"$key\""]).orderBy == .key)
        #expect(try query(["orderBy": "\"$value\""]).orderBy == .value)
        #expect(try query(["orderBy": "\"$priority\""]).orderBy == .priority)
        #expect(try query(["orderBy": "\"score\""]).orderBy == .child(Path(keys: ["score"])))
        #expect(try query(["orderBy": "\"a/b\""]).orderBy == .child(Path(keys: ["a", "b"])))
    }

    @Test func aKeyBoundIsAStringEvenWhenItReadsAsANumber() throws {
        let parsed = try query(["orderBy": "\"$key\"", "startAt": "\"5\""])
        #expect(parsed.startAt == Query.Bound(value: .string("5"), node: .string("5")))
    }

    @Test func aBoundMayCarryATieBreakKey() throws {
        let parsed = try query(["orderBy": "\"score\"", "startAt": "5,\"b\"", "endAt": "null,\"k\"", "limitToLast": "3"])
        var expected = Query(orderBy: .child(Path(keys: ["score"])))
        expected.startAt = Query.Bound(value: .number(5), key: "b", node: .int(5))
        expected.endAt = Query.Bound(value: .null, key: "k", node: .null)
        expected.limitToLast = 3
        #expect(parsed == expected)
    }

    @Test func aCommaInsideAStringBelongsToTheValue() throws {
        let plain = try query(["orderBy": "\"score\"", "equalTo": "\"a,b\""])
        #expect(plain.equalTo == Query.Bound(value: .string("a,b"), key: nil, node: .string("a,b")))
        let withKey = try query(["orderBy": "\"score\"", "startAt": "\"a,b\",\"c,d\""])
        #expect(withKey.startAt == Query.Bound(value: .string("a,b"), key: "c,d", node: .string("a,b")))
        let escaped = try query(["orderBy": "\"score\"", "startAt": #""say \"hi\", ok",",""#])
        #expect(escaped.startAt == Query.Bound(value: .string("say \"hi\", ok"), key: ",", node: .string("say \"hi\", ok")))
    }

    @Test func boundsAreAnyJSONPrimitive() throws {
        #expect(try query(["orderBy": "\"score\"", "startAt": "null"]).startAt == Query.Bound(value: .null, node: .null))
        #expect(try query(["orderBy": "\"score\"", "startAt": "true"]).startAt == Query.Bound(value: .bool(true), node: .bool(true)))
        #expect(try query(["orderBy": "\"score\"", "startAt": "2.5"]).startAt == Query.Bound(value: .number(2.5), node: .double(2.5)))
        #expect(try query(["orderBy": "\"score\"", "startAt": " \"x\" "]).startAt?.value == .string("x"))
        #expect(try query(["orderBy": "\"$priority\"", "startAt": "\"p\""]).startAt?.value == .string("p"))
    }

    @Test func equalToIsStartAtAndEndAt() throws {
        let parsed = try query(["orderBy": "\"$value\"", "equalTo": "3,\"k\""])
        let bound = Query.Bound(value: .number(3), key: "k", node: .int(3))
        #expect(parsed.equalTo == bound)
        #expect(parsed.startAt == bound)
        #expect(parsed.endAt == bound)
        #expect(parsed.startAfter == nil && parsed.endBefore == nil)
    }

    @Test func shallowReadsPageByKeyWithoutOrderBy() throws {
        let page = try query(["limitToFirst": "2", "startAfter": "k1"], shallow: true)
        #expect(page.orderBy == .key)
        #expect(page.startAfter?.value == .string("k1"))
        #expect(page.limitToFirst == 2)
        #expect(try query(["limitToFirst": "2", "startAfter": "\"k1\""], shallow: true).startAfter?.value == .string("k1"))
        #expect(try query(["limitToFirst": "2", "startAfter": "-NxAbC_9"], shallow: true).startAfter?.value == .string("-NxAbC_9"))
        // Bare keys only without orderBy, and only for shallow reads.
        #expect(refusal(["limitToFirst": "2", "startAfter": "k1"]) == "orderBy must be defined when other query parameters are defined")
        #expect(refusal(["orderBy": "\"$key\"", "startAfter": "k1"], shallow: true) == "Constraint index field must be a JSON primitive")
    }

    @Test func theRulesSeeTheQuery() throws {
        let byChild = try query(["orderBy": "\"meta/rank\"", "startAt": "5,\"k\"", "endBefore": "\"z\"", "limitToFirst": "10"]).ruleQuery
        #expect(byChild.orderByChild == "meta/rank")
        #expect(!byChild.orderByKey && !byChild.orderByValue && !byChild.orderByPriority)
        #expect(byChild.startAt == .int(5))
        #expect(byChild.endAt == .string("z"))
        #expect(byChild.equalTo == .null)
        #expect(byChild.limitToFirst == 10)
        #expect(byChild.limitToLast == nil)

        let equal = try query(["orderBy": "\"$value\"", "equalTo": "true"]).ruleQuery
        #expect(equal.orderByValue && !equal.orderByKey && equal.orderByChild == nil)
        #expect(equal.startAt == .bool(true) && equal.endAt == .bool(true) && equal.equalTo == .bool(true))

        let byKey = try query(["orderBy": "\"$key\"", "startAfter": "\"a\"", "limitToLast": "3"]).ruleQuery
        #expect(byKey.orderByKey)
        #expect(byKey.startAt == .string("a"))
        #expect(byKey.endAt == .null)
        #expect(byKey.limitToLast == 3)

        let byPriority = try query(["orderBy": "\"$priority\"", "endAt": "2.5"]).ruleQuery
        #expect(byPriority.orderByPriority && !byPriority.orderByKey)
        #expect(byPriority.endAt == .double(2.5))
    }

    /// JSON that Firebase's data rules would reduce to a primitive is still not one.
    @Test func objectsAreNotPrimitivesEvenWhenTheyParseToOne() {
        for bound in ["{}", "[]", "{\".value\":1}", "{\".sv\":\"timestamp\"}"] {
            #expect(refusal(["orderBy": "\"score\"", "startAt": bound]) == "Constraint index field must be a JSON primitive", "\(bound)")
        }
        #expect(refusal(["orderBy": "{\".value\":\"score\"}"]) == "orderBy must be a valid JSON encoded path")
    }

    /// firebase-tools sends the last key raw (`startAfter=5`) when it pages with `shallow`.
    @Test func shallowPagingContinuesAfterAnIntegerKey() throws {
        let page = try query(["limitToFirst": "2", "startAfter": "5"], shallow: true)
        #expect(page.startAfter?.value == .string("5"))
        let afterTrue = try query(["limitToFirst": "2", "startAfter": "true"], shallow: true)
        #expect(afterTrue.startAfter?.value == .string("true"))
    }
}

// MARK: - Answers (model-based)

@Suite("Query answers (model-based)")
struct QueryModelTests {
    @Test("indexed lookups equal scans, and scans equal a plain reading of Firebase's rules", arguments: [31, 32, 33, 34] as [UInt64])
    func randomQueriesOnRandomTrees(seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        var failures = 0
        for round in 0..<120 {
            let node = randomTree(using: &random)
            let described = ascii(json(node))
            for _ in 0..<20 {
                let model = randomQuery(on: node, using: &random)
                let parsed = try query(model.parameters)
                #expect(parsed.orderBy == model.expectedOrderBy)
                let scanned = lines(parsed.scan(node))
                let comment: Comment = "seed \(seed), round \(round): \(model) on \(described)"
                let expected = lines(model.answer(node))
                #expect(scanned == expected, comment)
                if model.ordering != .key {
                    // `$key` queries never use an index: the tree itself is in key order.
                    let index = IndexSpec(location: .root, orderBy: parsed.orderBy).build(from: node)
                    #if DEBUG
                    index.checkInvariants()
                    #endif
                    let looked = lines(parsed.lookup(node, in: index))
                    #expect(looked == scanned, comment)
                    if looked != scanned { failures += 1 }
                }
                if scanned != expected { failures += 1 }
                if failures > 5 { return }
            }
        }
    }

    @Test func aQueryOnALeafOrNothingFindsNothing() throws {
        let parsed = try query(["orderBy": "\"$value\"", "limitToFirst": "1"])
        #expect(parsed.scan(.int(5)).isEmpty)
        #expect(parsed.scan(.null).isEmpty)
        #expect(parsed.lookup(.string("x"), in: IndexTree()).isEmpty)
        #expect(try query(["orderBy": "\"$key\""]).scan(.bool(true)).isEmpty)
    }
}

// MARK: - Indexes kept by the database

private let itemsPath = Path(keys: ["items"])
private let valsPath = Path(keys: ["vals"])
/// In a fixed order, so that a seed always draws the same random numbers.
private let declaredSpecList = [
    IndexSpec(location: itemsPath, orderBy: .child(Path(keys: ["score"]))),
    IndexSpec(location: valsPath, orderBy: .value),
    IndexSpec(location: itemsPath, orderBy: .child(Path(keys: ["meta", "rank"]))),
    IndexSpec(location: itemsPath, orderBy: .priority),
]
private let declaredSpecs = Set(declaredSpecList)

/// Keys written to: a few, so that writes keep landing on the same children.
private let itemKeys = ["a", "b", "c", "d", "e", "f", "1", "2", "10", "-1", "007", "\u{E9}", "日本"]

private func set(_ keys: [String], _ value: Node) -> WriteRequest {
    WriteRequest(path: Path(keys: keys.map { ChildKey($0) }), operation: .set(ParsedNode(node: value)))
}

/// A multi-path update (`PATCH`) at `keys`, parsed from JSON as the server does.
private func update(_ keys: [String], _ members: [(String, String)]) throws -> WriteRequest {
    let text = "{" + members.map { JSONWriter.string(.string($0.0)) + ":" + $0.1 }.joined(separator: ",") + "}"
    let entries = try Array(text.utf8).withUnsafeBytes { bytes in
        try JSONParser.parseUpdate(bytes, locationDepth: keys.count)
    }
    return WriteRequest(path: Path(keys: keys.map { ChildKey($0) }), operation: .update(entries))
}

/// Values for the database tests: no canonically equivalent pair of strings (that case has a
/// test of its own below), so that a failure here is about something else.
private func randomStoredValue(using random: inout SeededRandom) -> Node {
    withoutDecomposedAccents(randomOrderingValue(using: &random))
}

/// `node`, unless it is a string with a combining accent (U+0301): then "e".
private func withoutDecomposedAccents(_ node: Node) -> Node {
    guard case .string(let text) = node.withoutPriority, text.unicodeScalars.contains(where: { $0.value == 0x301 }) else {
        return node
    }
    return .string("e")
}

private func randomItem(using random: inout SeededRandom) -> Node {
    var item: Node
    switch Int.random(in: 0..<5, using: &random) {
    case 0: item = randomLeaf(using: &random)
    default:
        item = object([
            ("score", randomStoredValue(using: &random)),
            ("meta", object([("rank", randomStoredValue(using: &random))])),
            ("name", .string("n")),
        ])
    }
    item = withoutDecomposedAccents(item)
    if Int.random(in: 0..<3, using: &random) == 0 { item = item.with(priority: randomPriority(using: &random)) }
    return item
}

private func randomChildren(using random: inout SeededRandom, _ make: (inout SeededRandom) -> Node) -> Node {
    var members: [(String, Node)] = []
    for key in itemKeys.shuffled(using: &random).prefix(Int.random(in: 0...10, using: &random)) {
        members.append((key, make(&random)))
    }
    return object(members)
}

private func priorityJSON(_ priority: Priority?) -> String {
    priority.map { JSONWriter.string($0.node) } ?? "null"
}

/// One random write of every kind a client can make: children set, changed deep inside,
/// deleted, updated several at a time, whole locations and the root replaced, priorities set.
private func randomWrite(using random: inout SeededRandom) throws -> WriteRequest {
    let key = itemKeys.randomElement(using: &random)!
    switch Int.random(in: 0..<15, using: &random) {
    case 0, 1:
        return set(["items", key], randomItem(using: &random))
    case 2:
        return set(["items", key, "score"], randomStoredValue(using: &random))
    case 3:
        return set(["items", key, "meta", "rank"], randomStoredValue(using: &random))
    case 4:
        return set(["items", key, "meta"], object([("rank", randomStoredValue(using: &random))]))
    case 5:
        return set(["items", key], .null)
    case 6:
        var members: [(String, String)] = []
        for child in itemKeys.shuffled(using: &random).prefix(Int.random(in: 1...4, using: &random)) {
            switch Int.random(in: 0..<5, using: &random) {
            case 0: members.append((child, json(randomItem(using: &random))))
            case 1: members.append(("\(child)/score", json(randomStoredValue(using: &random))))
            case 2: members.append(("\(child)/meta/rank", json(randomStoredValue(using: &random))))
            case 3: members.append(("\(child)/.priority", priorityJSON(Bool.random(using: &random) ? randomPriority(using: &random) : nil)))
            default: members.append((child, "null"))
            }
        }
        return try update(["items"], members)
    case 7:
        return set(["items"], randomChildren(using: &random) { randomItem(using: &$0) })
    case 8:
        if Int.random(in: 0..<5, using: &random) == 0 { return set([], .null) }
        return set([], object([
            ("items", randomChildren(using: &random) { randomItem(using: &$0) }),
            ("vals", randomChildren(using: &random) { randomStoredValue(using: &$0) }),
            ("other", .int(1)),
        ]))
    case 9:
        let priority = Int.random(in: 0..<4, using: &random) == 0 ? nil : randomPriority(using: &random)
        return WriteRequest(path: Path(keys: ["items", ChildKey(key)]), operation: .setPriority(priority))
    case 10:
        return set(["vals", key], randomStoredValue(using: &random))
    case 11:
        if Bool.random(using: &random) { return set(["vals"], .int(3)) }
        return set(["vals"], randomChildren(using: &random) { randomStoredValue(using: &$0) })
    case 12:
        let keys = itemKeys.shuffled(using: &random)
        return try update([], [
            ("items/\(keys[0])/score", json(randomStoredValue(using: &random))),
            ("vals/\(keys[1])", json(randomStoredValue(using: &random))),
            ("items/\(keys[2])/.priority", priorityJSON(randomPriority(using: &random))),
        ])
    case 13:
        return set(["vals", key, "x"], randomLeaf(using: &random))
    default:
        // A change inside a child that moves nothing.
        return set(["items", key, "name"], randomLeaf(using: &random))
    }
}

/// The model's name for an index's ordering.
private func ordering(of spec: IndexSpec) -> ModelQuery.Ordering {
    switch spec.orderBy {
    case .key: return .key
    case .value: return .value
    case .priority: return .priority
    case .child(let path): return .child(path.keys.map(\.string))
    }
}

/// Checks that every index `view` carries equals one built afresh from its tree.
@discardableResult
private func expectIndexesMatch(_ view: ReadView, _ specs: Set<IndexSpec>, _ comment: Comment) -> Bool {
    var matching = true
    for spec in specs {
        guard let kept = view.indexes[spec] else {
            Issue.record("no index kept for \(spec)")
            return false
        }
        #if DEBUG
        kept.checkInvariants()
        #endif
        let expected = spelled(spec.build(from: view.root.at(spec.location)).entries)
        let actual = spelled(kept.entries)
        #expect(actual == expected, "\(spec): \(comment)")
        matching = matching && actual == expected
    }
    return matching
}

@Suite("Query indexes kept by the database")
struct QueryIndexMaintenanceTests {
    @Test("random writes keep every declared index equal to one built afresh", arguments: [41, 42, 43] as [UInt64])
    func randomWritesKeepIndexesExact(seed: UInt64) async throws {
        var random = SeededRandom(seed: seed)
        let database = Database(name: "t")
        database.declareIndexes(declaredSpecs)
        #expect(database.readView.indexes.specs == declaredSpecs)
        var history: [ReadView] = []
        for step in 0..<400 {
            _ = try await database.write(try randomWrite(using: &random))
            let view = database.readView
            guard expectIndexesMatch(view, declaredSpecs, "seed \(seed), step \(step)") else { return }
            // Queries answered from the kept indexes equal scans of the data.
            for spec in declaredSpecList {
                let node = view.root.at(spec.location)
                let model = randomQuery(on: node, orderedBy: ordering(of: spec), using: &random)
                let parsed = try query(model.parameters)
                #expect(lines(parsed.lookup(node, in: view.indexes[spec]!)) == lines(parsed.scan(node)), "seed \(seed), step \(step): \(model)")
            }
            if step % 40 == 0 { history.append(view) }
        }
        // Each old version still carries the indexes of its own tree.
        for view in history { expectIndexesMatch(view, declaredSpecs, "an old version, seed \(seed)") }
    }

    @Test func ensureIndexBuildsFromTheCurrentDataAndKeepsItUpToDate() async throws {
        let database = Database(name: "t")
        let posts = object([
            ("p1", object([("likes", .int(5))])), ("p2", object([("likes", .int(1))])), ("p3", object([("title", .string("none"))])),
        ])
        _ = try await database.write(set(["posts"], posts))
        let spec = IndexSpec(location: Path(keys: ["posts"]), orderBy: .child(Path(keys: ["likes"])))
        #expect(!database.readView.indexes.specs.contains(spec))

        database.ensureIndex(spec)
        #expect(database.readView.indexes[spec]?.entries.map(\.key) == ["p3", "p2", "p1"])
        database.ensureIndex(spec)
        #expect(database.readView.indexes[spec]?.entries.map(\.key) == ["p3", "p2", "p1"])

        _ = try await database.write(set(["posts", "p3", "likes"], .int(9)))
        #expect(database.readView.indexes[spec]?.entries.map(\.key) == ["p2", "p1", "p3"])
        expectIndexesMatch(database.readView, [spec], "after a write")

        // Declaring indexes keeps exactly those declared; an index made on demand goes.
        database.declareIndexes([])
        #expect(database.readView.indexes.isEmpty)
        database.declareIndexes([spec])
        #expect(database.readView.indexes[spec]?.entries.map(\.key) == ["p2", "p1", "p3"])
    }

    @Test func anIndexAtALocationThatIsALeafIsEmptyUntilChildrenArrive() async throws {
        let database = Database(name: "t")
        let spec = IndexSpec(location: valsPath, orderBy: .value)
        _ = try await database.write(set(["vals"], .int(3)))
        database.declareIndexes([spec])
        #expect(database.readView.indexes[spec]?.count == 0)
        _ = try await database.write(set(["vals", "k"], .string("x")))
        #expect(database.readView.indexes[spec]?.entries == [IndexEntry(value: .string("x"), key: "k")])
        _ = try await database.write(set(["vals", "k"], .null))
        #expect(database.readView.indexes[spec]?.count == 0)
    }

    @Test func aValueReplacedByACanonicallyEquivalentStringIsReindexed() async throws {
        let database = Database(name: "t")
        let spec = IndexSpec(location: valsPath, orderBy: .value)
        database.declareIndexes([spec])
        _ = try await database.write(set(["vals"], object([("j", .string("f")), ("k", .string("\u{E9}"))])))
        // "e\u{301}" begins with U+0065, before "f"; "\u{E9}" is after it. Swift's `==` calls
        // the two strings equal, so the writer must not use it to skip an index change.
        _ = try await database.write(set(["vals", "k"], .string("e\u{301}")))
        let view = database.readView
        let node = view.root.at(valsPath)
        let upToF = try query(["orderBy": "\"$value\"", "endAt": "\"f\""])
        #expect(upToF.scan(node).map(\.key.string) == ["k", "j"])
        let kept = try #require(view.indexes[spec])
        #expect(spelled(kept.entries) == spelled(spec.build(from: node).entries))
        #expect(upToF.lookup(node, in: kept).map(\.key.string) == ["k", "j"])
    }
}


/// A Firebase REST query: an ordering, an optional range and an optional limit.
///
/// ```swift
/// let query = try Query(parameters: ["orderBy": "\"timestamp\"", "limitToLast": "50"])
/// ```
public struct Query: Sendable, Equatable {
    /// What children are ordered by.
    public enum OrderBy: Sendable, Hashable, CustomStringConvertible {
        case key
        case value
        case priority
        /// A child path, `orderBy="a/b"`.
        case child(Path)

        public var description: String {
            switch self {
            case .key: return "$key"
            case .value: return "$value"
            case .priority: return "$priority"
            case .child(let path): return path.relativeText
            }
        }

        /// Child and value orderings are answered from an index; `$key` from the tree itself,
        /// `$priority` by a scan.
        public var needsIndex: Bool {
            switch self {
            case .child, .value: return true
            case .key, .priority: return false
            }
        }

        /// The ordering value of a child for this ordering (`$key` orders by the key itself).
        public func value(of child: Node, key: ChildKey) -> IndexValue {
            switch self {
            case .key: return .string(key.string)
            case .value: return IndexValue(child)
            case .priority: return IndexValue(priorityOf: child)
            case .child(let path): return IndexValue(child.at(path))
            }
        }
    }

    /// One end of a range: a value and an optional key to break ties.
    public struct Bound: Sendable, Equatable {
        public var value: IndexValue
        public var key: ChildKey?
        /// The value as the request gave it (for `query.startAt` in rules).
        public var node: Node

        public init(value: IndexValue, key: ChildKey? = nil, node: Node) {
            self.value = value
            self.key = key
            self.node = node
        }
    }

    public var orderBy: OrderBy
    /// Children at or after this bound (`startAt`, `equalTo`).
    public var startAt: Bound?
    /// Children strictly after this bound (`startAfter`).
    public var startAfter: Bound?
    /// Children at or before this bound (`endAt`, `equalTo`).
    public var endAt: Bound?
    /// Children strictly before this bound (`endBefore`).
    public var endBefore: Bound?
    /// `equalTo` was given (it sets `startAt` and `endAt`).
    public var equalTo: Bound?
    public var limitToFirst: Int?
    public var limitToLast: Int?

    public init(orderBy: OrderBy) {
        self.orderBy = orderBy
    }

    /// The query parameter names.
    public static let parameterNames: Set<String> = [
        "orderBy", "startAt", "endAt", "equalTo", "startAfter", "endBefore", "limitToFirst", "limitToLast",
    ]

    /// Parses the query parameters of a request (already percent-decoded), with Firebase's
    /// error messages. Returns nil when there are none.
    ///
    /// - Parameter implicitKeyOrder: `shallow=true` reads may page by key without `orderBy`
    ///   (as firebase-tools does); bounds may then also be bare keys.
    public static func parse(_ parameters: [String: String], implicitKeyOrder: Bool = false) throws(DataError) -> Query? {
        guard !parameters.isEmpty else { return nil }
        var query: Query
        if let orderBy = parameters["orderBy"] {
            query = Query(orderBy: try parseOrderBy(orderBy))
        } else if implicitKeyOrder {
            query = Query(orderBy: .key)
        } else {
            throw DataError("orderBy must be defined when other query parameters are defined")
        }
        let bareKeys = implicitKeyOrder && parameters["orderBy"] == nil
        func bound(_ name: String) throws(DataError) -> Bound? {
            guard let text = parameters[name] else { return nil }
            return try query.parseBound(text, name: name, bareKeys: bareKeys)
        }
        query.startAt = try bound("startAt")
        query.startAfter = try bound("startAfter")
        query.endAt = try bound("endAt")
        query.endBefore = try bound("endBefore")
        if let equal = try bound("equalTo") {
            guard query.startAt == nil, query.startAfter == nil, query.endAt == nil, query.endBefore == nil else {
                throw DataError("equalTo cannot be combined with startAt, startAfter, endAt or endBefore")
            }
            query.equalTo = equal
            query.startAt = equal
            query.endAt = equal
        }
        if query.startAt != nil && query.startAfter != nil {
            throw DataError("startAt and startAfter cannot be used together")
        }
        if query.endAt != nil && query.endBefore != nil {
            throw DataError("endAt and endBefore cannot be used together")
        }
        query.limitToFirst = try parseLimit(parameters["limitToFirst"], name: "limitToFirst")
        query.limitToLast = try parseLimit(parameters["limitToLast"], name: "limitToLast")
        if query.limitToFirst != nil && query.limitToLast != nil {
            throw DataError("limitToFirst and limitToLast cannot be used together")
        }
        return query
    }

    /// `"$key"`, `"$value"`, `"$priority"` or a JSON string holding a child path.
    static func parseOrderBy(_ text: String) throws(DataError) -> OrderBy {
        let invalid = DataError("orderBy must be a valid JSON encoded path")
        // A JSON string, not an object that Firebase's data rules would turn into one.
        guard text.drop(while: \.isWhitespace).hasPrefix("\""),
            case .string(let name)? = try? JSONParser.parse(Array(text.utf8)).node
        else { throw invalid }
        switch name {
        case "$key": return .key
        case "$value": return .value
        case "$priority": return .priority
        default:
            let segments = name.split(separator: "/", omittingEmptySubsequences: true)
            guard !segments.isEmpty, segments.count <= Path.maxDepth else { throw invalid }
            var keys: [ChildKey] = []
            for segment in segments {
                let key = String(segment)
                guard KeyValidator.isValid(key), !key.hasPrefix("$") else {
                    throw DataError("orderBy must be a valid JSON encoded path")
                }
                keys.append(ChildKey(key))
            }
            return .child(Path(keys: keys))
        }
    }

    /// A bound: a JSON primitive, optionally followed by `,` and a JSON string key.
    func parseBound(_ text: String, name: String, bareKeys: Bool) throws(DataError) -> Bound {
        let notPrimitive = DataError("Constraint index field must be a JSON primitive")
        var value: Node
        var key: ChildKey?
        if bareKeys, let parsed = Query.primitive(text) {
            // firebase-tools pages with the last key as it is: `startAfter=5` means the key "5".
            if case .string = parsed { value = parsed } else { value = .string(text) }
        } else if let parsed = Query.primitive(text) {
            value = parsed
        } else if let comma = Query.tieBreakComma(in: text), let parsed = Query.primitive(String(text[..<comma])) {
            value = parsed
            guard case .string(let name)? = Query.primitive(String(text[text.index(after: comma)...])) else {
                throw DataError("The key of \(name) (after the comma) must be a JSON string")
            }
            key = ChildKey(name)
        } else if bareKeys {
            value = .string(text)
        } else {
            throw notPrimitive
        }
        if orderBy == .key {
            // Firebase's message for a non-string bound on $key.
            guard case .string = value else { throw DataError("Provided key index type is invalid, must be string") }
            guard key == nil else { throw DataError("\(name) cannot have a key after the comma when orderBy is \"$key\"") }
        }
        if orderBy == .priority, case .bool = value {
            throw DataError("\(name) must be null, a number or a string when orderBy is \"$priority\"")
        }
        return Bound(value: IndexValue(value), key: key, node: value)
    }

    /// A JSON primitive (null, boolean, number, string), or nil. Objects and arrays are not
    /// primitives even when Firebase's data rules would reduce them to one (`{}` to null,
    /// `{".value": 1}` to 1, `{".sv": ...}` to a server value).
    static func primitive(_ text: String) -> Node? {
        let start = text.drop(while: \.isWhitespace).first
        guard start != "{", start != "[", let node = try? JSONParser.parse(Array(text.utf8)).node else { return nil }
        if case .object = node { return nil }
        return node
    }

    /// The comma that separates a value from its tie-break key: the first one outside a string.
    static func tieBreakComma(in text: String) -> String.Index? {
        var inString = false
        var escaped = false
        for index in text.indices {
            let character = text[index]
            if escaped {
                escaped = false
            } else if character == "\\" && inString {
                escaped = true
            } else if character == "\"" {
                inString.toggle()
            } else if character == "," && !inString {
                return index
            }
        }
        return nil
    }

    static func parseLimit(_ text: String?, name: String) throws(DataError) -> Int? {
        guard let text else { return nil }
        guard let limit = Int(text), limit >= 0, limit <= Int(Int32.max) else {
            throw DataError("\(name) must be a non-negative integer")
        }
        return limit
    }

    /// The `query` variable of `.read` rules for this query.
    public var ruleQuery: RuleQuery {
        var rules = RuleQuery()
        rules.orderByKey = orderBy == .key
        rules.orderByValue = orderBy == .value
        rules.orderByPriority = orderBy == .priority
        if case .child = orderBy { rules.orderByChild = orderBy.description }
        rules.startAt = (startAt ?? startAfter)?.node ?? .null
        rules.endAt = (endAt ?? endBefore)?.node ?? .null
        rules.equalTo = equalTo?.node ?? .null
        rules.limitToFirst = limitToFirst
        rules.limitToLast = limitToLast
        return rules
    }
}

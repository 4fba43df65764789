extension Query {
    /// The key sentinels of the realtime protocol: below every key, and above every key (the
    /// JS and iOS SDKs say `[MAX_NAME]`, Android and the Java Admin SDK `[MAX_KEY]`).
    public static let minName = "[MIN_NAME]"
    public static let maxNames: Set<String> = ["[MAX_NAME]", "[MAX_KEY]"]

    /// A query from the realtime protocol's query object: `i` (index: absent for priority,
    /// `.key`, `.value` or a child path), `sp`/`sn`/`sin` (start value, tie-break key,
    /// inclusive), `ep`/`en`/`ein` (end), `l` and `vf` (limit, `l` from the first or `r` from the
    /// last). Nil if the object filters nothing (an ordering alone is the whole location).
    ///
    /// The SDKs encode `startAfter`/`endBefore` three ways (JS: `sin`/`ein: false`; all: the
    /// sentinels `[MAX_NAME]`/`[MIN_NAME]` as tie-break keys; Android and iOS: successor and
    /// predecessor keys); each maps onto the same four bounds.
    init?(wire members: JSONMembers, bytes: UnsafeRawBufferPointer) throws(DataError) {
        func primitive(_ key: String) throws(DataError) -> Node? {
            guard let range = members[key] else { return nil }
            return try JSONMembers.primitive(bytes, range: range)
        }
        func string(_ key: String) throws(DataError) -> String? {
            guard let value = try primitive(key) else { return nil }
            if case .null = value { return nil }
            guard case .string(let text) = value else { throw DataError("Query field \"\(key)\" must be a string.") }
            return text
        }
        func inclusive(_ key: String) throws(DataError) -> Bool {
            guard let value = try primitive(key) else { return true }
            switch value {
            case .bool(let flag): return flag
            case .null: return true
            default: throw DataError("Query field \"\(key)\" must be a boolean.")
            }
        }
        let orderBy: OrderBy
        switch try string("i") {
        case nil, ".priority": orderBy = .priority
        case ".key": orderBy = .key
        case ".value": orderBy = .value
        case let child?:
            let path = try Path(validating: child)
            guard !path.isRoot else { throw DataError("Query index \"\(child)\" is not a valid path.") }
            orderBy = .child(path)
        }
        var query = Query(orderBy: orderBy)
        func bound(_ value: Node, key: String?, name: String) throws(DataError) -> Bound {
            if case .object = value { throw DataError("Query \(name) must be a JSON primitive.") }
            if orderBy == .key {
                guard case .string = value else { throw DataError("Provided key index type is invalid, must be string") }
            }
            if orderBy == .priority, case .bool = value {
                throw DataError("Query \(name) must be null, a number or a string when ordering by priority.")
            }
            let tieBreak = key.flatMap { Query.minName == $0 || Query.maxNames.contains($0) ? nil : ChildKey($0) }
            return Bound(value: IndexValue(value), key: orderBy == .key ? nil : tieBreak, node: value)
        }
        if let start = try primitive("sp") {
            let key = try string("sn")
            let startBound = try bound(start, key: key, name: "start")
            // Past every key at the value: exclusive whatever `sin` says; before them all:
            // inclusive.
            let startInclusive = try inclusive("sin")
            let exclusive = (key.map { Query.maxNames.contains($0) } ?? false) || (key != Query.minName && !startInclusive)
            if exclusive { query.startAfter = startBound } else { query.startAt = startBound }
        }
        if let end = try primitive("ep") {
            let key = try string("en")
            let endBound = try bound(end, key: key, name: "end")
            let endInclusive = try inclusive("ein")
            let exclusive = key == Query.minName || (!(key.map { Query.maxNames.contains($0) } ?? false) && !endInclusive)
            if exclusive { query.endBefore = endBound } else { query.endAt = endBound }
        }
        if let start = query.startAt, let end = query.endAt, start == end { query.equalTo = start }
        if let limitNode = try primitive("l") {
            let limit: Int
            switch limitNode {
            case .int(let value) where value >= 0 && value <= Int64(Int32.max): limit = Int(value)
            case .double(let value) where value >= 0 && value <= Double(Int32.max) && value.rounded() == value: limit = Int(value)
            default: throw DataError("Query limit (\"l\") must be a non-negative integer.")
            }
            switch try string("vf") {
            case "r": query.limitToLast = limit
            case "l", nil: query.limitToFirst = limit
            case let other?: throw DataError("Query field \"vf\" must be \"l\" or \"r\", not \"\(other)\".")
            }
        }
        guard query.startAt != nil || query.startAfter != nil || query.endAt != nil || query.endBefore != nil
            || query.limitToFirst != nil || query.limitToLast != nil
        else { return nil }
        self = query
    }
}

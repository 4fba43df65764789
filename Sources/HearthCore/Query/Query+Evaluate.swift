extension Query {
    /// Where an entry stands against a bound: -1 before it, 0 at it, 1 after it. A bound
    /// without a key stands for every key at its value: `lowKeys` places it before them all
    /// (start bounds), otherwise after them all (end bounds).
    func compare(_ entry: IndexEntry, to bound: Bound, lowKeys: Bool) -> Int {
        if orderBy == .key {
            // $key bounds are strings compared as keys (32-bit integers first).
            guard case .string(let name) = bound.value else { return 1 }
            return ChildKey.compare(entry.key, ChildKey(name)).signum()
        }
        let byValue = IndexValue.compare(entry.value, bound.value)
        if byValue != 0 { return byValue }
        guard let key = bound.key else { return lowKeys ? 1 : -1 }
        return ChildKey.compare(entry.key, key).signum()
    }

    /// True for entries before the start of the range.
    func isBeforeStart(_ entry: IndexEntry) -> Bool {
        if let startAt { return compare(entry, to: startAt, lowKeys: true) < 0 }
        if let startAfter {
            // A key-less startAfter excludes every entry at its value.
            return compare(entry, to: startAfter, lowKeys: false) <= 0
        }
        return false
    }

    /// True for entries after the end of the range.
    func isAfterEnd(_ entry: IndexEntry) -> Bool {
        if let endAt { return compare(entry, to: endAt, lowKeys: false) > 0 }
        if let endBefore { return compare(entry, to: endBefore, lowKeys: true) >= 0 }
        return false
    }

    /// The matching children of `node`, in query order, by sorting every child: O(n log n).
    /// The reference answer that indexed queries must equal; also used when no index exists.
    public func scan(_ node: Node) -> [ChildEntry] {
        guard case .object(let children) = node.withoutPriority else { return [] }
        if orderBy == .key { return keyRange(children) }
        var ordered: [(entry: IndexEntry, value: Node)] = []
        ordered.reserveCapacity(children.count)
        for child in children {
            ordered.append((IndexEntry(value: orderBy.value(of: child.value, key: child.key), key: child.key), child.value))
        }
        ordered.sort { IndexEntry.compare($0.entry, $1.entry) < 0 }
        let inRange = ordered.filter { !isBeforeStart($0.entry) && !isAfterEnd($0.entry) }
        return limited(inRange.map { ChildEntry(key: $0.entry.key, value: $0.value) })
    }

    /// `$key` queries read the children in key order directly: O(log n + k).
    func keyRange(_ children: ChildMap) -> [ChildEntry] {
        var start = 0
        var end = children.count
        if let bound = startAt ?? startAfter, case .string(let name) = bound.value {
            start = children.rank(of: ChildKey(name))
            if startAfter != nil, start < children.count, children.entry(at: start).key == ChildKey(name) { start += 1 }
        }
        if let bound = endAt ?? endBefore, case .string(let name) = bound.value {
            end = children.rank(of: ChildKey(name))
            if endAt != nil, end < children.count, children.entry(at: end).key == ChildKey(name) { end += 1 }
        }
        guard start < end else { return [] }
        if let limitToFirst { end = min(end, start + limitToFirst) }
        if let limitToLast { start = max(start, end - limitToLast) }
        guard start < end else { return [] }
        var result: [ChildEntry] = []
        result.reserveCapacity(end - start)
        children.forEach(from: start) { entry in
            result.append(entry)
            return result.count < end - start
        }
        return result
    }

    func limited(_ entries: [ChildEntry]) -> [ChildEntry] {
        if let limitToFirst { return Array(entries.prefix(limitToFirst)) }
        if let limitToLast { return Array(entries.suffix(limitToLast)) }
        return entries
    }

    /// The matching children of `node` read from `index` (which must index `node`'s children
    /// by this query's ordering): O(log n + k) lookups.
    public func lookup(_ node: Node, in index: IndexTree) -> [ChildEntry] {
        guard case .object(let children) = node.withoutPriority else { return [] }
        var keys: [ChildKey] = []
        if let limitToLast {
            guard limitToLast > 0 else { return [] }
            index.forEachReversed(from: isAfterEnd) { entry in
                guard !isBeforeStart(entry) else { return false }
                keys.append(entry.key)
                return keys.count < limitToLast
            }
            keys.reverse()
        } else {
            let limit = limitToFirst ?? Int.max
            guard limit > 0 else { return [] }
            index.forEach(from: isBeforeStart) { entry in
                guard !isAfterEnd(entry) else { return false }
                keys.append(entry.key)
                return keys.count < limit
            }
        }
        return keys.compactMap { key in children[key].map { ChildEntry(key: key, value: $0) } }
    }
}

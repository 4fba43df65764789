/// The writes a realtime session asked to be made when it ends (Firebase's `onDisconnect()`:
/// the wire actions `o`, `om` and `oc`), kept as the SDKs keep them: a sparse tree of
/// overwrites, no path below another.
///
/// - `set` at X replaces every pending write at or below X; under a pending write at an
///   ancestor, it goes into that write's value.
/// - `update` at X is one `set` per key.
/// - `cancel` at X drops every pending write at or below X; a pending write at an ancestor A
///   is first split into one write per child of A, so that writes beside X still happen (a
///   leaf at A is kept whole and a remove at A dropped, as the SDKs do).
///
/// When the session ends the writes are made as one update at the root, their server values
/// resolved then: timestamps are the time the writes fire.
public struct OnDisconnectWrites: Sendable {
    /// Pending overwrites by path; no path is an ancestor of another.
    public private(set) var overwrites: [Path: ParsedNode] = [:]

    public init() {}

    /// Pending writes as ``overwrites`` listed them (no path below another), read back from
    /// where they were kept.
    public init(overwrites: [Path: ParsedNode]) {
        self.overwrites = overwrites
    }

    public var isEmpty: Bool { overwrites.isEmpty }

    /// `onDisconnect().set(value)` (or `.remove()`, with null) at `path`.
    public mutating func set(_ path: Path, to value: ParsedNode) {
        if let ancestor = overwrites.keys.first(where: { $0.contains(path) && $0 != path }) {
            let relative = ancestor.relative(path)!
            overwrites[ancestor] = overwrites[ancestor]!.setting(relative, to: value)
            return
        }
        for pending in overwrites.keys where path.contains(pending) { overwrites[pending] = nil }
        overwrites[path] = value
    }

    /// `onDisconnect().update(values)` at `path`: one `set` per entry. Priorities are set with
    /// the value at their path (`{"a/.priority": ...}` is not supported here).
    public mutating func update(_ path: Path, with entries: [UpdateEntry]) throws(DataError) {
        try UpdateEntry.checkNoOverlap(entries)
        for entry in entries {
            guard !entry.isPriority else {
                throw DataError("Invalid data; onDisconnect().update() can't set a priority; set it with the value.")
            }
            set(path.appending(entry.path), to: entry.value)
        }
    }

    /// `onDisconnect().cancel()` at `path`.
    public mutating func cancel(_ path: Path) {
        for pending in overwrites.keys where path.contains(pending) { overwrites[pending] = nil }
        guard let ancestor = overwrites.keys.first(where: { $0.contains(path) }) else { return }
        let value = overwrites[ancestor]!
        if value.node.isNull {
            // A pending remove has no children to keep: it is dropped whole.
            overwrites[ancestor] = nil
            return
        }
        guard case .object(let children) = value.node.withoutPriority else { return }  // a leaf stays whole
        overwrites[ancestor] = nil
        for child in children {
            let childPath = ancestor.appending(child.key)
            let childValue = value.child(child.key)
            if childPath.contains(path) {
                overwrites[childPath] = childValue
                cancel(path)
            } else {
                overwrites[childPath] = childValue
            }
        }
    }

    /// The write to make when the session ends, at `time` (ms): one update at the root; nil if
    /// nothing is pending.
    public func request(firingAt time: Int64, access: WriteAccess?) -> WriteRequest? {
        guard !isEmpty else { return nil }
        let entries = overwrites.sorted { $0.key.keys.lexicographicallyPrecedes($1.key.keys) }.map { path, value in
            UpdateEntry(rawKey: path.description, path: path, isPriority: false, value: value.stamped(at: time))
        }
        return WriteRequest(path: .root, operation: .update(entries), access: access)
    }
}

extension ParsedNode {
    /// The same data with every timestamp placeholder's value set to `time` (ms). (A timestamp
    /// given as a priority keeps the time it was read.)
    public func stamped(at time: Int64) -> ParsedNode {
        guard !timestamps.isEmpty else { return self }
        var node = self.node
        for path in timestamps {
            let old = node.at(path)
            guard case .int = old.withoutPriority else { continue }
            let value = Node.int(time).with(priority: old.priority)
            node = path.isRoot ? value : node.setting(path, to: value)
        }
        return ParsedNode(node: node, increments: increments, timestamps: timestamps)
    }

    /// The data at the child `key`, with its server values.
    func child(_ key: ChildKey) -> ParsedNode {
        let prefix = Path(keys: [key])
        return ParsedNode(
            node: node.at(prefix),
            increments: increments.compactMap { increment in
                prefix.relative(increment.relativePath).map { PendingIncrement(relativePath: $0, delta: increment.delta) }
            },
            timestamps: timestamps.compactMap { prefix.relative($0) })
    }

    /// This data with `value` (and its server values) put at `relative`. Server values at or
    /// below `relative`, and at its ancestors (whose value is now an object), are gone.
    func setting(_ relative: Path, to value: ParsedNode) -> ParsedNode {
        guard !relative.isRoot else { return value }
        let kept = { (path: Path) in !relative.contains(path) && !path.contains(relative) }
        return ParsedNode(
            node: node.setting(relative, to: value.node),
            increments: increments.filter { kept($0.relativePath) }
                + value.increments.map { PendingIncrement(relativePath: relative.appending($0.relativePath), delta: $0.delta) },
            timestamps: timestamps.filter(kept) + value.timestamps.map { relative.appending($0) })
    }
}

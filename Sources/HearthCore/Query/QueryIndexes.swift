/// Which children an index orders, and by what: the children of `location`, by `orderBy`
/// (a child path, `$value` or `$priority`; `$key` needs no index, the tree is in key order).
public struct IndexSpec: Sendable, Hashable, CustomStringConvertible {
    public var location: Path
    public var orderBy: Query.OrderBy

    public init(location: Path, orderBy: Query.OrderBy) {
        self.location = location
        self.orderBy = orderBy
    }

    public var description: String { "\(location) by \(orderBy)" }

    /// The index of `node`'s children. O(n log n).
    public func build(from node: Node) -> IndexTree {
        guard case .object(let children) = node.withoutPriority else { return IndexTree() }
        var entries = ContiguousArray<IndexEntry>()
        entries.reserveCapacity(children.count)
        for child in children { entries.append(IndexEntry(value: orderBy.value(of: child.value, key: child.key), key: child.key)) }
        entries.sort { IndexEntry.compare($0, $1) < 0 }
        return IndexTree(sorted: entries)
    }
}

/// The query indexes of one version of a namespace's tree. A value: each version of the
/// tree carries the indexes that match it, so a reader never sees them disagree.
public struct QueryIndexes: Sendable {
    var trees: [IndexSpec: IndexTree] = [:]

    public init() {}

    public var isEmpty: Bool { trees.isEmpty }
    public var specs: Set<IndexSpec> { Set(trees.keys) }

    /// The index for `spec`, if it is kept.
    public subscript(spec: IndexSpec) -> IndexTree? { trees[spec] }

    /// Keeps exactly `specs`: existing indexes stay, missing ones are built from `root`.
    public mutating func keep(_ specs: Set<IndexSpec>, root: Node) {
        trees = trees.filter { specs.contains($0.key) }
        for spec in specs where trees[spec] == nil { trees[spec] = spec.build(from: root.at(spec.location)) }
    }

    /// Adds the index for `spec`, built from `root`, if it is not kept yet.
    public mutating func add(_ spec: IndexSpec, root: Node) {
        if trees[spec] == nil { trees[spec] = spec.build(from: root.at(spec.location)) }
    }

    /// Brings every index up to date with a change that turned `old` into `new`.
    ///
    /// - Complexity: O(log n) per changed child of an indexed location; a change at or above
    ///   an indexed location rebuilds that index.
    public mutating func apply(_ mutations: [Change.Mutation], old: Node, new: Node) {
        // Dictionary values change in place through their indices: no rehashing of specs.
        var position = trees.values.startIndex
        while position != trees.values.endIndex {
            defer { position = trees.values.index(after: position) }
            let spec = trees.keys[position]
            let location = spec.location
            var rebuild = false
            var changed: [ChildKey] = []
            for mutation in mutations {
                let path = mutation.path
                if path.depth > location.depth, location.contains(path) {
                    let key = path.keys[location.depth]
                    if !changed.contains(key) { changed.append(key) }
                } else if path.contains(location) {
                    rebuild = true
                    break
                }
            }
            if rebuild {
                trees.values[position] = spec.build(from: new.at(location))
                continue
            }
            guard !changed.isEmpty else { continue }
            let before = old.at(location), after = new.at(location)
            for key in changed {
                let was = before.child(key), now = after.child(key)
                let oldEntry = was.isNull ? nil : IndexEntry(value: spec.orderBy.value(of: was, key: key), key: key)
                let newEntry = now.isNull ? nil : IndexEntry(value: spec.orderBy.value(of: now, key: key), key: key)
                guard oldEntry != newEntry else { continue }
                if let oldEntry { trees.values[position].remove(oldEntry) }
                if let newEntry { trees.values[position].insert(newEntry) }
            }
        }
    }
}

// MARK: - Reading and changing nodes by path

extension Node {
    /// The node at `path` below this one, or `.null`.
    ///
    /// - Complexity: O(depth × log n)
    public func at(_ path: Path) -> Node {
        var node = self
        for key in path.keys {
            node = node.child(key)
            if node.isNull { return .null }
        }
        return node
    }

    /// A copy with the value at `path` replaced by `value`; `.null` deletes it.
    ///
    /// Writing below a leaf replaces the leaf with an object. Objects left with no children are
    /// removed, up to this node. An object keeps its priority when a child changes.
    ///
    /// - Complexity: O(depth × log n); untouched subtrees are shared, not copied.
    public func setting(_ path: Path, to value: Node) -> Node {
        var copy = self
        copy.set(path, to: value)
        return copy
    }

    /// Replaces the value at `path` in place: where this tree holds the only reference to a
    /// page (as during recovery) it is changed without copying; shared pages are copied, so
    /// other versions of the tree never change.
    public mutating func set(_ path: Path, to value: Node) {
        set(path.keys[...], to: value)
    }

    mutating func set(_ keys: ArraySlice<ChildKey>, to value: Node) {
        guard let key = keys.first else {
            self = value
            return
        }
        guard case .object = self else {
            setBelowNonObject(keys, to: value)
            return
        }
        // `consume` moves the children out, so that they may be unique and changed in place.
        // (The switch binds nothing else: a binding of the whole value makes a copy first.)
        var children: ChildMap
        switch consume self {
        case .object(let map): children = map
        default: preconditionFailure("checked above")
        }
        Node.set(key, in: &children, below: keys.dropFirst(), to: value)
        self = Node.object(normalizing: children)
    }

    /// Sets `rest` below child `key` of `children`, changing the child in place.
    static func set(_ key: ChildKey, in children: inout ChildMap, below rest: ArraySlice<ChildKey>, to value: Node) {
        children.modify(key) { child in child.set(rest, to: value) }
    }

    /// Writing below a leaf, nothing, or an object with a priority (the rare cases; these copy).
    mutating func setBelowNonObject(_ keys: ArraySlice<ChildKey>, to value: Node) {
        let priority = self.priority
        var children = self.children
        if case .object = withoutPriority {
            Node.set(keys.first!, in: &children, below: keys.dropFirst(), to: value)
            self = Node.object(normalizing: children).with(priority: priority)
            return
        }
        // A leaf or nothing: there is nothing below it to delete; writing below it replaces it
        // with an object (keeping its priority, as Firebase does).
        var child = Node.null
        child.set(keys.dropFirst(), to: value)
        guard !child.isNull else { return }
        var fresh = ChildMap()
        fresh.set(keys.first!, child)
        self = Node.object(fresh).with(priority: priority)
    }

    /// A copy with the priority of the node at `path` set (nil clears it). A priority on a
    /// missing node is ignored, as in Firebase.
    public func settingPriority(_ path: Path, to priority: Priority?) -> Node {
        let target = at(path)
        if target.isNull { return self }
        return setting(path, to: target.with(priority: priority))
    }

    #if DEBUG
    /// Checks the tree's invariants: no null children, no empty objects, valid keys, ordered
    /// B+trees, no nested priorities. Debug builds only; traps on the first violation.
    public func checkInvariants() {
        switch self {
        case .object(let children):
            precondition(!children.isEmpty, "empty object stored")
            children.checkInvariants()
            children.forEach { entry in
                precondition(!entry.value.isNull, "null child stored at \(entry.key)")
                precondition(KeyValidator.isValid(entry.key.string), "invalid key \(entry.key)")
                entry.value.checkInvariants()
            }
        case .prioritized(let inner, _):
            precondition(!inner.isNull, "priority on null")
            if case .prioritized = inner { preconditionFailure("nested priority") }
            inner.checkInvariants()
        default:
            break
        }
    }
    #endif
}

// MARK: - Server values

extension Node {
    /// Firebase's `increment`: adds `delta` to this value. A missing or non-numeric value counts
    /// as absent, so the result is `delta`. Two integers add as integers unless that overflows,
    /// when the sum is computed as a double; a double on either side makes a double.
    public func incremented(by delta: Node) -> Node {
        switch (withoutPriority, delta) {
        case let (.int(a), .int(b)):
            let (sum, overflow) = a.addingReportingOverflow(b)
            return overflow ? .double(Double(a) + Double(b)) : .int(sum)
        case let (.int(a), .double(b)): return .double(Double(a) + b)
        case let (.double(a), .int(b)): return .double(a + Double(b))
        case let (.double(a), .double(b)): return .double(a + b)
        default: return delta
        }
    }
}

extension ParsedNode {
    /// The node with every pending increment resolved against `current`, the value now stored
    /// at the write location.
    /// Throws if a sum leaves the finite doubles (JSON has no infinity).
    public func resolved(against current: Node) throws(DataError) -> Node {
        var node = self.node
        for increment in increments {
            let existing = current.at(increment.relativePath)
            let value = existing.incremented(by: increment.delta)
            if case .double(let sum) = value, !sum.isFinite {
                throw DataError.invalidData("Invalid data; the increment at \(increment.relativePath) makes the number out of range.")
            }
            if increment.relativePath.isRoot {
                node = value.with(priority: node.priority)
            } else {
                let placeholder = node.at(increment.relativePath)
                node = node.setting(increment.relativePath, to: value.with(priority: placeholder.priority))
            }
        }
        return node
    }
}

extension Node {
    /// `shallow=true`: an object's children each become `true`; a leaf stays as it is (without
    /// its priority).
    public var shallow: Node {
        guard case .object(let children) = withoutPriority else { return withoutPriority }
        var entries = ContiguousArray<ChildEntry>()
        entries.reserveCapacity(children.count)
        for entry in children { entries.append(ChildEntry(key: entry.key, value: .bool(true))) }
        return .object(ChildMap(sortedEntries: entries))
    }
}

/// A value in the tree: a leaf (boolean, number, string), an object of children, or nothing.
///
/// Nodes are immutable values with structural sharing: an object's children live in a
/// persistent ``ChildMap``, so a changed tree shares every untouched subtree with the old one.
/// Invariants (kept by every constructor in this module): an `.object` has at least one child,
/// no child is `.null`, and `.prioritized` never wraps `.null` or another `.prioritized`.
public enum Node: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case object(ChildMap)
    /// A node with a Firebase priority (rare, so kept out of the common cases).
    indirect case prioritized(Node, Priority)

    /// The node without its priority.
    @inlinable
    public var withoutPriority: Node {
        if case .prioritized(let inner, _) = self { return inner }
        return self
    }

    /// The node's priority, if it has one.
    @inlinable
    public var priority: Priority? {
        if case .prioritized(_, let priority) = self { return priority }
        return nil
    }

    /// The same value with `priority` (nil removes it). Null nodes have no priority.
    public func with(priority: Priority?) -> Node {
        let inner = withoutPriority
        guard let priority, !inner.isNull else { return inner }
        return .prioritized(inner, priority)
    }

    /// True for `.null`.
    @inlinable
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// True for a leaf (boolean, number or string), with or without a priority.
    public var isLeaf: Bool {
        switch withoutPriority {
        case .bool, .int, .double, .string: return true
        default: return false
        }
    }

    /// The children of an object node; empty for leaves and null.
    @inlinable
    public var children: ChildMap {
        if case .object(let children) = withoutPriority { return children }
        return ChildMap()
    }

    /// The child named `key`, or `.null`.
    @inlinable
    public func child(_ key: ChildKey) -> Node {
        if case .object(let children) = withoutPriority { return children[key] ?? .null }
        return .null
    }

    /// Makes an object node from children, or `.null` if there are none.
    @inlinable
    public static func object(normalizing children: ChildMap) -> Node {
        children.isEmpty ? .null : .object(children)
    }

    /// An object of `entries` given in any order (a query's answer, in query order), or
    /// `.null` if there are none.
    public static func object(unsortedEntries entries: [ChildEntry]) -> Node {
        object(normalizing: ChildMap(sortedEntries: ContiguousArray(entries.sorted { $0.key < $1.key })))
    }
}

/// A Firebase priority: a number or a string.
public enum Priority: Sendable, Hashable {
    case number(Double)
    case string(String)

    /// The priority as a leaf node.
    public var node: Node {
        switch self {
        case .number(let number):
            if let exact = Int64(exactly: number) { return .int(exact) }
            return .double(number)
        case .string(let string): return .string(string)
        }
    }

    /// Reads a priority from a leaf node; nil for null; throws for other values.
    public init?(node: Node) throws(DataError) {
        switch node.withoutPriority {
        case .null: return nil
        case .int(let value): self = .number(Double(value))
        case .double(let value): self = .number(value)
        case .string(let value): self = .string(value)
        default: throw DataError.invalidData("Invalid data; priority must be a number, a string or null.")
        }
    }
}

extension Node: Equatable {
    /// Deep equality. Integers and doubles with the same value are equal (as in JSON).
    public static func == (lhs: Node, rhs: Node) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.double(a), .double(b)): return a == b
        case let (.int(a), .double(b)), let (.double(b), .int(a)): return Double(a) == b && Int64(exactly: b) == a
        case let (.string(a), .string(b)): return a == b
        case let (.object(a), .object(b)):
            guard a.count == b.count else { return false }
            var left = a.makeIterator()
            var right = b.makeIterator()
            while let x = left.next(), let y = right.next() {
                if x.key != y.key || x.value != y.value { return false }
            }
            return true
        case let (.prioritized(a, p), .prioritized(b, q)): return p == q && a == b
        default: return false
        }
    }
}

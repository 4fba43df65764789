/// The value a child is ordered by in a query: the child itself (`$value`), one of its
/// descendants (`orderBy="a/b"`) or its priority (`$priority`), reduced to what ordering needs.
///
/// Firebase's order: null (or missing) < false < true < numbers (ascending) < strings (UTF-16
/// code-unit order) < objects (all equal); ties are broken by key.
public enum IndexValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case object

    /// The value of `node` for ordering (priorities are not part of it).
    public init(_ node: Node) {
        switch node.withoutPriority {
        case .null: self = .null
        case .bool(let value): self = .bool(value)
        case .int(let value): self = .number(Double(value))
        case .double(let value): self = .number(value)
        case .string(let value): self = .string(value)
        case .object: self = .object
        case .prioritized: self = .null  // unreachable: withoutPriority removed it
        }
    }

    /// A node's priority for `$priority` ordering: none < numbers < strings.
    public init(priorityOf node: Node) {
        switch node.priority {
        case nil: self = .null
        case .number(let value)?: self = .number(value)
        case .string(let value)?: self = .string(value)
        }
    }

    var rank: Int {
        switch self {
        case .null: return 0
        case .bool(false): return 1
        case .bool(true): return 2
        case .number: return 3
        case .string: return 4
        case .object: return 5
        }
    }

    /// -1, 0 or 1, in Firebase's order.
    public static func compare(_ lhs: IndexValue, _ rhs: IndexValue) -> Int {
        let (left, right) = (lhs.rank, rhs.rank)
        if left != right { return left < right ? -1 : 1 }
        switch (lhs, rhs) {
        case (.number(let a), .number(let b)): return a < b ? -1 : (a > b ? 1 : 0)
        case (.string(let a), .string(let b)): return UTF16Order.compare(a, b).signum()
        default: return 0
        }
    }

    /// Equal values: strings by their bytes, as data compares them (Swift's `==` on strings
    /// would equate canonically equivalent spellings such as `é` and `e\u{301}`).
    public static func == (lhs: IndexValue, rhs: IndexValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null), (.object, .object): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.string(let a), .string(let b)): return a.utf8.elementsEqual(b.utf8)
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(rank)
        switch self {
        case .number(let value): hasher.combine(value)
        case .string(let value): for byte in value.utf8 { hasher.combine(byte) }
        default: break
        }
    }

    /// The value as a tree node (for `query.startAt` in rules).
    public var node: Node {
        switch self {
        case .null, .object: return .null
        case .bool(let value): return .bool(value)
        case .number(let value):
            if value == value.rounded(), abs(value) < 9.0e15 { return .int(Int64(value)) }
            return .double(value)
        case .string(let value): return .string(value)
        }
    }
}

/// One child's place in an index: its ordering value, then its key.
public struct IndexEntry: Sendable, Hashable {
    public var value: IndexValue
    public var key: ChildKey

    public init(value: IndexValue, key: ChildKey) {
        self.value = value
        self.key = key
    }

    /// -1, 0 or 1: by value, ties by key (Firebase key order).
    @inline(__always)
    public static func compare(_ lhs: IndexEntry, _ rhs: IndexEntry) -> Int {
        let byValue = IndexValue.compare(lhs.value, rhs.value)
        if byValue != 0 { return byValue }
        return ChildKey.compare(lhs.key, rhs.key).signum()
    }
}

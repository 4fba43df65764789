/// What a rule is evaluated against: who is asking, the data before and after the write, the
/// rule's location and wildcard captures, the time, and (for reads) the query.
public struct RuleContext: Sendable {
    /// The `auth` variable: the identity's object, or `.null` for anonymous callers.
    public var auth: Node
    /// The data as it is (`root`, `data`).
    public var root: Node
    /// The data as it will be if the write succeeds (`newData`); the same as `root` for reads.
    public var newRoot: Node
    /// The location of the rule being evaluated.
    public var location: Path
    /// `root` at `location`, kept so that walking down a path does not search from the top.
    public var data: Node
    /// `newRoot` at `location`.
    public var newData: Node
    /// The values of the `$wildcards` in scope, outermost first.
    public var wildcards: [String]
    /// `now`: milliseconds since the epoch.
    public var now: Int64
    /// `query`: the read's query parameters.
    public var query: RuleQuery

    public init(
        auth: Node = .null, root: Node = .null, newRoot: Node? = nil, location: Path = .root,
        wildcards: [String] = [], now: Int64 = 0, query: RuleQuery = RuleQuery()
    ) {
        self.auth = auth
        self.root = root
        self.newRoot = newRoot ?? root
        self.location = location
        self.data = root.at(location)
        self.newData = (newRoot ?? root).at(location)
        self.wildcards = wildcards
        self.now = now
        self.query = query
    }
}

/// The `query` variable of `.read` rules. A plain read orders by key and has no bounds, as
/// Firebase reports it.
public struct RuleQuery: Sendable, Equatable {
    public var orderByKey = true
    public var orderByValue = false
    public var orderByPriority = false
    /// `orderBy="child/path"`.
    public var orderByChild: String?
    public var startAt: Node = .null
    public var endAt: Node = .null
    public var equalTo: Node = .null
    public var limitToFirst: Int?
    public var limitToLast: Int?

    public init() {}
}

/// A value while a rule is evaluated.
enum RuleValue: Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    /// A JSON object: part of `auth`, or what `val()` returns for a node with children (which
    /// rules can only compare, never look into).
    case object(Node)
    case snapshot(RuleSnapshot)
    case array([RuleValue])

    init(_ node: Node) {
        switch node.withoutPriority {
        case .null: self = .null
        case .bool(let value): self = .bool(value)
        case .int(let value): self = .number(Double(value))
        case .double(let value): self = .number(value)
        case .string(let value): self = .string(value)
        case .object: self = .object(node.withoutPriority)
        case .prioritized: self = .null  // unreachable: withoutPriority removed it
        }
    }

    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .object: return "object"
        case .snapshot: return "snapshot"
        case .array: return "array"
        }
    }
}

/// A `RuleDataSnapshot`: the data at one location of one version of the tree.
struct RuleSnapshot: Sendable {
    let root: Node
    let path: Path
    let node: Node
}

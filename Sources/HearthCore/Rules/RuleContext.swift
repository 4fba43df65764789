/// What a rule is evaluated against: who is asking, the data before and after the write, the
/// rule's location and wildcard captures, the time, and (for reads) the query.
public struct RuleContext: Sendable {
    /// The `auth` variable: the identity's object, or `.null` for anonymous callers.
    public var auth: Node
    /// The data as it is (`root`, `data`).
    public var root: Node
    /// The data as it will be if the write succeeds (`newData`); the same as `root` for reads.
    public var newRoot: Node
    /// The location of the rule being evaluated: the first `locationDepth` keys of
    /// `locationPath` (kept apart so walking down a path builds no new paths).
    var locationPath: Path
    var locationDepth: Int

    /// The location of the rule being evaluated.
    public var location: Path {
        get { RuleSnapshot.path(locationPath, depth: locationDepth, extra: []) }
        set {
            locationPath = newValue
            locationDepth = newValue.depth
        }
    }
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
    /// Regular-expression steps left for the whole request: a write that runs a costly regex
    /// on many children is denied once they are spent, instead of holding the writer.
    public var budget = RuleBudget()

    public init(
        auth: Node = .null, root: Node = .null, newRoot: Node? = nil, location: Path = .root,
        wildcards: [String] = [], now: Int64 = 0, query: RuleQuery = RuleQuery()
    ) {
        self.auth = auth
        self.root = root
        self.newRoot = newRoot ?? root
        self.locationPath = location
        self.locationDepth = location.depth
        self.data = root.at(location)
        self.newData = (newRoot ?? root).at(location)
        self.wildcards = wildcards
        self.now = now
        self.query = query
    }
}

/// The work one request's rules may do (regex backtracking steps), shared by every rule the
/// request evaluates.
public final class RuleBudget: @unchecked Sendable {
    /// Steps for one whole read or write check: a costly regex on many children stops after
    /// about two seconds of work, while a big import with a cheap one still passes.
    public static let requestSteps = 20_000_000

    var remaining: Int

    public init(steps: Int = RuleBudget.requestSteps) {
        remaining = steps
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
    /// What `val()` returns for a node with children: a value rules can hold but not look
    /// into (Firebase returns a sentinel, not an object).
    case opaque

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
        case .opaque: return "object (val() of a node with children)"
        }
    }
}

/// A `RuleDataSnapshot`: the data at one location of one version of the tree.
///
/// Its path (needed only by `parent()`) is kept in pieces, the first `depth` keys of `base`
/// and then `extra`, so that `data`, `newData` and `child('literal')` build no arrays.
struct RuleSnapshot: Sendable {
    let root: Node
    let node: Node
    let base: Path
    let depth: Int
    let extra: [ChildKey]

    init(root: Node, node: Node, base: Path, depth: Int, extra: [ChildKey] = []) {
        self.root = root
        self.node = node
        self.base = base
        self.depth = depth
        self.extra = extra
    }

    var isRoot: Bool { depth == 0 && extra.isEmpty }

    var path: Path { RuleSnapshot.path(base, depth: depth, extra: extra) }

    static func path(_ base: Path, depth: Int, extra: [ChildKey]) -> Path {
        if depth == base.depth && extra.isEmpty { return base }
        return Path(keys: Array(base.keys[..<depth]) + extra)
    }

    /// The snapshot `keys` below this one.
    func descendant(_ keys: [ChildKey]) -> RuleSnapshot {
        var node = self.node
        for key in keys { node = node.child(key) }
        return RuleSnapshot(root: root, node: node, base: base, depth: depth, extra: extra.isEmpty ? keys : extra + keys)
    }
}

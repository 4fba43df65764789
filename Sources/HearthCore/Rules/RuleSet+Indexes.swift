extension RuleSet {
    /// The ordering an `.indexOn` entry asks for: `".value"`, or a child path.
    static func ordering(forIndexOn name: String) -> Query.OrderBy? {
        if name == ".value" { return .value }
        let keys = name.split(separator: "/", omittingEmptySubsequences: true).map { ChildKey(String($0)) }
        guard !keys.isEmpty else { return nil }
        return .child(Path(keys: keys))
    }

    /// The indexes declared by `.indexOn` at locations without `$wildcards`, which are kept from
    /// the moment the rules load. (Those under a wildcard are made when a query needs them.)
    public var concreteIndexes: Set<IndexSpec> {
        var specs: Set<IndexSpec> = []
        func walk(_ node: RuleNode, _ path: Path) {
            for name in node.indexOn {
                if let orderBy = RuleSet.ordering(forIndexOn: name) { specs.insert(IndexSpec(location: path, orderBy: orderBy)) }
            }
            for (key, child) in node.children { walk(child, path.appending(key)) }
        }
        walk(root, .root)
        return specs
    }

    /// True if the rules node for `location` (named children before wildcards, as for access)
    /// declares an index for `orderBy`. `$key` is always indexed; `$priority` needs no index.
    public func declaresIndex(at location: Path, orderBy: Query.OrderBy) -> Bool {
        switch orderBy {
        case .key, .priority: return true
        case .value, .child: break
        }
        var node: RuleNode? = root
        var captures: [String] = []
        for key in location.keys { node = node?.child(key, captures: &captures) }
        guard let node else { return false }
        return node.indexOn.contains { RuleSet.ordering(forIndexOn: $0) == orderBy }
    }
}

extension Query.OrderBy {
    /// How `.indexOn` names this ordering (`".value"`, `"a/b"`).
    public var indexOnName: String {
        switch self {
        case .value: return ".value"
        default: return description
        }
    }
}

/// The answer to "may this caller do this?", with the reason when not (for logs).
public struct RuleVerdict: Sendable, Equatable {
    public let allowed: Bool
    /// Why access was denied; empty when allowed.
    public let reason: String

    public static let allowed = RuleVerdict(allowed: true, reason: "")
    static func denied(_ reason: String) -> RuleVerdict { RuleVerdict(allowed: false, reason: reason) }
}

extension RuleSet {
    /// Firebase's read check: a `.read` rule at or above `path` must grant. Rules below `path`
    /// are not consulted (rules are not filters).
    ///
    /// - Complexity: O(depth of `path`) rules evaluated.
    public func canRead(_ path: Path, auth: Node, root: Node, now: Int64, query: RuleQuery = RuleQuery()) -> RuleVerdict {
        var context = RuleContext(auth: auth, root: root, now: now, query: query)
        return grants(\.read, along: path, &context) ? .allowed : .denied("no .read rule at or above \(path) grants access")
    }

    /// Firebase's write check for one atomic write that replaces the data at each of `paths`
    /// (one path for `PUT`/`POST`/`DELETE`, one per key of a multi-path `PATCH`), turning
    /// `oldRoot` into `newRoot`:
    ///
    /// - a `.write` rule at or above each path must grant (`data` the old value, `newData` the
    ///   new one at the rule's location); a grant cannot be revoked below;
    /// - every `.validate` on the way down to each path, and on every written node below it,
    ///   must pass wherever the new data is not null. Validation does not cascade.
    public func canWrite(_ paths: [Path], auth: Node, oldRoot: Node, newRoot: Node, now: Int64) -> RuleVerdict {
        var context = RuleContext(auth: auth, root: oldRoot, newRoot: newRoot, now: now)
        for path in paths where !writeGranted(path, &context) {
            return .denied("no .write rule at or above \(path) grants access")
        }
        var validatedAncestors: Set<Path> = []
        for path in paths {
            if let failure = validate(path, &context, skipping: &validatedAncestors, shared: paths.count > 1) {
                return .denied(".validate failed at \(failure)")
            }
        }
        return .allowed
    }

    func writeGranted(_ path: Path, _ context: inout RuleContext) -> Bool {
        grants(\.write, along: path, &context)
    }

    /// The cascade of `.read` or `.write`: true if the rule of that kind at the root or at any
    /// location down to `path` grants (`data` and `newData` at the rule's location).
    func grants(_ kind: KeyPath<RuleNode, CompiledRule?>, along path: Path, _ context: inout RuleContext) -> Bool {
        var rules: RuleNode? = self.root
        var data = context.root
        var newData = context.newRoot
        var captures: [String] = []
        var depth = 0
        while let node = rules {
            if let rule = node[keyPath: kind] {
                context.locationPath = path
                context.locationDepth = depth
                context.data = data
                context.newData = newData
                context.wildcards = captures
                if rule.evaluate(context) { return true }
            }
            guard depth < path.depth else { break }
            let key = path.keys[depth]
            data = data.child(key)
            newData = newData.child(key)
            rules = node.child(key, captures: &captures)
            depth += 1
        }
        return false
    }

    /// Runs the `.validate` rules for a write at `path`; returns the failing location, if any.
    func validate(_ path: Path, _ context: inout RuleContext, skipping done: inout Set<Path>, shared: Bool) -> Path? {
        var rules: RuleNode? = self.root
        var data = context.root
        var newData = context.newRoot
        var captures: [String] = []
        var depth = 0
        while let node = rules {
            if newData.isNull { return nil }  // nothing is validated where data is deleted
            if let validate = node.validate {
                // In a multi-path write, ancestors shared by several paths are checked once.
                if depth == path.depth || !shared || done.insert(Path(keys: Array(path.keys[..<depth]))).inserted {
                    context.locationPath = path
                    context.locationDepth = depth
                    context.data = data
                    context.newData = newData
                    context.wildcards = captures
                    if !validate.evaluate(context) { return context.location }
                }
            }
            guard depth < path.depth else {
                var keys = path.keys
                return validateDescendants(of: node, keys: &keys, data: data, newData: newData, captures: &captures, &context)
            }
            let key = path.keys[depth]
            data = data.child(key)
            newData = newData.child(key)
            rules = node.child(key, captures: &captures)
            depth += 1
        }
        return nil
    }

    /// Validates every node written below `keys` that has rules of its own. `keys` is the
    /// path, extended and shortened in place as the walk goes down and up.
    func validateDescendants(
        of rules: RuleNode, keys: inout [ChildKey], data: Node, newData: Node, captures: inout [String],
        _ context: inout RuleContext
    ) -> Path? {
        guard rules.wildcard != nil || !rules.children.isEmpty, case .object(let children) = newData.withoutPriority else {
            return nil
        }
        if rules.wildcard == nil {
            // Only the named children can have rules: look them up instead of scanning.
            for (key, childRules) in rules.children {
                guard let child = children[key] else { continue }
                if let failure = validateNode(
                    childRules, key: key, keys: &keys, data: data.child(key), newData: child, captures: &captures, &context)
                {
                    return failure
                }
            }
            return nil
        }
        for entry in children {
            let before = captures.count
            guard let childRules = rules.child(entry.key, captures: &captures) else { continue }
            let failure = validateNode(
                childRules, key: entry.key, keys: &keys, data: data.child(entry.key), newData: entry.value,
                captures: &captures, &context)
            captures.removeLast(captures.count - before)
            if let failure { return failure }
        }
        return nil
    }

    func validateNode(
        _ rules: RuleNode, key: ChildKey, keys: inout [ChildKey], data: Node, newData: Node, captures: inout [String],
        _ context: inout RuleContext
    ) -> Path? {
        keys.append(key)
        defer { keys.removeLast() }
        if let validate = rules.validate {
            context.locationPath = Path(keys: keys)
            context.locationDepth = keys.count
            context.data = data
            context.newData = newData
            context.wildcards = captures
            let passed = validate.evaluate(context)
            let location = context.locationPath
            // Let go of the keys' storage, so the walk keeps changing it in place.
            context.locationPath = .root
            if !passed { return location }
        }
        return validateDescendants(of: rules, keys: &keys, data: data, newData: newData, captures: &captures, &context)
    }
}

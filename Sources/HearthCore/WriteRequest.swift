/// A write to one namespace.
public struct WriteRequest: Sendable {
    public enum Operation: Sendable {
        /// `PUT` (and `DELETE` as a set of `.null`).
        case set(ParsedNode)
        /// `PUT <path>/.priority`.
        case setPriority(Priority?)
        /// `POST`: set a new child named with a push ID.
        case push(ParsedNode)
        /// `PATCH`: several relative paths at once.
        case update([UpdateEntry])
    }

    public var path: Path
    public var operation: Operation
    /// Write only if the data at `path` still is what the caller saw; nil for always.
    public var condition: Condition?
    /// Who writes, as the rules see it; the rules are judged inside the writer against the
    /// tree the write would produce. Nil: no check (the admin).
    public var access: WriteAccess?

    public init(path: Path, operation: Operation, condition: Condition? = nil, access: WriteAccess? = nil) {
        self.path = path
        self.operation = operation
        self.condition = condition
        self.access = access
    }

    /// A write conditional on an ETag (REST's `if-match`), if one is given.
    public init(path: Path, operation: Operation, ifMatch: String?, access: WriteAccess? = nil) {
        self.init(path: path, operation: operation, condition: ifMatch.map(Condition.etag), access: access)
    }

    /// What the data at the write's path must still be for the write to happen.
    public enum Condition: Sendable, Equatable {
        /// REST's `if-match`: the data's ``ETag``.
        case etag(String)
        /// A transaction's `h`: the data's ``NodeHash``, as the SDKs compute it (`""` for none).
        case hash(String)

        /// True if `existing` (the data at the path, or its priority for a priority write)
        /// meets the condition.
        public func holds(for existing: Node) -> Bool {
            switch self {
            case .etag(let expected): ETag.of(existing) == expected
            case .hash(let expected): NodeHash.of(existing) == expected
            }
        }
    }
}

/// Who is writing, as the security rules see it, carried by the request as data: the rules to
/// obey, the `auth` variable, and the request's time (`now`; server timestamps in the written
/// data are the same instant, so `newData.val() == now` holds for them).
public struct WriteAccess: Sendable {
    public let rules: RuleSet
    public let auth: Node
    public let now: Int64

    public init(rules: RuleSet, auth: Node, now: Int64) {
        self.rules = rules
        self.auth = auth
        self.now = now
    }
}

extension WriteRequest {
    /// The change this write makes to `current`, and what it answers; `pushName` names the
    /// child of a push. Throws ``DataError`` for data that cannot be written there.
    func change(from current: Node, pushName: () -> ChildKey) throws -> (Change, WriteOutcome.Result) {
        var mutations: [Change.Mutation] = []
        var kind = Change.Kind.set
        let result: WriteOutcome.Result
        switch operation {
        case .set(let parsed):
            let value = try parsed.resolved(against: current.at(path))
            mutations.append(.set(path, value))
            result = .value(value)
        case .setPriority(let priority):
            mutations.append(.setPriority(path, priority))
            result = .value(priority?.node ?? .null)
        case .push(let parsed):
            let name = pushName()
            let child = path.appending(name)
            let value = try parsed.resolved(against: current.at(child))
            mutations.append(.set(child, value))
            result = .pushed(name)
        case .update(let entries):
            kind = .update
            var echoed = ContiguousArray<ChildEntry>()
            // Priorities go after the values, so a node created by this same update gets its
            // priority whatever the order of the keys.
            var priorities: [Change.Mutation] = []
            for entry in entries {
                let target = path.appending(entry.path)
                if entry.isPriority {
                    let priority = try Priority(node: entry.value.node)
                    priorities.append(.setPriority(target, priority))
                    echoed.append(ChildEntry(key: ChildKey(entry.rawKey), value: priority?.node ?? .null))
                } else {
                    let value = try entry.value.resolved(against: current.at(target))
                    mutations.append(.set(target, value))
                    echoed.append(ChildEntry(key: ChildKey(entry.rawKey), value: value))
                }
            }
            mutations.append(contentsOf: priorities)
            echoed.sort { $0.key < $1.key }
            result = .value(.object(normalizing: ChildMap(sortedEntries: echoed)))
        }
        return (Change(kind: kind, path: path, mutations: mutations), result)
    }

    /// Throws ``PermissionDenied`` unless the caller may make `change` (every path it replaces,
    /// judged on the trees before and after it: `data` and `newData` in rules).
    func authorize(_ change: Change, oldRoot: Node, newRoot: Node) throws {
        guard let access else { return }
        let verdict = access.rules.canWrite(
            change.mutations.map(\.path), auth: access.auth, oldRoot: oldRoot, newRoot: newRoot, now: access.now)
        guard verdict.allowed else { throw PermissionDenied(reason: verdict.reason) }
    }

    /// Judges this write on `root` without making it: throws what writing it there would
    /// throw (bad data, a rules denial). A write to a namespace that does not exist yet is
    /// judged on an empty tree first, so that a refused write creates nothing.
    public func check(on root: Node, now: Int64) throws {
        var pushIDs = PushIDGenerator(after: -1)
        let (change, _) = try change(from: root) { ChildKey(pushIDs.next(now: now)) }
        try authorize(change, oldRoot: root, newRoot: change.applied(to: root))
    }

    /// True if the write removes what is at its path (a set of null, or of no priority).
    public var deletes: Bool {
        switch operation {
        case .set(let parsed): parsed.node.isNull
        case .setPriority(let priority): priority == nil
        case .push, .update: false
        }
    }

    /// True if the written data holds a server increment (`{".sv": {"increment": n}}`): its
    /// answer is the stored total, which only callers who may read it are shown.
    public var hasIncrements: Bool {
        switch operation {
        case .set(let parsed), .push(let parsed): return !parsed.increments.isEmpty
        case .update(let entries): return entries.contains { !$0.value.increments.isEmpty }
        case .setPriority: return false
        }
    }
}

extension UpdateEntry {
    /// Refuses an update in which one path is an ancestor of (or the same as) another.
    public static func checkNoOverlap(_ entries: [UpdateEntry]) throws(DataError) {
        let paths = entries.map { entry in
            entry.isPriority ? entry.path.appending(ChildKey(".priority")) : entry.path
        }.sorted { $0.keys.lexicographicallyPrecedes($1.keys) }
        for (earlier, later) in zip(paths, paths.dropFirst()) where earlier.contains(later) {
            throw DataError(
                "Invalid data; update contains a path \(earlier) that is an ancestor of another path \(later).")
        }
    }
}

extension Priority {
    /// A priority written as data (`PUT <path>/.priority`, a `.priority` key of an update): a
    /// number, a string or null; never an increment.
    public init?(written parsed: ParsedNode) throws(DataError) {
        guard parsed.increments.isEmpty else { throw DataError("Invalid data; a priority can't be an increment.") }
        guard let priority = try Priority(node: parsed.node) else { return nil }
        self = priority
    }
}

/// The security rules refused a write; nothing was changed.
public struct PermissionDenied: Error, Sendable {
    /// Which rule refused, for logs (never sent to the client, as Firebase does not).
    public let reason: String

    public init(reason: String) { self.reason = reason }
}

/// What a write did.
public enum WriteOutcome: Sendable {
    public enum Result: Sendable {
        /// The data written (server values resolved), as `PUT`/`PATCH` echo it.
        case value(Node)
        /// The name of the child a `POST` created.
        case pushed(ChildKey)
    }

    case written(sequence: UInt64, result: Result)
    /// `if-match` did not match; nothing was written. Carries the current value.
    case conditionFailed(current: Node)
}

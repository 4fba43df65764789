import HearthCore
import HearthStorage

/// One session's pending on-disconnect writes in one namespace, as the ``SessionJournal``
/// keeps them: JSON (in the storage export format, priorities and number types kept) of the
/// caller they will be made as and each overwrite with its server values still to resolve.
///
/// ```
/// {"namespace": "db", "admin": false, "bypass": false, "auth": {...},
///  "writes": [{"path": "a/b", "value": <export JSON>,
///              "increments": [{"path": "x", "delta": 1}], "timestamps": ["y"]}]}
/// ```
struct OnDisconnectRecord {
    var namespace: String
    var pending: OnDisconnectRegistry.Pending

    func encoded() -> [UInt8] {
        func list(_ nodes: [Node]) -> Node {
            .object(unsortedEntries: nodes.enumerated().map { ChildEntry(key: ChildKey(String($0.offset)), value: $0.element) })
        }
        func object(_ members: [(String, Node)]) -> Node {
            .object(unsortedEntries: members.filter { !$0.1.isNull }.map { ChildEntry(key: ChildKey($0.0), value: $0.1) })
        }
        let writes = pending.writes.overwrites.sorted { $0.key.keys.lexicographicallyPrecedes($1.key.keys) }.map { path, value in
            object([
                ("path", .string(path.relativeText)), ("value", value.node),
                ("increments", list(value.increments.map {
                    object([("path", .string($0.relativePath.relativeText)), ("delta", $0.delta)])
                })),
                ("timestamps", list(value.timestamps.map { .string($0.relativeText) })),
            ])
        }
        let record = object([
            ("namespace", .string(namespace)), ("admin", .bool(pending.caller.isAdmin)),
            ("bypass", .bool(pending.caller.bypassesRules)), ("auth", pending.caller.auth), ("writes", list(writes)),
        ])
        return JSONWriter.serialize(record, options: .storage)
    }

    /// Reads a record back; throws if it is not one.
    init(decoding bytes: [UInt8]) throws {
        let record = try JSONParser.parse(bytes).node
        guard case .string(let namespace) = record.child("namespace") else { throw DataError("not an on-disconnect record") }
        func items(_ node: Node) -> [Node] {
            guard case .object(let children) = node.withoutPriority else { return [] }
            return children.map(\.value)
        }
        func path(_ node: Node) throws -> Path {
            guard case .string(let text) = node.child("path") else { throw DataError("an on-disconnect write without a path") }
            return try Path(validating: text)
        }
        var overwrites: [Path: ParsedNode] = [:]
        for write in items(record.child("writes")) {
            let increments = try items(write.child("increments")).map {
                PendingIncrement(relativePath: try path($0), delta: $0.child("delta"))
            }
            let timestamps = try items(write.child("timestamps")).map { node -> Path in
                guard case .string(let text) = node else { throw DataError("a timestamp path that is not a string") }
                return try Path(validating: text)
            }
            overwrites[try path(write)] = ParsedNode(node: write.child("value"), increments: increments, timestamps: timestamps)
        }
        let caller = Caller(
            bypassesRules: record.child("bypass") == .bool(true), isAdmin: record.child("admin") == .bool(true),
            auth: record.child("auth"))
        self.namespace = namespace
        pending = OnDisconnectRegistry.Pending(writes: OnDisconnectWrites(overwrites: overwrites), caller: caller)
    }

    init(namespace: String, pending: OnDisconnectRegistry.Pending) {
        self.namespace = namespace
        self.pending = pending
    }
}

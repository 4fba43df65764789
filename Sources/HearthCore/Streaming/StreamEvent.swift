/// One server-sent event of Firebase's streaming protocol.
public struct StreamEvent: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// Replace the data at `path` with `data`.
        case put
        /// Replace each child of `path` named in `data` (its keys may be relative paths).
        case patch
    }

    public var kind: Kind
    /// Where, relative to the listened location (`/` is the location itself).
    public var path: Path
    /// For `put`, the new value; for `patch`, the children as (relative path, value) pairs.
    public var data: Node
    public var children: [(key: String, value: Node)]

    public static func put(_ path: Path, _ data: Node) -> StreamEvent {
        StreamEvent(kind: .put, path: path, data: data, children: [])
    }

    public static func patch(_ path: Path, _ children: [(key: String, value: Node)]) -> StreamEvent {
        StreamEvent(kind: .patch, path: path, data: .null, children: children)
    }

    public static func == (lhs: StreamEvent, rhs: StreamEvent) -> Bool {
        lhs.kind == rhs.kind && lhs.path == rhs.path && lhs.data == rhs.data
            && lhs.children.map(\.key) == rhs.children.map(\.key) && lhs.children.map(\.value) == rhs.children.map(\.value)
    }

    /// The event a listener at `location` gets for `change` (which turned `old` into `new`),
    /// or nil if the change does not touch that location.
    ///
    /// - A change at or above the location: `put` of the location's new value at `/` (nothing
    ///   if that value did not change).
    /// - A `set` below it: `put` of the new value at the relative path.
    /// - An `update` (PATCH) below or around it: one `patch` with every updated child, at the
    ///   update's location if that is inside the listened one, else at `/`.
    public static func event(at location: Path, for change: Change, old: Node, new: Node) -> StreamEvent? {
        // One replaced value; nothing if it is what was there.
        func put(at path: Path) -> StreamEvent? {
            let value = new.at(path).withoutPriority
            return old.at(path).withoutPriority == value ? nil : .put(location.relative(path)!, value)
        }
        switch change.reach(at: location) {
        case nil:
            return nil
        case .whole:
            let before = old.at(location).withoutPriority, after = new.at(location).withoutPriority
            return before == after ? nil : .put(.root, after)
        case .replaced(let path):
            // A PUT, POST or DELETE below the location.
            return put(at: path)
        case .updated(let base, let paths):
            // A PATCH of just its own location is one replaced value too.
            if paths == [base] { return put(at: base) }
            let children = paths.map { path in
                (key: base.relative(path)!.relativeText, value: new.at(path).withoutPriority)
            }
            return .patch(location.relative(base)!, children)
        }
    }

    /// The SSE frame: `event:`, `data:` with compact `{"path":...,"data":...}`, and `id:`.
    public func frame(id: UInt64?) -> [UInt8] {
        var writer = JSONWriter(options: .compact, capacity: 128)
        writer.output.append("event: \(kind.rawValue)\ndata: {\"path\":")
        JSONWriter.writeString(path.description, to: &writer.output)
        writer.output.append(",\"data\":")
        switch kind {
        case .put:
            writer.writeValue(data)
        case .patch:
            writer.write(members: children)
        }
        writer.output.append("}\n")
        if let id { writer.output.append("id: \(id)\n") }
        writer.output.append("\n")
        return writer.output.withBytes { Array($0) }
    }

    /// A frame of another event type with raw text data (`keep-alive`, `cancel`, `auth_revoked`).
    public static func frame(event: String, data: String) -> [UInt8] {
        Array("event: \(event)\ndata: \(data)\n\n".utf8)
    }
}

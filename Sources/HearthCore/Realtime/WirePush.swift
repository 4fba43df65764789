/// A push of the realtime protocol for a listen on a whole location: the data that changed,
/// at absolute paths and with priorities (the SDKs keep priorities in their cache, and a
/// transaction's hash covers them).
public enum WirePush: Sendable, Equatable {
    /// `d`: the data at the path is now this value.
    case data(Path, Node)
    /// `m`: each relative path below the path is now its value; others stay.
    case merge(Path, [MergeChild])

    public struct MergeChild: Sendable, Equatable {
        public var key: String
        public var value: Node
    }

    /// What a listener at `location` is sent for `change` (which turned `old` into `new`), or
    /// nil if nothing it holds changed.
    ///
    /// - A change at or above the location: the location's new value (if it changed).
    /// - A set below it (or an update of only one path inside it): the new value at that path.
    /// - An update below or around it: one merge of every updated path inside the location, at
    ///   the update's location if that is inside the listened one, else at the listened one.
    public static func event(at location: Path, for change: Change, old: Node, new: Node) -> WirePush? {
        // The new value at `path`, if it changed.
        func data(at path: Path) -> WirePush? {
            let value = new.at(path)
            return old.at(path) == value ? nil : .data(path, value)
        }
        switch change.reach(at: location) {
        case nil:
            return nil
        case .whole:
            return data(at: location)
        case .replaced(let path):
            return data(at: path)
        case .updated(let base, let paths):
            if paths.count == 1 { return data(at: paths[0]) }
            return .merge(base, paths.map { path in
                MergeChild(key: base.relative(path)!.relativeText, value: new.at(path))
            })
        }
    }

    /// The message's text.
    public func encoded(tag: Int64? = nil) -> [UInt8] {
        switch self {
        case .data(let path, let value):
            return WireEncoding.dataPush(path: path, value: value, tag: tag)
        case .merge(let path, let children):
            return WireEncoding.mergePush(path: path, children: children.map { ($0.key, $0.value) }, tag: tag)
        }
    }
}

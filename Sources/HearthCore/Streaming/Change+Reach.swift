extension Change {
    /// What a change did as a listener at one location sees it, before it is put in either
    /// protocol's words (an SSE `put`/`patch`, a realtime `d`/`m`).
    public enum Reach: Sendable, Equatable {
        /// The change is at or above the location: its whole value may have changed.
        case whole
        /// A set replaced the value at this path, inside the location.
        case replaced(Path)
        /// An update replaced these paths inside the location (each once, in the update's
        /// order). `base` is where its members are reported from: the update's own location if
        /// that is inside the listened one, else the listened one.
        case updated(base: Path, paths: [Path])
    }

    /// How this change reaches a listener at `location`; nil if it does not touch it.
    public func reach(at location: Path) -> Reach? {
        var inside: [Path] = []
        for mutation in mutations {
            let path = mutation.path
            if path.contains(location) { return .whole }
            if location.contains(path) { inside.append(path) }
        }
        guard let last = inside.last else { return nil }
        if kind == .set { return .replaced(last) }
        var seen: Set<Path> = []
        return .updated(base: location.contains(path) ? path : location, paths: inside.filter { seen.insert($0).inserted })
    }
}

extension Database {
    /// Locations under a `$wildcard` with fewer children are answered by a scan, not an index.
    public static let lazyIndexMinimumChildren = 256
    /// Most indexes a namespace keeps (beyond them, queries scan).
    public static let lazyIndexLimit = 1000

    /// The view to answer `query` at `path` from. An index the rules declare under a
    /// `$wildcard` (`declared`) is not kept until a query needs it: it is made first when the
    /// location is big enough to need one (smaller ones are scanned) and the namespace keeps
    /// fewer than ``lazyIndexLimit`` indexes.
    public func readView(for query: Query, at path: Path, declared: Bool) -> ReadView {
        let view = readView
        let spec = IndexSpec(location: path, orderBy: query.orderBy)
        guard declared, query.orderBy.needsIndex, view.indexes[spec] == nil,
            view.root.at(path).children.count >= Database.lazyIndexMinimumChildren,
            indexCount < Database.lazyIndexLimit
        else { return view }
        ensureIndex(spec)
        return readView
    }
}

/// One child of an object node: its name and its value.
///
/// The key is stored in its parts around the value so that an entry takes 40 bytes, not 48
/// (the key's flags and integer fill the padding after the value's tag byte): leaf pages,
/// which hold most of a tree's entries, are a sixth smaller.
public struct ChildEntry: Sendable {
    @usableFromInline var keyString: String
    public var value: Node
    @usableFromInline var keyFlags: UInt8
    @usableFromInline var keyInteger: Int32

    @inlinable
    public init(key: ChildKey, value: Node) {
        keyString = key.string
        self.value = value
        keyFlags = key.flags
        keyInteger = key.integer
    }

    /// The child's name.
    @inlinable
    public var key: ChildKey {
        get { ChildKey(string: keyString, integer: keyInteger, flags: keyFlags) }
        set {
            keyString = newValue.string
            keyFlags = newValue.flags
            keyInteger = newValue.integer
        }
    }

    /// Compares this entry's key with `key` (``ChildKey/compare(_:_:)``) without making a key.
    @inlinable
    func compareKey(with key: ChildKey) -> Int {
        ChildKey.compare(keyString, keyInteger, keyFlags, key.string, key.integer, key.flags)
    }

    /// Compares two entries' keys (``ChildKey/compare(_:_:)``) without making keys.
    @inlinable
    static func compareKeys(_ lhs: ChildEntry, _ rhs: ChildEntry) -> Int {
        ChildKey.compare(lhs.keyString, lhs.keyInteger, lhs.keyFlags, rhs.keyString, rhs.keyInteger, rhs.keyFlags)
    }

    /// True if the key is a canonical array index (``ChildKey/isArrayIndex``).
    @inlinable
    var keyIsArrayIndex: Bool { keyFlags & ChildKey.arrayIndexFlag != 0 }

    /// The key's integer reading (``ChildKey/integerValue``).
    @inlinable
    var keyIntegerValue: Int32? { keyFlags & ChildKey.integerFlag != 0 ? keyInteger : nil }
}

/// The children of an object node: a persistent B+tree ordered by ``ChildKey``.
///
/// A `ChildMap` is a value. Changing a copy never changes the original; the two share every
/// page that the change did not touch, so keeping old versions costs only the changed path.
/// Small maps (up to ``leafCapacity`` children) are a single array.
///
/// - Complexity: lookup, insert and remove are O(log n); positional access (`entry(at:)`,
///   `rank(of:)`) is O(log n); iteration is O(n).
public struct ChildMap: Sendable {
    /// The most entries a leaf page holds before it splits.
    public static let leafCapacity = 64
    /// The most pages a branch page holds before it splits.
    public static let branchCapacity = 64

    @usableFromInline
    var root: ChildPage

    /// An empty map.
    @inlinable
    public init() {
        root = .leaf([])
    }

    @inlinable
    init(root: ChildPage) {
        self.root = root
    }

    /// Builds a map from entries already in key order with no duplicate keys.
    ///
    /// - Complexity: O(n)
    public init(sortedEntries entries: ContiguousArray<ChildEntry>) {
        if entries.count <= ChildMap.leafCapacity {
            self.init(root: .leaf(entries))
            return
        }
        // Fill leaves to three quarters so that later inserts do not split at once.
        let perLeaf = ChildMap.leafCapacity * 3 / 4
        var level = ContiguousArray<ChildPage>()
        level.reserveCapacity(entries.count / perLeaf + 1)
        var start = 0
        while start < entries.count {
            let end = Swift.min(start + perLeaf, entries.count)
            level.append(.leaf(ContiguousArray(entries[start..<end])))
            start = end
        }
        self.init(pages: level)
    }

    /// Builds a map by moving entries already in key order with no duplicate keys out of
    /// `buffer`, which is left uninitialized: no reference count changes.
    ///
    /// - Complexity: O(n)
    init(movingSortedEntries buffer: UnsafeMutableBufferPointer<ChildEntry>) {
        let source = buffer.baseAddress!
        let total = buffer.count
        func leaf(_ start: Int, _ count: Int) -> ContiguousArray<ChildEntry> {
            // Reserve and append moved entries: `init(unsafeUninitializedCapacity:)` goes
            // through the standard library's unspecialised code (a metadata lookup per array),
            // which measured half again slower for leaf-sized arrays.
            var entries = ContiguousArray<ChildEntry>()
            entries.reserveCapacity(count)
            for index in start..<(start + count) {
                entries.append((source + index).move())
            }
            return entries
        }
        if total <= ChildMap.leafCapacity {
            self.init(root: .leaf(leaf(0, total)))
            return
        }
        let perLeaf = ChildMap.leafCapacity * 3 / 4
        var pages = ContiguousArray<ChildPage>()
        pages.reserveCapacity(total / perLeaf + 1)
        var start = 0
        while start < total {
            let count = Swift.min(perLeaf, total - start)
            pages.append(.leaf(leaf(start, count)))
            start += count
        }
        self.init(pages: pages)
    }

    /// Builds a map from leaf pages already in key order (filled to three quarters or less).
    init(pages leaves: ContiguousArray<ChildPage>) {
        var level = leaves
        let perBranch = ChildMap.branchCapacity * 3 / 4
        while level.count > 1 {
            var next = ContiguousArray<ChildPage>()
            next.reserveCapacity(level.count / perBranch + 1)
            var start = 0
            while start < level.count {
                let end = Swift.min(start + perBranch, level.count)
                next.append(.branch(ChildBranch(pages: ContiguousArray(level[start..<end]))))
                start = end
            }
            level = next
        }
        self.init(root: level[0])
    }

    /// The number of children.
    @inlinable
    public var count: Int { root.count }

    /// True if there are no children.
    @inlinable
    public var isEmpty: Bool { root.count == 0 }

    /// The value of the child named `key`, if present.
    ///
    /// - Complexity: O(log n)
    @inlinable
    public subscript(key: ChildKey) -> Node? {
        var page = root
        while true {
            switch page {
            case .leaf(let entries):
                let (index, found) = ChildPage.search(entries, key)
                return found ? entries[index].value : nil
            case .branch(let branch):
                page = branch.pages[branch.pageIndex(for: key)]
            }
        }
    }

    /// The largest key, found by descending the rightmost pages.
    ///
    /// - Complexity: O(log n)
    @inlinable
    public var lastKey: ChildKey? {
        var page = root
        while true {
            switch page {
            case .leaf(let entries): return entries.last?.key
            case .branch(let branch): page = branch.pages[branch.pages.count - 1]
            }
        }
    }

    /// True if the smallest key reads as an integer (a cheap first test for arrays).
    @inlinable
    public var firstKeyIsInteger: Bool {
        switch root {
        case .leaf(let entries): return !entries.isEmpty && entries[0].keyIntegerValue != nil
        case .branch(let branch): return branch.firstKeys[0].integerValue != nil
        }
    }

    /// Calls `body` with each leaf page's entries, in key order: the fastest full traversal.
    @inlinable
    public func forEachLeaf(_ body: (ContiguousArray<ChildEntry>) throws -> Void) rethrows {
        try root.forEachLeaf(body)
    }

    /// The first (smallest) entry.
    public var first: ChildEntry? { isEmpty ? nil : entry(at: 0) }

    /// The last (largest) entry.
    public var last: ChildEntry? { isEmpty ? nil : entry(at: count - 1) }

    /// The entry at a position in key order.
    ///
    /// - Complexity: O(log n)
    public func entry(at position: Int) -> ChildEntry {
        precondition(position >= 0 && position < count, "ChildMap position out of range")
        var page = root
        var offset = position
        while true {
            switch page {
            case .leaf(let entries):
                return entries[offset]
            case .branch(let branch):
                var index = 0
                while offset >= branch.pages[index].count {
                    offset -= branch.pages[index].count
                    index += 1
                }
                page = branch.pages[index]
            }
        }
    }

    /// The number of entries whose key is less than `key` (where `key` is, or would be, inserted).
    ///
    /// - Complexity: O(log n)
    public func rank(of key: ChildKey) -> Int {
        var page = root
        var rank = 0
        while true {
            switch page {
            case .leaf(let entries):
                return rank + ChildPage.search(entries, key).index
            case .branch(let branch):
                let index = branch.pageIndex(for: key)
                for i in 0..<index { rank += branch.pages[i].count }
                page = branch.pages[index]
            }
        }
    }

    /// Sets the child `key` to `value`, replacing any existing child of that name.
    ///
    /// - Complexity: O(log n); pages shared with other copies are copied, not changed.
    public mutating func set(_ key: ChildKey, _ value: Node) {
        modifyCounting(key) { $0 = value }
    }

    /// Changes the child `key` in place (`.null` if absent): `body` may set it, change it, or
    /// make it `.null`, which removes it. One descent; pages only this map references are
    /// changed without copying.
    ///
    /// - Complexity: O(log n)
    public mutating func modify(_ key: ChildKey, _ body: (inout Node) -> Void) {
        modifyCounting(key, body)
    }

    /// Removes the child `key`; returns whether it was present.
    ///
    /// - Complexity: O(log n)
    @discardableResult
    public mutating func remove(_ key: ChildKey) -> Bool {
        modifyCounting(key) { $0 = .null } == .removed
    }

    @discardableResult
    mutating func modifyCounting(_ key: ChildKey, _ body: (inout Node) -> Void) -> ChildPage.CountChange {
        let (split, change) = root.modify(key, body)
        if let split {
            root = .branch(ChildBranch(pages: [root, split]))
        } else if case .branch(let branch) = root, branch.pages.count <= 1 {
            // Collapse a root left with one page (or none).
            root = branch.pages.first ?? .leaf([])
        }
        return change
    }

    /// A copy with the child `key` set to `value`.
    public func setting(_ key: ChildKey, _ value: Node) -> ChildMap {
        var copy = self
        copy.set(key, value)
        return copy
    }


    /// Calls `body` with each entry in key order.
    @inlinable
    public func forEach(_ body: (ChildEntry) throws -> Void) rethrows {
        try root.forEach(body)
    }

    /// Calls `body` with each entry in key order from position `start`, until it returns false.
    public func forEach(from start: Int, _ body: (ChildEntry) throws -> Bool) rethrows {
        guard start < count else { return }
        _ = try root.forEach(skipping: Swift.max(0, start), body)
    }

    /// The keys in order.
    public var keys: [ChildKey] {
        var keys = [ChildKey]()
        keys.reserveCapacity(count)
        forEach { keys.append($0.key) }
        return keys
    }

    #if DEBUG
    /// Checks the B+tree's invariants; traps on the first violation. Debug builds only.
    public func checkInvariants() {
        root.checkInvariants(isRoot: true)
    }
    #endif
}

extension ChildMap: Sequence {
    /// Walks the leaves in order without positional lookups.
    public struct Iterator: IteratorProtocol {
        @usableFromInline var stack: [(ChildBranch, Int)] = []
        @usableFromInline var leaf: ContiguousArray<ChildEntry> = []
        @usableFromInline var index = 0

        @usableFromInline
        init(root: ChildPage) {
            descend(root)
        }

        @usableFromInline
        mutating func descend(_ start: ChildPage) {
            var page = start
            while true {
                switch page {
                case .leaf(let entries):
                    leaf = entries
                    index = 0
                    return
                case .branch(let branch):
                    stack.append((branch, 0))
                    page = branch.pages[0]
                }
            }
        }

        @inlinable
        public mutating func next() -> ChildEntry? {
            while index >= leaf.count {
                // Move to the next page of the nearest branch with one left.
                while let (branch, position) = stack.last, position + 1 >= branch.pages.count {
                    stack.removeLast()
                }
                guard let (branch, position) = stack.popLast() else { return nil }
                stack.append((branch, position + 1))
                descend(branch.pages[position + 1])
            }
            defer { index += 1 }
            return leaf[index]
        }
    }

    public func makeIterator() -> Iterator { Iterator(root: root) }

    public var underestimatedCount: Int { count }
}

// MARK: - Pages

@usableFromInline
enum ChildPage: Sendable {
    case leaf(ContiguousArray<ChildEntry>)
    case branch(ChildBranch)

    @inlinable
    var count: Int {
        switch self {
        case .leaf(let entries): return entries.count
        case .branch(let branch): return branch.count
        }
    }

    @usableFromInline
    var firstKey: ChildKey {
        switch self {
        case .leaf(let entries): return entries[0].key
        case .branch(let branch): return branch.firstKeys[0]
        }
    }

    /// Binary search: the position of `key`, or where it would be inserted.
    @inlinable
    static func search(_ entries: ContiguousArray<ChildEntry>, _ key: ChildKey) -> (index: Int, found: Bool) {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) >> 1
            let order = entries[middle].compareKey(with: key)
            if order == 0 { return (middle, true) }
            if order < 0 { low = middle + 1 } else { high = middle }
        }
        return (low, false)
    }

    /// What `modify` did to the number of entries.
    enum CountChange { case same, added, removed }

    /// See ``ChildMap/modify(_:_:)``. Returns the right half if the page split.
    mutating func modify(_ key: ChildKey, _ body: (inout Node) -> Void) -> (split: ChildPage?, change: CountChange) {
        switch consume self {
        case .leaf(var entries):
            // An append (push IDs sort by time) takes one comparison. (Here, not in `search`:
            // lookups of other keys would pay it.)
            let (index, found) =
                if let last = entries.last, last.compareKey(with: key) < 0 { (entries.count, false) } else {
                    ChildPage.search(entries, key)
                }
            if found {
                body(&entries[index].value)
                if entries[index].value.isNull {
                    entries.remove(at: index)
                    self = .leaf(entries)
                    return (nil, .removed)
                }
                self = .leaf(entries)
                return (nil, .same)
            }
            var value = Node.null
            body(&value)
            guard !value.isNull else {
                self = .leaf(entries)
                return (nil, .same)
            }
            entries.insert(ChildEntry(key: key, value: value), at: index)
            if entries.count <= ChildMap.leafCapacity {
                self = .leaf(entries)
                return (nil, .added)
            }
            // Appended at the end (push IDs): the left page stays full and the new one starts
            // with the new entry, so pages of appended keys end full, not half full, and an
            // append copies a shorter last page. Else in halves.
            let half = index == entries.count - 1 ? index : entries.count / 2
            let right = ContiguousArray(entries[half...])
            entries.removeSubrange(half...)
            self = .leaf(entries)
            return (.leaf(right), .added)
        case .branch(var branch):
            if !isKnownUniquelyReferenced(&branch) { branch = ChildBranch(copying: branch) }
            let lastPage = branch.firstKeys.count - 1
            let index =
                lastPage > 0 && ChildKey.compare(branch.firstKeys[lastPage], key) <= 0
                ? lastPage : branch.pageIndex(for: key)
            let (split, change) = branch.pages[index].modify(key, body)
            switch change {
            case .added: branch.count += 1
            case .removed: branch.count -= 1
            case .same: break
            }
            if branch.pages[index].count == 0 {
                branch.pages.remove(at: index)
                branch.firstKeys.remove(at: index)
            } else {
                branch.firstKeys[index] = branch.pages[index].firstKey
                if change == .removed { ChildPage.mergeIfSmall(&branch.pages, at: index, keys: &branch.firstKeys) }
            }
            if let split {
                branch.pages.insert(split, at: index + 1)
                branch.firstKeys.insert(split.firstKey, at: index + 1)
            }
            guard branch.pages.count > ChildMap.branchCapacity else {
                self = .branch(branch)
                return (nil, change)
            }
            // (As a leaf: a page split off the last one starts the new branch.)
            let half = split != nil && index + 1 == branch.pages.count - 1 ? index + 1 : branch.pages.count / 2
            let right = ChildBranch(pages: ContiguousArray(branch.pages[half...]))
            self = .branch(ChildBranch(pages: ContiguousArray(branch.pages[..<half])))
            return (.branch(right), change)
        }
    }

    /// Merges a small leaf with a neighbour so that deletes do not leave many tiny leaves,
    /// keeping a branch's first keys in step.
    static func mergeIfSmall(_ pages: inout ContiguousArray<ChildPage>, at index: Int, keys: inout ContiguousArray<ChildKey>) {
        guard case .leaf(let entries) = pages[index], entries.count < ChildMap.leafCapacity / 4 else { return }
        for neighbour in [index + 1, index - 1] where neighbour >= 0 && neighbour < pages.count {
            guard case .leaf(let other) = pages[neighbour], other.count + entries.count <= ChildMap.leafCapacity
            else { continue }
            let low = Swift.min(index, neighbour)
            var merged = neighbour < index ? other : entries
            merged.append(contentsOf: neighbour < index ? entries : other)
            pages[low] = .leaf(merged)
            pages.remove(at: low + 1)
            keys.remove(at: low + 1)
            return
        }
    }

    @inlinable
    func forEachLeaf(_ body: (ContiguousArray<ChildEntry>) throws -> Void) rethrows {
        switch self {
        case .leaf(let entries):
            try body(entries)
        case .branch(let branch):
            for page in branch.pages { try page.forEachLeaf(body) }
        }
    }

    @inlinable
    func forEach(_ body: (ChildEntry) throws -> Void) rethrows {
        switch self {
        case .leaf(let entries):
            for entry in entries { try body(entry) }
        case .branch(let branch):
            for page in branch.pages { try page.forEach(body) }
        }
    }

    /// Visits entries after skipping `skip`; returns false once `body` asked to stop.
    func forEach(skipping skip: Int, _ body: (ChildEntry) throws -> Bool) rethrows -> Bool {
        switch self {
        case .leaf(let entries):
            var index = skip
            while index < entries.count {
                if try !body(entries[index]) { return false }
                index += 1
            }
            return true
        case .branch(let branch):
            var remaining = skip
            for page in branch.pages {
                if remaining >= page.count {
                    remaining -= page.count
                    continue
                }
                if try !page.forEach(skipping: remaining, body) { return false }
                remaining = 0
            }
            return true
        }
    }

    #if DEBUG
    func checkInvariants(isRoot: Bool) {
        switch self {
        case .leaf(let entries):
            precondition(isRoot || !entries.isEmpty, "empty non-root leaf")
            precondition(entries.count <= ChildMap.leafCapacity, "overfull leaf")
            for i in entries.indices.dropFirst() {
                precondition(entries[i - 1].key < entries[i].key, "leaf keys out of order")
            }
        case .branch(let branch):
            precondition(branch.pages.count >= (isRoot ? 2 : 1), "underfull branch")
            precondition(branch.pages.count <= ChildMap.branchCapacity, "overfull branch")
            var total = 0
            for (i, page) in branch.pages.enumerated() {
                page.checkInvariants(isRoot: false)
                precondition(branch.firstKeys[i] == page.firstKey, "stale first key")
                if i > 0 { precondition(branch.firstKeys[i - 1] < branch.firstKeys[i], "pages out of order") }
                total += page.count
            }
            precondition(total == branch.count, "stale count")
        }
    }
    #endif
}

/// An inner page: its child pages, each page's first key, and the total count below it.
@usableFromInline
///
/// Branches are shared between versions of a map. They are changed in place only when the
/// changing map holds the only reference (checked with `isKnownUniquelyReferenced`), which is
/// what makes that safe; that is also why the class is `@unchecked Sendable`.
final class ChildBranch: @unchecked Sendable {
    // No dynamic exclusivity checks: a branch is changed only in place by the one writer that
    // holds it uniquely (`isKnownUniquelyReferenced`), and copied otherwise; the checks cost
    // about 5% of a log replay.
    @exclusivity(unchecked) @usableFromInline var pages: ContiguousArray<ChildPage>
    @exclusivity(unchecked) @usableFromInline var firstKeys: ContiguousArray<ChildKey>
    @exclusivity(unchecked) @usableFromInline var count: Int

    /// A shallow copy: the same pages, shared until changed.
    init(copying other: ChildBranch) {
        pages = other.pages
        firstKeys = other.firstKeys
        count = other.count
    }

    init(pages: ContiguousArray<ChildPage>) {
        self.pages = pages
        var keys = ContiguousArray<ChildKey>()
        keys.reserveCapacity(pages.count)
        var total = 0
        for page in pages {
            keys.append(page.firstKey)
            total += page.count
        }
        self.firstKeys = keys
        self.count = total
    }

    /// The page that holds, or would hold, `key`.
    @inlinable
    func pageIndex(for key: ChildKey) -> Int {
        // The last page whose first key is <= key; page 0 if key is smaller than all.
        var low = 1
        var high = firstKeys.count
        while low < high {
            let middle = (low + high) >> 1
            if ChildKey.compare(firstKeys[middle], key) <= 0 { low = middle + 1 } else { high = middle }
        }
        return low - 1
    }
}

extension ChildMap {
    /// The number of page levels (1 for a single leaf); O(log n) by construction.
    public var height: Int {
        var levels = 1
        var page = root
        while case .branch(let branch) = page {
            levels += 1
            page = branch.pages[0]
        }
        return levels
    }
}


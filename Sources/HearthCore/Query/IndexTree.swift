/// A persistent ordered set of ``IndexEntry`` values (a B+tree): the index of one location's
/// children by one ordering.
///
/// A value type: copies share pages, and changing one copies only the pages on the changed
/// path (pages referenced once are changed in place), so every version of a namespace's tree
/// keeps the index that matches it at O(log n) cost per change.
///
/// - Complexity: insert and remove O(log n); a range scan O(log n + k).
public struct IndexTree: Sendable {
    /// Entries per leaf before it splits; pages per branch before it splits.
    static let capacity = 32

    enum Page: Sendable {
        case leaf(ContiguousArray<IndexEntry>)
        case branch(IndexBranch)

        var count: Int {
            switch self {
            case .leaf(let entries): return entries.count
            case .branch(let branch): return branch.count
            }
        }

        var maximum: IndexEntry? {
            switch self {
            case .leaf(let entries): return entries.last
            case .branch(let branch): return branch.maxima.last
            }
        }
    }

    var root: Page = .leaf([])

    public init() {}

    /// Builds the tree from entries already in order, without duplicates. O(n).
    public init(sorted entries: ContiguousArray<IndexEntry>) {
        guard entries.count > IndexTree.capacity else {
            root = .leaf(entries)
            return
        }
        let perPage = IndexTree.capacity * 3 / 4
        var level = ContiguousArray<Page>()
        var start = 0
        while start < entries.count {
            let end = min(start + perPage, entries.count)
            level.append(.leaf(ContiguousArray(entries[start..<end])))
            start = end
        }
        while level.count > 1 {
            var next = ContiguousArray<Page>()
            var start = 0
            while start < level.count {
                let end = min(start + perPage, level.count)
                let pages = ContiguousArray(level[start..<end])
                next.append(.branch(IndexBranch(pages: pages)))
                start = end
            }
            level = next
        }
        root = level[0]
    }

    /// The number of entries.
    public var count: Int { root.count }

    // MARK: Changes

    /// Inserts `entry` (no effect if it is already there).
    public mutating func insert(_ entry: IndexEntry) {
        if let split = root.insert(entry) {
            root = .branch(IndexBranch(pages: [root, split]))
        }
    }

    /// Removes `entry`; returns whether it was there.
    @discardableResult
    public mutating func remove(_ entry: IndexEntry) -> Bool {
        let removed = root.remove(entry)
        // A root branch left with one page (or none, once the last entry is gone) collapses.
        if case .branch(let branch) = root, branch.pages.count <= 1 { root = branch.pages.first ?? .leaf([]) }
        return removed
    }

    /// The first position in `entries` whose entry is not less than `entry`.
    static func searchLeaf(_ entries: ContiguousArray<IndexEntry>, _ entry: IndexEntry) -> (index: Int, found: Bool) {
        var low = 0, high = entries.count
        while low < high {
            let middle = (low + high) / 2
            let order = IndexEntry.compare(entries[middle], entry)
            if order == 0 { return (middle, true) }
            if order < 0 { low = middle + 1 } else { high = middle }
        }
        return (low, false)
    }

    /// The page of a branch that holds (or would hold) `entry`: the first whose maximum is not
    /// less than it, or the last.
    static func searchBranch(_ maxima: ContiguousArray<IndexEntry>, _ entry: IndexEntry) -> Int {
        min(partition(maxima) { IndexEntry.compare($0, entry) < 0 }, maxima.count - 1)
    }

    /// The end of the prefix of `entries` for which `inPrefix` holds (binary search; the
    /// entries are in order, so the prefix is contiguous).
    static func partition(_ entries: ContiguousArray<IndexEntry>, _ inPrefix: (IndexEntry) -> Bool) -> Int {
        var low = 0, high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if inPrefix(entries[middle]) { low = middle + 1 } else { high = middle }
        }
        return low
    }

    // MARK: Range scans

    /// Calls `body` with each entry from the first that `isBeforeStart` rejects, in order,
    /// until `body` returns false.
    public func forEach(from isBeforeStart: (IndexEntry) -> Bool, _ body: (IndexEntry) -> Bool) {
        _ = IndexTree.forward(root, isBeforeStart, body)
    }

    /// Calls `body` with each entry from the last that `isAfterEnd` rejects, backwards,
    /// until `body` returns false.
    public func forEachReversed(from isAfterEnd: (IndexEntry) -> Bool, _ body: (IndexEntry) -> Bool) {
        _ = IndexTree.backward(root, isAfterEnd, body)
    }

    /// Returns false once `body` asked to stop.
    static func forward(_ page: Page, _ isBeforeStart: (IndexEntry) -> Bool, _ body: (IndexEntry) -> Bool) -> Bool {
        switch page {
        case .leaf(let entries):
            // Entries before the start form a prefix: binary-search its end.
            let low = partition(entries, isBeforeStart)
            for index in low..<entries.count where !body(entries[index]) { return false }
            return true
        case .branch(let branch):
            let pages = branch.pages
            let low = partition(branch.maxima, isBeforeStart)
            guard low < pages.count else { return true }
            if !forward(pages[low], isBeforeStart, body) { return false }
            for index in (low + 1)..<pages.count where !forward(pages[index], { _ in false }, body) { return false }
            return true
        }
    }

    static func backward(_ page: Page, _ isAfterEnd: (IndexEntry) -> Bool, _ body: (IndexEntry) -> Bool) -> Bool {
        switch page {
        case .leaf(let entries):
            // Entries after the end form a suffix: binary-search its start.
            var index = partition(entries) { !isAfterEnd($0) } - 1
            while index >= 0 {
                if !body(entries[index]) { return false }
                index -= 1
            }
            return true
        case .branch(let branch):
            let pages = branch.pages
            // The first page whose maximum is past the end may still hold entries in range.
            var index = min(partition(branch.maxima) { !isAfterEnd($0) }, pages.count - 1)
            if !backward(pages[index], isAfterEnd, body) { return false }
            index -= 1
            while index >= 0 {
                if !backward(pages[index], { _ in false }, body) { return false }
                index -= 1
            }
            return true
        }
    }

    /// Every entry in order (for tests).
    public var entries: [IndexEntry] {
        var all: [IndexEntry] = []
        forEach(from: { _ in false }) { all.append($0); return true }
        return all
    }

    #if DEBUG
    /// Checks ordering, maxima and counts; traps if anything is wrong.
    public func checkInvariants() {
        var previous: IndexEntry?
        func check(_ page: Page) -> Int {
            switch page {
            case .leaf(let entries):
                for entry in entries {
                    if let previous { precondition(IndexEntry.compare(previous, entry) < 0, "index out of order") }
                    previous = entry
                }
                return entries.count
            case .branch(let branch):
                let (pages, maxima, count) = (branch.pages, branch.maxima, branch.count)
                precondition(!pages.isEmpty && pages.count == maxima.count, "branch shape")
                var total = 0
                for (page, maximum) in zip(pages, maxima) {
                    total += check(page)
                    precondition(page.maximum == maximum, "stale maximum")
                }
                precondition(total == count, "stale count")
                return total
            }
        }
        _ = check(root)
    }
    #endif
}

/// A branch page: its child pages, the largest entry below each, and the number of entries
/// below it. Shared between versions until changed (copy on write).
final class IndexBranch: @unchecked Sendable {
    var pages: ContiguousArray<IndexTree.Page>
    var maxima: ContiguousArray<IndexEntry>
    var count: Int

    init(pages: ContiguousArray<IndexTree.Page>) {
        self.pages = pages
        maxima = ContiguousArray(pages.map { $0.maximum! })
        count = pages.reduce(0) { $0 + $1.count }
    }

    init(pages: ContiguousArray<IndexTree.Page>, maxima: ContiguousArray<IndexEntry>, count: Int) {
        self.pages = pages
        self.maxima = maxima
        self.count = count
    }

    func copy() -> IndexBranch { IndexBranch(pages: pages, maxima: maxima, count: count) }
}

extension IndexTree.Page {
    /// Inserts below this page; returns the new right sibling if it split. Pages referenced
    /// only here are changed in place; shared ones are copied.
    mutating func insert(_ entry: IndexEntry) -> IndexTree.Page? {
        switch consume self {
        case .leaf(var entries):
            let (index, found) = IndexTree.searchLeaf(entries, entry)
            if !found { entries.insert(entry, at: index) }
            guard entries.count > IndexTree.capacity else {
                self = .leaf(entries)
                return nil
            }
            let half = entries.count / 2
            self = .leaf(ContiguousArray(entries[..<half]))
            return .leaf(ContiguousArray(entries[half...]))
        case .branch(var branch):
            if !isKnownUniquelyReferenced(&branch) { branch = branch.copy() }
            let index = IndexTree.searchBranch(branch.maxima, entry)
            let before = branch.pages[index].count
            let split = branch.pages[index].insert(entry)
            branch.count += branch.pages[index].count - before
            branch.maxima[index] = branch.pages[index].maximum!
            if let split {
                branch.count += split.count
                branch.pages.insert(split, at: index + 1)
                branch.maxima.insert(split.maximum!, at: index + 1)
            }
            guard branch.pages.count > IndexTree.capacity else {
                self = .branch(branch)
                return nil
            }
            let half = branch.pages.count / 2
            let right = IndexBranch(pages: ContiguousArray(branch.pages[half...]))
            branch.pages.removeSubrange(half...)
            branch.maxima.removeSubrange(half...)
            branch.count -= right.count
            self = .branch(branch)
            return .branch(right)
        }
    }

    /// Removes `entry` below this page; returns whether it was there. Empty pages are dropped.
    mutating func remove(_ entry: IndexEntry) -> Bool {
        switch consume self {
        case .leaf(var entries):
            let (index, found) = IndexTree.searchLeaf(entries, entry)
            if found { entries.remove(at: index) }
            self = .leaf(entries)
            return found
        case .branch(var branch):
            let index = IndexTree.searchBranch(branch.maxima, entry)
            guard IndexEntry.compare(branch.maxima[index], entry) >= 0 else {
                self = .branch(branch)
                return false
            }
            if !isKnownUniquelyReferenced(&branch) { branch = branch.copy() }
            let removed = branch.pages[index].remove(entry)
            if branch.pages[index].count == 0 {
                branch.pages.remove(at: index)
                branch.maxima.remove(at: index)
            } else {
                branch.maxima[index] = branch.pages[index].maximum!
            }
            if removed { branch.count -= 1 }
            self = .branch(branch)
            return removed
        }
    }
}

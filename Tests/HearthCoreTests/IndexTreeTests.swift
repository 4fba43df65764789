import HearthCore
import HearthTestSupport
import Testing

// MARK: - Helpers

/// The reference model of an index: a plain sorted array, searched and changed the obvious way.
private struct SortedArrayModel {
    private(set) var entries: [IndexEntry] = []

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }

    init() {}

    init(_ entries: [IndexEntry]) {
        for entry in entries { insert(entry) }
    }

    /// The first position whose entry is not less than `entry`, and whether it is `entry`.
    func position(of entry: IndexEntry) -> (index: Int, found: Bool) {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if IndexEntry.compare(entries[middle], entry) < 0 { low = middle + 1 } else { high = middle }
        }
        return (low, low < entries.count && IndexEntry.compare(entries[low], entry) == 0)
    }

    mutating func insert(_ entry: IndexEntry) {
        let (index, found) = position(of: entry)
        if !found { entries.insert(entry, at: index) }
    }

    mutating func remove(_ entry: IndexEntry) -> Bool {
        let (index, found) = position(of: entry)
        if found { entries.remove(at: index) }
        return found
    }

    func randomEntry(using random: inout SeededRandom) -> IndexEntry? {
        entries.randomElement(using: &random)
    }
}

private let textPool = ["", "a", "b", "B", "ab", "Zebra", "é", "日本", "😀", "\u{FF61}", "a,b", "10"]

/// A value of any kind, from pools small enough that many entries share their value.
private func randomValue(using random: inout SeededRandom) -> IndexValue {
    switch Int.random(in: 0..<10, using: &random) {
    case 0: return .null
    case 1: return .bool(Bool.random(using: &random))
    case 2, 3, 4: return .number(Double(Int.random(in: -200...200, using: &random)) / 4)
    case 5, 6, 7: return .string(textPool.randomElement(using: &random)! + String(Int.random(in: 0..<30, using: &random)))
    case 8: return .string(textPool.randomElement(using: &random)!)
    default: return .object
    }
}

/// A key: an integer (negative ones too), plain text or non-ASCII text, so that every part of
/// Firebase's key order is used.
private func randomKey(using random: inout SeededRandom) -> ChildKey {
    let number = Int.random(in: 0..<5000, using: &random)
    switch Int.random(in: 0..<4, using: &random) {
    case 0: return ChildKey(String(number - 1000))
    case 1: return ChildKey("k\(number)")
    case 2:
        let prefix = ["é", "😀", "\u{FF61}", "Z"].randomElement(using: &random)!
        return ChildKey(prefix + String(number))
    default: return ChildKey(format6(number))
    }
}

/// Zero-padded numbers ("000042"): integer keys whose text differs from their value.
private func format6(_ number: Int) -> String {
    let digits = String(number)
    return String(repeating: "0", count: max(0, 6 - digits.count)) + digits
}

private func randomEntry(using random: inout SeededRandom) -> IndexEntry {
    IndexEntry(value: randomValue(using: &random), key: randomKey(using: &random))
}

/// `count` distinct entries in index order.
private func sortedDistinctEntries(_ count: Int, using random: inout SeededRandom) -> [IndexEntry] {
    var model = SortedArrayModel()
    while model.count < count { model.insert(randomEntry(using: &random)) }
    return model.entries
}

/// Checks the tree's own invariants (debug builds) and that it holds exactly `model`.
private func expectTree(_ tree: IndexTree, equals model: SortedArrayModel, _ comment: Comment) -> Bool {
    #if DEBUG
    tree.checkInvariants()
    #endif
    let entries = tree.entries
    #expect(tree.count == model.count, comment)
    #expect(entries == model.entries, comment)
    return entries == model.entries && tree.count == model.count
}

/// What a forward scan visits: every entry from the first that `isBeforeStart` rejects, until
/// `limit` entries were seen (the body asks to stop after the last one).
private func scanForward(_ tree: IndexTree, from isBeforeStart: (IndexEntry) -> Bool, limit: Int) -> [IndexEntry] {
    var seen: [IndexEntry] = []
    tree.forEach(from: isBeforeStart) { entry in
        seen.append(entry)
        return seen.count < limit
    }
    return seen
}

private func scanBackward(_ tree: IndexTree, from isAfterEnd: (IndexEntry) -> Bool, limit: Int) -> [IndexEntry] {
    var seen: [IndexEntry] = []
    tree.forEachReversed(from: isAfterEnd) { entry in
        seen.append(entry)
        return seen.count < limit
    }
    return seen
}

/// Applies one random change to both the tree and the model; checks what `remove` answers.
/// Entries that are there are removed only while more than `floor` remain.
private func randomChange(
    _ tree: inout IndexTree, _ model: inout SortedArrayModel, growing: Bool, floor: Int = 1,
    using random: inout SeededRandom
) {
    let roll = Int.random(in: 0..<10, using: &random)
    switch (growing, roll) {
    case (true, 0..<7), (false, 0):
        // A new entry (almost always absent).
        let entry = randomEntry(using: &random)
        tree.insert(entry)
        model.insert(entry)
    case (_, 7):
        // A duplicate: inserting an entry already there changes nothing.
        guard let entry = model.randomEntry(using: &random) else { return }
        tree.insert(entry)
    case (true, 8), (false, 1..<8):
        guard model.count > floor, let entry = model.randomEntry(using: &random) else { return }
        let removed = tree.remove(entry)
        #expect(removed, "an entry that is there is removed")
        _ = model.remove(entry)
    default:
        // Removing an entry that is (most likely) absent; or one that is there, twice.
        if model.count <= floor || Bool.random(using: &random) {
            let entry = randomEntry(using: &random)
            let expected = model.remove(entry)
            let removed = tree.remove(entry)
            #expect(removed == expected)
        } else if let entry = model.randomEntry(using: &random) {
            _ = model.remove(entry)
            let first = tree.remove(entry)
            let second = tree.remove(entry)
            #expect(first)
            #expect(!second, "removing twice finds nothing the second time")
        }
    }
}

// MARK: - Tests

@Suite("Index tree (model-based)")
struct IndexTreeTests {
    @Test("random inserts and removes up to 10,000 entries and back to a few match a sorted array", arguments: [1, 2, 3] as [UInt64])
    func randomChangesMatchTheModel(seed: UInt64) {
        var random = SeededRandom(seed: seed)
        var tree = IndexTree()
        var model = SortedArrayModel()
        var history: [(tree: IndexTree, entries: [IndexEntry])] = []
        var growing = true
        var batch = 0
        var largest = 0
        while growing || model.count > 10 {
            for _ in 0..<400 { randomChange(&tree, &model, growing: growing, using: &random) }
            batch += 1
            largest = max(largest, model.count)
            guard expectTree(tree, equals: model, "seed \(seed), batch \(batch)") else { return }
            if batch % 8 == 0 { history.append((tree, model.entries)) }
            if model.count >= 10_000 { growing = false }
        }
        #expect(largest >= 10_000)
        #expect(tree.count <= 10)
        // Every copy kept along the way still holds what it held (persistence).
        for (old, entries) in history {
            #if DEBUG
            old.checkInvariants()
            #endif
            #expect(old.entries == entries)
        }
    }

    @Test func aCopyIsUnchangedWhenTheOriginalChanges() {
        var random = SeededRandom(seed: 7)
        var tree = IndexTree()
        var model = SortedArrayModel()
        for _ in 0..<6000 { randomChange(&tree, &model, growing: true, using: &random) }
        let copy = tree
        let copied = model
        for _ in 0..<3000 {
            let growing = Bool.random(using: &random)
            randomChange(&tree, &model, growing: growing, using: &random)
        }
        _ = expectTree(tree, equals: model, "the original")
        _ = expectTree(copy, equals: copied, "the copy")

        // And the other way round: changing the copy leaves the original alone.
        var second = copy
        var secondModel = copied
        for _ in 0..<3000 { randomChange(&second, &secondModel, growing: false, using: &random) }
        _ = expectTree(second, equals: secondModel, "the changed copy")
        _ = expectTree(copy, equals: copied, "the copy, after its own copy changed")
        _ = expectTree(tree, equals: model, "the original, after the copy changed")
    }

    @Test("building from sorted entries equals inserting them one by one", arguments: [0, 1, 2, 31, 32, 33, 63, 64, 65, 200, 576, 577, 2304, 2305, 10_000])
    func bulkBuildEqualsInserts(count: Int) {
        var random = SeededRandom(seed: UInt64(count) + 100)
        let sorted = sortedDistinctEntries(count, using: &random)
        let bulk = IndexTree(sorted: ContiguousArray(sorted))
        var oneByOne = IndexTree()
        for entry in sorted.shuffled(using: &random) { oneByOne.insert(entry) }
        let model = SortedArrayModel(sorted)
        _ = expectTree(bulk, equals: model, "bulk-built, \(count)")
        _ = expectTree(oneByOne, equals: model, "inserted, \(count)")
        #expect(bulk.entries == oneByOne.entries)

        // A tree built in bulk takes changes like any other.
        var changed = bulk
        var changedModel = model
        for step in 0..<1500 {
            randomChange(&changed, &changedModel, growing: step % 3 != 0, using: &random)
            if step % 250 == 249 { guard expectTree(changed, equals: changedModel, "bulk-built, then changed") else { return } }
        }
        _ = expectTree(bulk, equals: model, "the bulk-built original")
    }

    @Test func aSmallTreeEmptiedInRandomOrderTakesNewEntries() {
        var random = SeededRandom(seed: 9)
        var tree = IndexTree()
        let entries = sortedDistinctEntries(100, using: &random)
        for entry in entries { tree.insert(entry) }
        for entry in entries.shuffled(using: &random) {
            let removed = tree.remove(entry)
            #expect(removed)
            #if DEBUG
            tree.checkInvariants()
            #endif
        }
        #expect(tree.count == 0)
        tree.insert(entries[0])
        _ = expectTree(tree, equals: SortedArrayModel([entries[0]]), "refilled")
    }

    /// Removing every entry of a tree three levels deep (so that the root collapses to a branch
    /// holding one leaf with one entry) must leave a tree that takes new entries. Run in a
    /// child process, as a broken tree traps.
    @Test func aDeepTreeEmptiedByRemovalsTakesNewEntries() async {
        await #expect(processExitsWith: .success) {
            var tree = IndexTree()
            let entries = (0..<600).map { IndexEntry(value: .number(Double($0)), key: "k") }
            for entry in entries { tree.insert(entry) }
            for entry in entries[1..<599] { tree.remove(entry) }
            tree.remove(entries[599])
            tree.remove(entries[0])
            precondition(tree.count == 0 && tree.entries.isEmpty)
            #if DEBUG
            tree.checkInvariants()
            #endif
            tree.insert(entries[7])
            precondition(tree.entries == [entries[7]])
            #if DEBUG
            tree.checkInvariants()
            #endif
        }
    }

    @Test func anEmptyTreeScansNothing() {
        let empty = IndexTree()
        #expect(empty.count == 0)
        #expect(scanForward(empty, from: { _ in false }, limit: .max).isEmpty)
        #expect(scanBackward(empty, from: { _ in false }, limit: .max).isEmpty)
        var emptied = IndexTree()
        let entry = IndexEntry(value: .number(1), key: "a")
        emptied.insert(entry)
        let first = emptied.remove(entry)
        let second = emptied.remove(entry)
        #expect(first)
        #expect(!second)
        #expect(scanForward(emptied, from: { _ in false }, limit: .max).isEmpty)
        #expect(scanBackward(emptied, from: { _ in false }, limit: .max).isEmpty)
    }

    @Test("range scans from random thresholds equal the model's slices, early stops included", arguments: [21, 22] as [UInt64])
    func rangeScansMatchTheModel(seed: UInt64) {
        var random = SeededRandom(seed: seed)
        // A tree grown one entry at a time and then thinned out (uneven pages), and one built in bulk.
        var grown = IndexTree()
        var model = SortedArrayModel()
        for _ in 0..<12_000 {
            let entry = randomEntry(using: &random)
            grown.insert(entry)
            model.insert(entry)
        }
        for _ in 0..<4000 {
            guard let entry = model.randomEntry(using: &random) else { break }
            grown.remove(entry)
            _ = model.remove(entry)
        }
        _ = expectTree(grown, equals: model, "before scanning")
        let bulk = IndexTree(sorted: ContiguousArray(model.entries))

        for round in 0..<250 {
            // A threshold: an entry in the tree, a random one, or a bare value (every key at it).
            let threshold = Int.random(in: 0..<3, using: &random) == 0
                ? randomEntry(using: &random) : (model.randomEntry(using: &random) ?? randomEntry(using: &random))
            let byValueOnly = Bool.random(using: &random)
            let inclusive = Bool.random(using: &random)
            let limit = [1, 2, 3, 10, 64, 65, 500, Int.max].randomElement(using: &random)!
            func order(_ entry: IndexEntry) -> Int {
                byValueOnly ? IndexValue.compare(entry.value, threshold.value) : IndexEntry.compare(entry, threshold)
            }
            let isBeforeStart: (IndexEntry) -> Bool = { inclusive ? order($0) < 0 : order($0) <= 0 }
            let isAfterEnd: (IndexEntry) -> Bool = { inclusive ? order($0) > 0 : order($0) >= 0 }
            let forward = Array(model.entries.filter { !isBeforeStart($0) }.prefix(limit))
            let backward = Array(model.entries.filter { !isAfterEnd($0) }.reversed().prefix(limit))
            let comment: Comment = "seed \(seed), round \(round): \(threshold), value only \(byValueOnly), inclusive \(inclusive), limit \(limit)"
            for tree in [grown, bulk] {
                #expect(scanForward(tree, from: isBeforeStart, limit: limit) == forward, comment)
                #expect(scanBackward(tree, from: isAfterEnd, limit: limit) == backward, comment)
            }
        }
        // Thresholds past either end find nothing.
        #expect(scanForward(grown, from: { _ in true }, limit: .max).isEmpty)
        #expect(scanBackward(grown, from: { _ in true }, limit: .max).isEmpty)
        #expect(scanForward(grown, from: { _ in false }, limit: .max) == model.entries)
        #expect(scanBackward(grown, from: { _ in false }, limit: .max) == Array(model.entries.reversed()))
    }
}

@testable import HearthCore
import HearthTestSupport
import Testing

@Suite("Child map (persistent B+tree)")
struct ChildMapTests {
    func randomKey(_ random: inout SeededRandom, space: Int) -> ChildKey {
        let n = Int.random(in: 0..<space, using: &random)
        switch n % 3 {
        case 0: return ChildKey(String(n - space / 2))
        case 1: return ChildKey("k\(n)")
        default: return ChildKey("\(n)x")
        }
    }

    /// Compares the map with a dictionary model: contents, order, positions, ranks.
    func expectEqual(_ map: ChildMap, _ model: [ChildKey: Int64], sourceLocation: SourceLocation = #_sourceLocation) {
        let sortedKeys = model.keys.sorted()
        #expect(map.count == model.count, sourceLocation: sourceLocation)
        #expect(map.keys == sortedKeys, sourceLocation: sourceLocation)
        var iterated: [ChildKey] = []
        for entry in map { iterated.append(entry.key) }
        #expect(iterated == sortedKeys, sourceLocation: sourceLocation)
        for (position, key) in sortedKeys.enumerated() where position % 7 == 0 {
            #expect(map[key] == .int(model[key]!), sourceLocation: sourceLocation)
            #expect(map.entry(at: position).key == key, sourceLocation: sourceLocation)
            #expect(map.rank(of: key) == position, sourceLocation: sourceLocation)
        }
    }

    @Test("random operations match a dictionary model", arguments: [1, 2, 3, 4, 5] as [UInt64])
    func modelBased(seed: UInt64) {
        var random = SeededRandom(seed: seed)
        var map = ChildMap()
        var model: [ChildKey: Int64] = [:]
        var versions: [(ChildMap, [ChildKey: Int64])] = []
        for step in 0..<3000 {
            let key = randomKey(&random, space: 600)
            if Int.random(in: 0..<3, using: &random) == 0 {
                let removed = map.remove(key)
                #expect(removed == (model.removeValue(forKey: key) != nil))
            } else {
                let value = Int64(step)
                map.set(key, .int(value))
                model[key] = value
            }
            #if DEBUG
            map.checkInvariants()
            #endif
            if step % 250 == 0 { versions.append((map, model)) }
        }
        expectEqual(map, model)
        // Old versions are untouched by later changes (structural sharing, not mutation).
        for (old, oldModel) in versions { expectEqual(old, oldModel) }
    }

    @Test func sizesAroundPageBoundaries() {
        for size in [0, 1, 2, 47, 48, 63, 64, 65, 128, 129, 3000, 4097] {
            var entries = ContiguousArray<ChildEntry>()
            for index in 0..<size { entries.append(ChildEntry(key: ChildKey("k\(index)"), value: .int(Int64(index)))) }
            entries.sort { $0.key < $1.key }
            var map = ChildMap(sortedEntries: entries)
            #if DEBUG
            map.checkInvariants()
            #endif
            #expect(map.count == size)
            var seen = 0
            map.forEach(from: size / 2) { _ in
                seen += 1
                return true
            }
            #expect(seen == size - size / 2)
            // Remove everything one by one; the map stays valid and ends empty.
            for entry in entries.reversed() where entry.key.string.hasSuffix("1") || size < 70 {
                map.remove(entry.key)
                #if DEBUG
                map.checkInvariants()
                #endif
            }
        }
    }

    @Test func millionChildren() {
        let count = 1_000_000
        var entries = ContiguousArray<ChildEntry>()
        entries.reserveCapacity(count)
        for index in 0..<count { entries.append(ChildEntry(key: ChildKey(String(index)), value: .int(Int64(index)))) }
        var map = ChildMap(sortedEntries: entries)
        #expect(map.count == count)
        // O(log n): four levels of 64-way pages hold 16.7 million children.
        #expect(map.height <= 4)
        #expect(map[ChildKey("765432")] == .int(765_432))
        #expect(map.entry(at: 999_999).key == ChildKey("999999"))
        let before = map
        map.set(ChildKey("new"), .bool(true))
        map.set(ChildKey("-1"), .bool(true))
        map.remove(ChildKey("500000"))
        #expect(map.count == count + 1)
        #expect(map.first?.key == ChildKey("-1"))
        #expect(map.last?.key == ChildKey("new"))
        #expect(map[ChildKey("500000")] == nil)
        #expect(before[ChildKey("500000")] == .int(500_000))
        #expect(before.count == count)
        #expect(map.height <= 4)
        // Grow one at a time past a million: still shallow.
        var grown = ChildMap()
        for index in 0..<200_000 { grown.set(ChildKey("g\(index)"), .int(1)) }
        #expect(grown.height <= 4)
        #if DEBUG
        grown.checkInvariants()
        #endif
    }

    /// Pages of keys appended in order (push IDs) end full: a page splits off the new key
    /// alone, not in halves. Half-full pages would be twice as many, and every append would
    /// copy a longer last page.
    @Test func appendedKeysFillTheirPages() {
        func leaves(_ page: ChildPage) -> [Int] {
            switch page {
            case .leaf(let entries): return [entries.count]
            case .branch(let branch): return branch.pages.flatMap(leaves)
            }
        }
        var generator = PushIDGenerator()
        var random = SeededRandom(seed: 9)
        var map = ChildMap()
        let count = ChildMap.leafCapacity * 100
        for index in 0..<count {
            map.set(ChildKey(generator.next(now: 1_700_000_000_000 + Int64(index / 3), using: &random)), .int(Int64(index)))
        }
        #expect(map.count == count)
        #expect(leaves(map.root) == Array(repeating: ChildMap.leafCapacity, count: 100))
        #if DEBUG
        map.checkInvariants()
        #endif
        // Keys that come in any order still split in halves.
        var shuffled = ChildMap()
        for index in (0..<count).map({ ($0 * 7_919) % count }) { shuffled.set(ChildKey("k\(index)"), .int(1)) }
        #expect(leaves(shuffled.root).allSatisfy { $0 >= ChildMap.leafCapacity / 4 })
        #expect(leaves(shuffled.root).count > 100)
    }
}

@Suite("Child map in-place modify")
struct ChildMapModifyTests {
    @Test("modify matches a dictionary model, including removals down to empty", arguments: [21, 22, 23] as [UInt64])
    func modifyModel(seed: UInt64) {
        var random = SeededRandom(seed: seed)
        var map = ChildMap()
        var model: [ChildKey: Int64] = [:]
        var versions: [(ChildMap, [ChildKey: Int64])] = []
        for step in 0..<4000 {
            let key = ChildKey("k\(Int.random(in: 0..<500, using: &random))")
            let remove = step > 3000 || Int.random(in: 0..<3, using: &random) == 0
            map.modify(key) { value in value = remove ? .null : .int(Int64(step)) }
            if remove { model[key] = nil } else { model[key] = Int64(step) }
            #if DEBUG
            map.checkInvariants()
            #endif
            if step % 500 == 0 { versions.append((map, model)) }
        }
        #expect(map.count == model.count)
        #expect(map.keys == model.keys.sorted())
        for (old, oldModel) in versions {
            #expect(old.count == oldModel.count)
            #expect(old.keys == oldModel.keys.sorted())
        }
        // Empty it completely.
        for key in model.keys { map.modify(key) { $0 = .null } }
        #expect(map.isEmpty)
        #if DEBUG
        map.checkInvariants()
        #endif
    }
}

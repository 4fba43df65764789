/// The Firebase order of recently sorted objects' keys, by their key sequence.
///
/// Records that share a shape list their fields in the same order, and sorting each into
/// Firebase key order repeats the same permutation. For objects of up to ``maxKeys`` keys, all
/// small strings (see ``StringLayout``) and all different, the cache remembers per shape the
/// key sequence (two words per key) and the permutation that sorts it; a repeat is recognised
/// by word comparisons and put in order by moves, with no key comparison. Two-way set
/// associative by the count and the first key, so that two shapes that alternate (a record
/// and an object nested in it) do not evict each other.
struct KeyOrderCache: ~Copyable {
    static let maxKeys = 24
    static let slotCount = 64

    /// Per slot: the key count (0 for an empty slot), the keys' words, the sorting permutation.
    private let counts: UnsafeMutablePointer<Int>
    private let words: UnsafeMutablePointer<UInt64>
    private let orders: UnsafeMutablePointer<UInt8>
    /// Room to reorder entries through, and to note a sequence before it is sorted.
    private let spare: UnsafeMutablePointer<ChildEntry>
    private let pending: UnsafeMutablePointer<UInt64>
    /// False for small documents, where filling the cache would cost more than it saves.
    let isEnabled: Bool

    init(enabled: Bool) {
        isEnabled = enabled && StringLayout.isAvailable
        let slots = isEnabled ? KeyOrderCache.slotCount : 1
        counts = .allocate(capacity: slots)
        counts.initialize(repeating: 0, count: slots)
        words = .allocate(capacity: slots * KeyOrderCache.maxKeys * 2)
        orders = .allocate(capacity: slots * KeyOrderCache.maxKeys)
        spare = .allocate(capacity: KeyOrderCache.maxKeys)
        pending = .allocate(capacity: KeyOrderCache.maxKeys * 2)
    }

    deinit {
        counts.deallocate()
        words.deallocate()
        orders.deallocate()
        spare.deallocate()
        pending.deallocate()
    }

    /// Copies the entries' key words into `pending`; false if a key is not a small string or
    /// there are too many.
    @inline(__always)
    private func note(_ entries: UnsafeMutableBufferPointer<ChildEntry>) -> Bool {
        guard entries.count <= KeyOrderCache.maxKeys, let base = entries.baseAddress else { return false }
        for index in 0..<entries.count {
            let (low, high) = StringLayout.words(base[index].keyString)
            guard StringLayout.isSmall(high) else { return false }
            pending[2 * index] = low
            pending[2 * index + 1] = high
        }
        return true
    }

    /// The first of the two slots a sequence of `count` keys may be in (the other is the next).
    @inline(__always)
    private func slot(count: Int) -> Int {
        let mixed = (pending[0] ^ (pending[1] &+ UInt64(truncatingIfNeeded: count)) &* 0x9E37_79B9_7F4A_7C15)
            &* 0x9E37_79B9_7F4A_7C15
        return Int(truncatingIfNeeded: mixed >> 58) & (KeyOrderCache.slotCount - 2)
    }

    /// True if `slot` holds the noted sequence of `count` keys.
    @inline(__always)
    private func holds(_ slot: Int, count: Int) -> Bool {
        guard counts[slot] == count else { return false }
        let cached = words + slot * KeyOrderCache.maxKeys * 2
        for index in 0..<(2 * count) where cached[index] != pending[index] { return false }
        return true
    }

    /// Puts `entries` (unsorted) in key order if their key sequence is cached; false if not,
    /// in which case the sequence is noted for ``remember(_:)``.
    func reorder(_ entries: UnsafeMutableBufferPointer<ChildEntry>) -> Bool {
        guard isEnabled, note(entries), let base = entries.baseAddress else { return false }
        let count = entries.count
        let first = slot(count: count)
        let slot = holds(first, count: count) ? first : first + 1
        guard slot == first || holds(slot, count: count) else { return false }
        let order = orders + slot * KeyOrderCache.maxKeys
        for position in 0..<count {
            (spare + position).moveInitialize(from: base + Int(order[position]), count: 1)
        }
        base.moveInitialize(from: spare, count: count)
        return true
    }

    /// Remembers the order of the sequence noted by the last ``reorder(_:)`` that returned
    /// false, now that `entries` holds it sorted (with no key dropped as a duplicate).
    func remember(_ entries: UnsafeMutableBufferPointer<ChildEntry>) {
        guard isEnabled, entries.count <= KeyOrderCache.maxKeys, let base = entries.baseAddress else { return }
        let count = entries.count
        // The first slot if free, else the second: a shape in the first stays there.
        let first = slot(count: count)
        let slot = counts[first] == 0 ? first : first + 1
        let order = orders + slot * KeyOrderCache.maxKeys
        var used: UInt32 = 0
        for position in 0..<count {
            let (low, high) = StringLayout.words(base[position].keyString)
            var source = -1
            for index in 0..<count where used & (1 << index) == 0 && pending[2 * index] == low && pending[2 * index + 1] == high {
                source = index
                break
            }
            guard source >= 0 else {
                counts[slot] = 0
                return
            }
            used |= 1 << source
            order[position] = UInt8(source)
        }
        (words + slot * KeyOrderCache.maxKeys * 2).update(from: pending, count: 2 * count)
        counts[slot] = count
    }
}

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

    /// The cache's memory, in one block: per slot the key count (0 for an empty slot), the
    /// keys' words and the sorting permutation; then room to reorder entries through and to
    /// note a sequence before it is sorted.
    private struct Parts {
        let block: UnsafeMutableRawPointer
        let counts: UnsafeMutablePointer<Int>
        let words: UnsafeMutablePointer<UInt64>
        let pending: UnsafeMutablePointer<UInt64>
        let spare: UnsafeMutablePointer<ChildEntry>
        let orders: UnsafeMutablePointer<UInt8>

        init() {
            let countsBytes = slotCount * MemoryLayout<Int>.stride
            let wordsBytes = slotCount * maxKeys * 2 * MemoryLayout<UInt64>.stride
            let pendingBytes = maxKeys * 2 * MemoryLayout<UInt64>.stride
            let spareBytes = maxKeys * MemoryLayout<ChildEntry>.stride
            // Every part but the last is a multiple of eight bytes, so each stays aligned.
            block = .allocate(byteCount: countsBytes + wordsBytes + pendingBytes + spareBytes + slotCount * maxKeys, alignment: 16)
            counts = block.bindMemory(to: Int.self, capacity: slotCount)
            counts.initialize(repeating: 0, count: slotCount)
            words = (block + countsBytes).bindMemory(to: UInt64.self, capacity: slotCount * maxKeys * 2)
            pending = (block + countsBytes + wordsBytes).bindMemory(to: UInt64.self, capacity: maxKeys * 2)
            spare = (block + countsBytes + wordsBytes + pendingBytes).bindMemory(to: ChildEntry.self, capacity: maxKeys)
            orders = (block + countsBytes + wordsBytes + pendingBytes + spareBytes)
                .bindMemory(to: UInt8.self, capacity: slotCount * maxKeys)
        }
    }

    /// Nil for small documents, where filling the cache would cost more than it saves.
    private let parts: Parts?

    init(enabled: Bool) {
        parts = enabled && StringLayout.isAvailable ? Parts() : nil
    }

    deinit {
        parts?.block.deallocate()
    }

    /// Copies the entries' key words into `pending`; false if a key is not a small string or
    /// there are too many.
    @inline(__always)
    private static func note(_ entries: UnsafeMutableBufferPointer<ChildEntry>, into pending: UnsafeMutablePointer<UInt64>) -> Bool {
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
    private static func slot(count: Int, pending: UnsafeMutablePointer<UInt64>) -> Int {
        let mixed = (pending[0] ^ (pending[1] &+ UInt64(truncatingIfNeeded: count)) &* 0x9E37_79B9_7F4A_7C15)
            &* 0x9E37_79B9_7F4A_7C15
        return Int(truncatingIfNeeded: mixed >> 58) & (KeyOrderCache.slotCount - 2)
    }

    /// True if `slot` holds the noted sequence of `count` keys.
    @inline(__always)
    private static func holds(_ slot: Int, count: Int, _ parts: Parts) -> Bool {
        guard parts.counts[slot] == count else { return false }
        let cached = parts.words + slot * KeyOrderCache.maxKeys * 2
        for index in 0..<(2 * count) where cached[index] != parts.pending[index] { return false }
        return true
    }

    /// Puts `entries` (unsorted) in key order if their key sequence is cached; false if not,
    /// in which case the sequence is noted for ``remember(_:)``.
    func reorder(_ entries: UnsafeMutableBufferPointer<ChildEntry>) -> Bool {
        guard let parts, KeyOrderCache.note(entries, into: parts.pending), let base = entries.baseAddress else { return false }
        let count = entries.count
        let first = KeyOrderCache.slot(count: count, pending: parts.pending)
        let slot = KeyOrderCache.holds(first, count: count, parts) ? first : first + 1
        guard slot == first || KeyOrderCache.holds(slot, count: count, parts) else { return false }
        let order = parts.orders + slot * KeyOrderCache.maxKeys
        for position in 0..<count {
            (parts.spare + position).moveInitialize(from: base + Int(order[position]), count: 1)
        }
        base.moveInitialize(from: parts.spare, count: count)
        return true
    }

    /// Remembers the order of the sequence noted by the last ``reorder(_:)`` that returned
    /// false, now that `entries` holds it sorted (with no key dropped as a duplicate).
    func remember(_ entries: UnsafeMutableBufferPointer<ChildEntry>) {
        guard let parts, entries.count <= KeyOrderCache.maxKeys, let base = entries.baseAddress else { return }
        let count = entries.count
        // The first slot if free, else the second: a shape in the first stays there.
        let first = KeyOrderCache.slot(count: count, pending: parts.pending)
        let slot = parts.counts[first] == 0 ? first : first + 1
        let order = parts.orders + slot * KeyOrderCache.maxKeys
        var used: UInt32 = 0
        for position in 0..<count {
            let (low, high) = StringLayout.words(base[position].keyString)
            var source = -1
            for index in 0..<count
            where used & (1 << index) == 0 && parts.pending[2 * index] == low && parts.pending[2 * index + 1] == high {
                source = index
                break
            }
            guard source >= 0 else {
                parts.counts[slot] = 0
                return
            }
            used |= 1 << source
            order[position] = UInt8(source)
        }
        (parts.words + slot * KeyOrderCache.maxKeys * 2).update(from: parts.pending, count: 2 * count)
        parts.counts[slot] = count
    }
}

/// Keys already made during one parse, found by their bytes.
///
/// Records that share a shape repeat the same field names; with the cache each name is made,
/// validated and classified once per parse, and later occurrences reuse that ``ChildKey``.
/// Only small ASCII names (up to 15 bytes, the common field name) are cached; they are compared
/// as the two words of their small string (see ``StringLayout``). Direct-mapped: a new name
/// replaces whatever shared its slot.
struct KeyCache: ~Copyable {
    /// Slots when enabled (a power of two).
    static let slotCount = 256

    /// Two words per slot: the small string's words; the second is never zero for a filled
    /// slot (it carries the discriminator), so zero marks an empty one. Nil when disabled.
    private let words: UnsafeMutablePointer<UInt64>?
    private let keys: UnsafeMutablePointer<ChildKey>?
    /// False for small documents, where filling the cache would cost more than it saves.
    var isEnabled: Bool { words != nil }

    init(enabled: Bool) {
        guard enabled && StringLayout.isAvailable else {
            words = nil
            keys = nil
            return
        }
        let words = UnsafeMutablePointer<UInt64>.allocate(capacity: 2 * KeyCache.slotCount)
        words.initialize(repeating: 0, count: 2 * KeyCache.slotCount)
        self.words = words
        keys = .allocate(capacity: KeyCache.slotCount)
    }

    deinit {
        guard let words, let keys else { return }
        for slot in 0..<KeyCache.slotCount where words[2 * slot + 1] != 0 {
            (keys + slot).deinitialize(count: 1)
        }
        words.deallocate()
        keys.deallocate()
    }

    @inline(__always)
    private func slot(_ low: UInt64, _ high: UInt64) -> Int {
        let mixed = (low ^ (high &* 0x9E37_79B9_7F4A_7C15)) &* 0x9E37_79B9_7F4A_7C15
        return Int(truncatingIfNeeded: mixed >> 56) & (KeyCache.slotCount - 1)
    }

    /// The key whose small string has these words, if cached.
    @inline(__always)
    func lookup(low: UInt64, high: UInt64) -> ChildKey? {
        guard let words, let keys else { return nil }
        let index = slot(low, high)
        guard words[2 * index] == low && words[2 * index + 1] == high else { return nil }
        return keys[index]
    }

    /// Caches `key`, whose small string has these words.
    @inline(__always)
    func insert(low: UInt64, high: UInt64, key: ChildKey) {
        guard let words, let keys else { return }
        let index = slot(low, high)
        if words[2 * index + 1] != 0 {
            keys[index] = key
        } else {
            (keys + index).initialize(to: key)
        }
        words[2 * index] = low
        words[2 * index + 1] = high
    }
}

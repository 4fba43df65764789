/// The parser's stack of object entries under construction.
///
/// Manual memory, so that popping moves entries out with no reference counting and leaves
/// nothing behind to destroy. Non-copyable: it owns its memory.
struct EntryStack: ~Copyable {
    private var base: UnsafeMutablePointer<ChildEntry>
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int = 64) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }

    @inline(__always)
    mutating func push(_ entry: consuming ChildEntry) {
        if count == capacity { grow() }
        (base + count).initialize(to: entry)
        count += 1
    }

    mutating func grow() {
        let newCapacity = capacity * 2
        let newBase = UnsafeMutablePointer<ChildEntry>.allocate(capacity: newCapacity)
        newBase.moveInitialize(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    /// Compares the top entry's key with `key` (``ChildKey/compare(_:_:)``), without copying it.
    @inline(__always)
    func compareLastKey(with key: ChildKey) -> Int {
        base[count - 1].compareKey(with: key)
    }

    /// The entries from `start` to the top, to rearrange in place (then call ``keep(from:count:)``).
    @inline(__always)
    func entries(from start: Int) -> UnsafeMutableBufferPointer<ChildEntry> {
        UnsafeMutableBufferPointer(start: base + start, count: count - start)
    }

    /// After a rearrangement: `count` entries from `start` remain initialized; those past them
    /// were deinitialized or moved out by the caller.
    @inline(__always)
    mutating func keep(from start: Int, count remaining: Int) {
        count = start + remaining
    }

    /// Moves the entries from `start` to the top (in key order, no duplicate keys) into a map.
    @inline(__always)
    mutating func popMap(from start: Int) -> ChildMap {
        let map = ChildMap(movingSortedEntries: UnsafeMutableBufferPointer(start: base + start, count: count - start))
        count = start
        return map
    }
}

/// The parser's stack of key offsets from the parse root to the value being read (see
/// `JSONParser.keyOffsets`): manual memory, so a push or pop is a store and a count, without
/// the uniqueness and capacity checks of an array.
struct OffsetStack: ~Copyable {
    private var base: UnsafeMutablePointer<Int>
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int = 40) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    deinit { base.deallocate() }

    @inline(__always)
    mutating func push(_ offset: Int) {
        if count == capacity { grow() }
        base[count] = offset
        count += 1
    }

    @inline(__always)
    mutating func pop() { count -= 1 }

    mutating func grow() {
        let newBase = UnsafeMutablePointer<Int>.allocate(capacity: capacity * 2)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity *= 2
    }

    /// The offsets, root first.
    var offsets: [Int] { Array(UnsafeBufferPointer(start: base, count: count)) }
}

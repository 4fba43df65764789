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

    /// The key of the top entry.
    @inline(__always)
    var lastKey: ChildKey { base[count - 1].key }

    /// Moves the entries from `start` to the top into an exactly sized array.
    @inline(__always)
    mutating func pop(from start: Int) -> ContiguousArray<ChildEntry> {
        let moved = count - start
        let source = base + start
        count = start
        return ContiguousArray(unsafeUninitializedCapacity: moved) { output, initialized in
            output.baseAddress!.moveInitialize(from: source, count: moved)
            initialized = moved
        }
    }
}

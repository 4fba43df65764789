/// The byte-level JSON parser that turns a request body straight into a ``Node``.
///
/// It applies Firebase's data rules while it reads, so there is no intermediate document:
/// keys are validated, `null` and empty objects vanish, arrays become objects keyed `0...n`,
/// `.priority` / `.value` give priorities, and `{".sv": ...}` server values are resolved
/// (`timestamp`) or recorded for the writer to resolve against the current tree (`increment`).
///
/// ```swift
/// let parsed = try JSONParser.parse(bytes, options: .init(serverTime: now))
/// ```
public struct JSONParser: ~Copyable {
    /// Limits and context for one parse.
    public struct Options: Sendable {
        /// How deep (in keys) the data may go below the write location.
        public var maxDepth: Int
        /// Longest string value, in UTF-8 bytes (Firebase: 10 MB).
        public var maxStringBytes: Int
        /// The value of `{".sv": "timestamp"}`, in milliseconds since the epoch.
        public var serverTime: Int64

        public init(maxDepth: Int = Path.maxDepth, maxStringBytes: Int = 10 * 1024 * 1024, serverTime: Int64 = 0) {
            self.maxDepth = maxDepth
            self.maxStringBytes = maxStringBytes
            self.serverTime = serverTime
        }
    }

    /// Parses a whole document into a node.
    public static func parse(_ bytes: UnsafeRawBufferPointer, options: Options = Options()) throws(DataError) -> ParsedNode {
        var parser = JSONParser(bytes: bytes, options: options)
        parser.skipWhitespace()
        let node = try parser.parseValue()
        parser.skipWhitespace()
        guard parser.position == parser.count else { throw DataError.unparseable }
        return ParsedNode(node: node, increments: parser.increments, timestamps: parser.timestamps)
    }

    /// Parses a whole document into a node.
    public static func parse(_ bytes: some Collection<UInt8>, options: Options = Options()) throws(DataError) -> ParsedNode {
        let parseBuffer = { (buffer: UnsafeBufferPointer<UInt8>) -> Result<ParsedNode, DataError> in
            do throws(DataError) {
                return .success(try parse(UnsafeRawBufferPointer(buffer), options: options))
            } catch {
                return .failure(error)
            }
        }
        let result = bytes.withContiguousStorageIfAvailable(parseBuffer) ?? Array(bytes).withUnsafeBufferPointer(parseBuffer)
        return try result.get()
    }

    /// Parses a multi-path update (`PATCH` body): an object whose keys are slash-separated paths
    /// relative to the write location and whose values are the data for each path.
    ///
    /// - Parameter locationDepth: the depth of the write location, to enforce the depth limit
    ///   (`options.maxDepth` counts from the root here).
    public static func parseUpdate(
        _ bytes: UnsafeRawBufferPointer, locationDepth: Int, options: Options = Options()
    ) throws(DataError) -> [UpdateEntry] {
        var parser = JSONParser(bytes: bytes, options: options)
        parser.skipWhitespace()
        guard parser.peek() == UInt8(ascii: "{") else {
            throw DataError("Invalid data; couldn't parse JSON object, array, or value. Update data must be an object.")
        }
        parser.position += 1
        var entries = [UpdateEntry]()
        parser.skipWhitespace()
        if parser.peek() == UInt8(ascii: "}") {
            parser.position += 1
        } else {
            while true {
                parser.skipWhitespace()
                let keyStart = parser.position
                guard parser.peek() == UInt8(ascii: "\"") else { throw DataError.unparseable }
                let rawKey = try parser.parseString()
                var keyPath = try Path(validatingUpdateKey: rawKey, position: parser.lineColumn(keyStart))
                guard !keyPath.isRoot else {
                    throw DataError.invalidData(
                        "Invalid data; couldn't parse key beginning at \(parser.lineColumn(keyStart)). Key value can't be empty or contain $ # [ ] / or .")
                }
                var isPriority = false
                if keyPath.lastKey?.string == ".priority" {
                    isPriority = true
                    keyPath = keyPath.parent
                }
                guard locationDepth + keyPath.depth <= Path.maxDepth else {
                    throw DataError.invalidPath("Path is too deep")
                }
                parser.skipWhitespace()
                guard parser.peek() == UInt8(ascii: ":") else { throw DataError.unparseable }
                parser.position += 1
                parser.skipWhitespace()
                parser.options.maxDepth = options.maxDepth - locationDepth - keyPath.depth
                parser.increments = []
                parser.timestamps = []
                let node = try parser.parseValue()
                entries.append(UpdateEntry(
                    rawKey: rawKey, path: keyPath, isPriority: isPriority,
                    value: ParsedNode(node: node, increments: parser.increments, timestamps: parser.timestamps)))
                parser.skipWhitespace()
                if parser.peek() == UInt8(ascii: ",") {
                    parser.position += 1
                    continue
                }
                guard parser.peek() == UInt8(ascii: "}") else { throw DataError.unparseable }
                parser.position += 1
                break
            }
        }
        parser.skipWhitespace()
        guard parser.position == parser.count else { throw DataError.unparseable }
        return entries
    }

    // MARK: State

    @usableFromInline let base: UnsafePointer<UInt8>
    @usableFromInline let count: Int
    @usableFromInline var position = 0
    var options: Options
    /// Where each key from the parse root to the value being read came from: the byte offset
    /// of an object key's opening quote, or `-(index + 1)` for an array element. Offsets, not
    /// keys, so that descending costs no allocation; keys are rebuilt only for increments.
    var keyOffsets = OffsetStack()
    /// Objects and arrays currently open, whatever their keys: bounds recursion through
    /// `.value`, `.priority` and `.sv`, which add no key to the path.
    var nesting = 0
    /// Entries of the objects being read, as a stack: each object pushes its entries here and
    /// copies them out once, exactly sized, when it ends.
    var scratch = EntryStack()
    var increments: [PendingIncrement] = []
    /// Where `{".sv": "timestamp"}` stood (it is read as `serverTime`).
    var timestamps: [Path] = []
    /// Field names already made in this parse (documents of 8 KB or more).
    let keyCache: KeyCache
    /// The order of recently sorted key sequences (documents of 8 KB or more).
    let keyOrders: KeyOrderCache

    /// - Parameter caches: whether to use the per-parse caches (by default, for documents of
    ///   8 KB or more); a reader of single strings needs none.
    init(bytes: UnsafeRawBufferPointer, options: Options, caches: Bool? = nil) {
        // An empty buffer may have a nil base; point at a static byte instead.
        self.base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? JSONParser.emptyBase
        self.count = bytes.count
        self.options = options
        let cached = caches ?? (bytes.count >= 8192)
        self.keyCache = KeyCache(enabled: cached)
        self.keyOrders = KeyOrderCache(enabled: cached)
    }

    nonisolated(unsafe) static let emptyBase: UnsafePointer<UInt8> = {
        let pointer = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        pointer.initialize(to: 0)
        return UnsafePointer(pointer)
    }()

    @inline(__always)
    func peek() -> UInt8? {
        position < count ? base[position] : nil
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while position < count {
            switch base[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    /// 1-based line and column of a byte offset, for error messages.
    func lineColumn(_ offset: Int) -> String {
        var line = 1
        var column = 1
        for index in 0..<min(offset, count) {
            if base[index] == 0x0A {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return "\(line):\(column)"
    }

    // MARK: Values

    mutating func parseValue() throws(DataError) -> Node {
        guard position < count else { throw DataError.unparseable }
        switch base[position] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try parseNumber()
        default:
            throw DataError.unparseable
        }
    }

    @inline(__always)
    mutating func expectLiteral(_ literal: StaticString) throws(DataError) {
        let length = literal.utf8CodeUnitCount
        guard position + length <= count else { throw DataError.unparseable }
        let literalBytes = literal.utf8Start
        for index in 0..<length where base[position + index] != literalBytes[index] {
            throw DataError.unparseable
        }
        position += length
    }

    @inline(__always)
    mutating func descend(offset: Int) throws(DataError) {
        guard keyOffsets.count < options.maxDepth else {
            throw DataError.invalidData(
                "Invalid data; data exceeds the maximum depth that can be written (\(Path.maxDepth) levels).")
        }
        keyOffsets.push(offset)
    }

    /// The keys from the parse root to the current value, rebuilt from ``keyOffsets``.
    func currentKeyPath() -> Path {
        Path(keys: keyOffsets.offsets.map { offset in
            if offset < 0 { return ArrayKeys.key(-offset - 1) }
            var reader = JSONParser(bytes: UnsafeRawBufferPointer(start: base, count: count), options: options, caches: false)
            reader.position = offset
            return ChildKey((try? reader.parseString()) ?? "")
        })
    }

    /// Counts one more open object or array; refuses nesting beyond the depth limit (plus the
    /// few levels that `.value`, `.priority` and `.sv` objects add without adding keys).
    @inline(__always)
    mutating func enterContainer() throws(DataError) {
        nesting += 1
        let limit = options.maxDepth > Int.max - 4 ? Int.max : options.maxDepth + 3
        guard nesting <= limit else {
            throw DataError.invalidData(
                "Invalid data; data exceeds the maximum depth that can be written (\(Path.maxDepth) levels).")
        }
    }

    mutating func parseArray() throws(DataError) -> Node {
        try enterContainer()
        defer { nesting -= 1 }
        position += 1  // [
        let start = scratch.count
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            position += 1
            return .null
        }
        var index = 0
        while true {
            skipWhitespace()
            try descend(offset: -(index + 1))
            let value = try parseValue()
            keyOffsets.pop()
            if !value.isNull { scratch.push(ChildEntry(key: ArrayKeys.key(index), value: consume value)) }
            index += 1
            skipWhitespace()
            guard position < count else { throw DataError.unparseable }
            let byte = base[position]
            position += 1
            if byte == UInt8(ascii: ",") { continue }
            guard byte == UInt8(ascii: "]") else { throw DataError.unparseable }
            break
        }
        if scratch.count == start { return .null }
        return .object(scratch.popMap(from: start))
    }

    mutating func parseObject() throws(DataError) -> Node {
        try enterContainer()
        defer { nesting -= 1 }
        position += 1  // {
        let start = scratch.count
        var priority: Priority?
        var dotValue: Node?
        var serverValue: Node?
        var sawPriority = false
        var sorted = true
        var sawNull = false
        let incrementsBefore = increments.count
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            position += 1
            return .null
        }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw DataError.unparseable }
            let keyStart = position
            let key = try parseKey(start: keyStart)
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw DataError.unparseable }
            position += 1
            skipWhitespace()
            switch consume key {
            case .child(let childKey):
                try descend(offset: keyStart)
                let value = try parseValue()
                keyOffsets.pop()
                if sorted, scratch.count > start, scratch.compareLastKey(with: childKey) >= 0 {
                    sorted = false
                }
                if value.isNull { sawNull = true }
                scratch.push(ChildEntry(key: consume childKey, value: consume value))
            case .priority:
                guard !sawPriority else { throw JSONParser.duplicateSpecialKey }
                sawPriority = true
                priority = try parsePriority()
            case .value:
                guard dotValue == nil else { throw JSONParser.duplicateSpecialKey }
                let value = try parseValue()
                guard value.isLeaf || value.isNull else {
                    throw DataError.invalidData("Invalid data; .value must be a boolean, number or string.")
                }
                dotValue = value
            case .serverValue:
                guard serverValue == nil else { throw JSONParser.duplicateSpecialKey }
                serverValue = try parseServerValue()
            }
            skipWhitespace()
            guard position < count else { throw DataError.unparseable }
            let byte = base[position]
            position += 1
            if byte == UInt8(ascii: ",") { continue }
            guard byte == UInt8(ascii: "}") else { throw DataError.unparseable }
            break
        }
        let memberCount = scratch.count - start
        if let serverValue {
            guard memberCount == 0, dotValue == nil, priority == nil else {
                throw DataError.invalidData("Invalid data; a server value (.sv) can't have siblings.")
            }
            return serverValue
        }
        if let dotValue {
            guard memberCount == 0 else {
                throw DataError.invalidData("Invalid data; .value can't be used with other children.")
            }
            return dotValue.with(priority: priority)
        }
        if !sorted {
            let entries = scratch.entries(from: start)
            var remaining = entries.count
            if !keyOrders.reorder(entries) {
                remaining = JSONParser.sortLastWins(entries)
                if remaining == entries.count { keyOrders.remember(entries) }
            }
            // Sorting deinitialized dropped duplicates: forget them before anything can throw.
            scratch.keep(from: start, count: remaining)
            // A dropped duplicate may have held an increment that would still be applied.
            if remaining < entries.count && increments.count > incrementsBefore {
                throw DataError.invalidData("Invalid data; a key appears twice in an object that holds a server value.")
            }
        }
        if sawNull {
            scratch.keep(from: start, count: JSONParser.removeNulls(scratch.entries(from: start)))
        }
        if scratch.count == start { return .null }
        return Node.object(scratch.popMap(from: start)).with(priority: priority)
    }

    static let duplicateSpecialKey = DataError.invalidData("Invalid data; .value, .priority or .sv appears twice in one object.")

    /// Sorts entries by key in place; where a key repeats, the last one wins (as in
    /// `JSON.parse`). Returns how many entries remain at the front; dropped duplicates are
    /// deinitialized. Entries are moved, never copied, so no reference counts change.
    static func sortLastWins(_ entries: UnsafeMutableBufferPointer<ChildEntry>) -> Int {
        let count = entries.count
        guard count > 1, let base = entries.baseAddress else { return count }
        var hasDuplicates = false
        if count <= 24 {
            // Insertion sort: stable, and fastest for the small objects that dominate. It sees
            // every pair of equal keys as neighbours, so it also tells whether there are any.
            for index in 1..<count {
                var slot = index
                var order = 1
                while slot > 0 {
                    order = ChildEntry.compareKeys(base[slot - 1], base[index])
                    if order <= 0 { break }
                    slot -= 1
                }
                if order == 0 { hasDuplicates = true }
                guard slot != index else { continue }
                let entry = (base + index).move()
                (base + slot + 1).moveInitialize(from: base + slot, count: index - slot)
                (base + slot).initialize(to: entry)
            }
        } else {
            // A stable sort of positions, then the entries moved into that order.
            var order = Array(0..<count)
            order.sort { left, right in
                let comparison = ChildEntry.compareKeys(base[left], base[right])
                return comparison != 0 ? comparison < 0 : left < right
            }
            let sorted = UnsafeMutablePointer<ChildEntry>.allocate(capacity: count)
            for (position, source) in order.enumerated() {
                (sorted + position).moveInitialize(from: base + source, count: 1)
            }
            base.moveInitialize(from: sorted, count: count)
            sorted.deallocate()
            for index in 1..<count where ChildEntry.compareKeys(base[index - 1], base[index]) == 0 {
                hasDuplicates = true
                break
            }
        }
        // Drop earlier duplicates: after a stable sort, the last of equal keys is the latest.
        guard hasDuplicates else { return count }
        var write = 0
        for read in 0..<count {
            if read + 1 < count && ChildEntry.compareKeys(base[read + 1], base[read]) == 0 {
                (base + read).deinitialize(count: 1)
                continue
            }
            if write != read { (base + write).moveInitialize(from: base + read, count: 1) }
            write += 1
        }
        return write
    }

    /// Drops entries whose value is null (they delete nothing in a new object), keeping the
    /// order; returns how many remain at the front.
    static func removeNulls(_ entries: UnsafeMutableBufferPointer<ChildEntry>) -> Int {
        guard let base = entries.baseAddress else { return 0 }
        var write = 0
        for read in 0..<entries.count {
            if base[read].value.isNull {
                (base + read).deinitialize(count: 1)
                continue
            }
            if write != read { (base + write).moveInitialize(from: base + read, count: 1) }
            write += 1
        }
        return write
    }

    // MARK: Keys and special keys

    enum ObjectKey {
        case child(ChildKey)
        case priority
        case value
        case serverValue
    }

    mutating func parseKey(start: Int) throws(DataError) -> ObjectKey {
        let (key, string) = try parseKeyText()
        if let key { return .child(key) }
        switch string {
        case ".priority": return .priority
        case ".value": return .value
        case ".sv": return .serverValue
        default:
            throw DataError.invalidData(
                "Invalid data; couldn't parse key beginning at \(lineColumn(start)). Key value can't be empty or contain $ # [ ] / or ."
            )
        }
    }

    mutating func parsePriority() throws(DataError) -> Priority? {
        let pending = increments.count
        let value = try parseValue()
        guard increments.count == pending else {
            throw DataError.invalidData("Invalid data; a priority can't be an increment.")
        }
        switch value {
        case .null: return nil
        case .int(let number): return .number(Double(number))
        case .double(let number): return .number(number)
        case .string(let string): return .string(string)
        default:
            throw DataError.invalidData("Invalid data; priority must be a number, a string or null.")
        }
    }

    /// Reads the value of a `.sv` key: `"timestamp"` or `{"increment": <number>}`.
    mutating func parseServerValue() throws(DataError) -> Node {
        skipWhitespace()
        if peek() == UInt8(ascii: "\"") {
            let name = try parseString()
            guard name == "timestamp" else {
                throw DataError.invalidData("Invalid data; unrecognized server value \"\(name)\".")
            }
            timestamps.append(currentKeyPath())
            return .int(options.serverTime)
        }
        guard peek() == UInt8(ascii: "{") else {
            throw DataError.invalidData("Invalid data; unrecognized server value.")
        }
        position += 1
        skipWhitespace()
        guard peek() == UInt8(ascii: "\""), try parseString() == "increment" else {
            throw DataError.invalidData("Invalid data; unrecognized server value.")
        }
        skipWhitespace()
        guard peek() == UInt8(ascii: ":") else { throw DataError.unparseable }
        position += 1
        skipWhitespace()
        let delta = try parseValue()
        switch delta {
        case .int, .double: break
        default: throw DataError.invalidData("Invalid data; increment must be a number.")
        }
        skipWhitespace()
        guard peek() == UInt8(ascii: "}") else {
            throw DataError.invalidData("Invalid data; unrecognized server value.")
        }
        position += 1
        increments.append(PendingIncrement(relativePath: currentKeyPath(), delta: delta))
        return delta
    }
}

/// The result of parsing: the node, plus increments still to resolve against the current tree.
public struct ParsedNode: Sendable {
    public var node: Node
    /// `{".sv": {"increment": n}}` placeholders; `node` holds `n` at each until resolved.
    public var increments: [PendingIncrement]
    /// Where `{".sv": "timestamp"}` placeholders were, below the parse root; `node` holds the
    /// parse's server time there (a write that happens later, such as an on-disconnect write,
    /// puts its own time there with ``ParsedNode/stamped(at:)``).
    public var timestamps: [Path]

    public init(node: Node, increments: [PendingIncrement] = [], timestamps: [Path] = []) {
        self.node = node
        self.increments = increments
        self.timestamps = timestamps
    }
}

/// One `{".sv": {"increment": delta}}` found at `relativePath` below the parse root.
public struct PendingIncrement: Sendable {
    public var relativePath: Path
    public var delta: Node

    public init(relativePath: Path, delta: Node) {
        self.relativePath = relativePath
        self.delta = delta
    }
}

/// One path of a multi-path update.
public struct UpdateEntry: Sendable {
    /// The key exactly as the client sent it (echoed in the response).
    public var rawKey: String
    /// The path relative to the write location.
    public var path: Path
    /// True if the key ended in `/.priority`: the value sets the priority at `path`.
    public var isPriority: Bool
    public var value: ParsedNode
}

extension Path {
    /// Parses a `PATCH` key such as `users/alan/name` or `a/b/.priority`.
    init(validatingUpdateKey string: String, position: String) throws(DataError) {
        var keys = [ChildKey]()
        let segments = string.split(separator: "/", omittingEmptySubsequences: true)
        for (index, segment) in segments.enumerated() {
            let text = String(segment)
            if text == ".priority" && index == segments.count - 1 {
                keys.append(ChildKey(text))
                continue
            }
            guard KeyValidator.isValid(text) else {
                throw DataError.invalidData(
                    "Invalid data; couldn't parse key beginning at \(position). Key value can't be empty or contain $ # [ ] / or ."
                )
            }
            keys.append(ChildKey(text))
        }
        self.init(keys: keys)
    }
}

/// Pre-made keys `"0"`, `"1"`, ... for array elements.
enum ArrayKeys {
    static let cached: [ChildKey] = (0..<1024).map { ChildKey(String($0)) }

    @inline(__always)
    static func key(_ index: Int) -> ChildKey {
        index < cached.count ? cached[index] : ChildKey(String(index))
    }
}

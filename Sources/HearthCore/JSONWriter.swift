/// Serialises nodes to JSON bytes as Firebase renders them.
///
/// - `compact`: no whitespace; objects whose keys are all array indices with
///   `maxKey < 2 × count` are rendered as arrays (missing indices become `null`).
/// - `pretty`: Firebase's `print=pretty` layout (`"key" : value`, two-space indent,
///   arrays on one line as `[ 1, 2 ]`), with a trailing newline.
/// - `export`: priorities included (`.priority`, `.value`), no array conversion.
public struct JSONWriter: ~Copyable {
    public enum Layout: Sendable {
        case compact
        case pretty
    }

    public struct Options: Sendable {
        public var layout: Layout
        /// Include priorities and never render arrays (`format=export`).
        public var export: Bool
        /// Write integral doubles as doubles (`1.0`), so that reading back keeps every number's
        /// type. Storage uses this; clients get JavaScript-style numbers.
        public var preservesNumberTypes: Bool

        public init(layout: Layout = .compact, export: Bool = false, preservesNumberTypes: Bool = false) {
            self.layout = layout
            self.export = export
            self.preservesNumberTypes = preservesNumberTypes
        }

        /// Storage's format: compact, export, exact number types.
        public static let storage = Options(export: true, preservesNumberTypes: true)

        public static let compact = Options()
        public static let pretty = Options(layout: .pretty)
    }


    /// What has been written.
    public var output: OutputBuffer
    let options: Options
    /// Object nesting, for the pretty layout's indentation.
    var nesting = 0
    /// Streaming: once `output` holds this many bytes, they are handed to `sink` and dropped.
    var flushThreshold = Int.max
    var sink: ((UnsafeRawBufferPointer) throws -> Void)?
    var sinkError: (any Error)?

    public init(options: Options, capacity: Int = 4096) {
        self.output = OutputBuffer(capacity: capacity)
        self.options = options
    }

    /// Writes `node` in pieces of about `chunkBytes` to `sink`, so that a large tree is never
    /// held twice in memory (`hearth export`).
    public static func stream(
        _ node: Node, options: Options, chunkBytes: Int = 1 << 20, to sink: @escaping (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        var writer = JSONWriter(options: options, capacity: chunkBytes + 4096)
        writer.flushThreshold = chunkBytes
        writer.sink = sink
        writer.write(node)
        if let error = writer.sinkError { throw error }
        try writer.output.withBytes { try sink($0) }
    }

    /// Hands what was written to the sink, if streaming and past the threshold.
    @inline(__always)
    mutating func flushIfNeeded() {
        guard output.count >= flushThreshold, let sink, sinkError == nil else { return }
        do {
            try output.withBytes { try sink($0) }
        } catch {
            sinkError = error
        }
        output.removeAll()
    }

    /// Serialises `node` to a new byte array.
    public static func serialize(_ node: Node, options: Options = .compact) -> [UInt8] {
        var writer = JSONWriter(options: options)
        writer.write(node)
        return writer.output.bytes
    }

    /// Serialises `node` to a string (for tests and messages).
    public static func string(_ node: Node, options: Options = .compact) -> String {
        var writer = JSONWriter(options: options)
        writer.write(node)
        return writer.output.string
    }

    /// Writes a whole document (with the trailing newline of the pretty layout).
    public mutating func write(_ node: Node) {
        writeValue(node)
        if options.layout == .pretty { output.append(UInt8(ascii: "\n")) }
    }

    // MARK: Values

    public mutating func writeValue(_ node: Node) {
        switch node {
        case .null: output.appendNull()
        case .bool(let value): output.append(bool: value)
        case .int(let value): output.append(integer: value)
        case .double(let value): writeDouble(value)
        case .string(let value): JSONWriter.writeString(value, to: &output)
        case .object(let children):
            writeChildren(children)
        case .prioritized(let inner, let priority):
            if !options.export {
                writeValue(inner)
            } else if case .object(let children) = inner {
                writeObject(children, priority: priority)
            } else {
                // A leaf with a priority: {".value": v, ".priority": p}
                beginObject()
                writeMember(".value", first: true)
                writeValue(inner)
                writeMember(".priority", first: false)
                writeValue(priority.node)
                endObject(empty: false)
            }
        }
    }

    /// Writes an object of `members` in the given order, each key exactly as given (keys may be
    /// relative paths, `a/b`: the members of an SSE `patch` and of a realtime merge).
    public mutating func write(members: [(key: String, value: Node)]) {
        beginObject()
        for (index, member) in members.enumerated() {
            writeMember(member.key, first: index == 0)
            writeValue(member.value)
        }
        endObject(empty: members.isEmpty)
    }

    /// Writes a whole document: an object whose members are `entries`, in the given order
    /// (query results keep their query order). Entries that Firebase would render as an array
    /// are written as one, in key order.
    public mutating func write(orderedEntries entries: [ChildEntry]) {
        guard !entries.isEmpty else { return write(.null) }
        if !options.export, entries.allSatisfy({ $0.key.isArrayIndex }) {
            let map = ChildMap(sortedEntries: ContiguousArray(entries.sorted { $0.key < $1.key }))
            if JSONWriter.arrayLength(map) != nil { return write(.object(map)) }
        }
        beginObject()
        var first = true
        for entry in entries {
            writeMember(entry.key.string, first: first)
            writeValue(entry.value)
            first = false
        }
        endObject(empty: first)
        if options.layout == .pretty { output.append(UInt8(ascii: "\n")) }
    }

    /// Writes an object's children as an array or an object, by Firebase's rule.
    mutating func writeChildren(_ children: ChildMap) {
        if !options.export, JSONWriter.arrayLength(children) != nil {
            writeArray(children)
        } else {
            writeObject(children, priority: nil)
        }
    }

    /// Firebase's array rule: every key a canonical index and `maxKey < 2 × count`.
    /// Returns the array length (maxKey + 1) if the children should render as an array.
    @inlinable
    public static func arrayLength(_ children: ChildMap) -> Int? {
        if case .leaf(let entries) = children.root {
            // One page, the common case: decided on the page (no descent to the last key).
            return isArray(leaf: entries) ? Int(entries[entries.count - 1].keyInteger) + 1 : nil
        }
        // Integer-like keys sort first: if the smallest is not one, no key is.
        guard children.firstKeyIsInteger, let last = children.lastKey, let maxKey = last.integerValue, maxKey >= 0,
            last.isArrayIndex,
            Int(maxKey) < 2 * children.count
        else { return nil }
        // Integer-like keys sort first, so if the last is an index all keys are integer-like;
        // each must also be a canonical non-negative index.
        var allIndices = true
        children.forEachLeaf { entries in
            for position in entries.indices where !entries[position].keyIsArrayIndex { allIndices = false }
        }
        return allIndices ? Int(maxKey) + 1 : nil
    }

    /// ``arrayLength(_:)`` for a map that is one leaf page: every key an array index and the
    /// largest (the last) below twice the count.
    @inlinable @inline(__always)
    static func isArray(leaf entries: ContiguousArray<ChildEntry>) -> Bool {
        guard let lastIndex = entries.indices.last, entries[0].keyIsArrayIndex,
            Int(entries[lastIndex].keyInteger) < 2 * entries.count
        else { return false }
        for position in entries.indices where !entries[position].keyIsArrayIndex { return false }
        return true
    }

    /// Writes children that form an array (see ``arrayLength(_:)``); missing indices are `null`.
    mutating func writeArray(_ children: ChildMap) {
        output.append(UInt8(ascii: "["))
        let pretty = options.layout == .pretty
        if pretty { output.append(UInt8(ascii: " ")) }
        var next = 0
        if case .leaf(let entries) = children.root {
            writeElements(entries, next: &next, pretty: pretty)
        } else {
            children.forEachLeaf { writeElements($0, next: &next, pretty: pretty) }
        }
        if pretty { output.append(UInt8(ascii: " ")) }
        output.append(UInt8(ascii: "]"))
    }

    /// Writes the elements of one leaf page of an array, with `null` for missing indices;
    /// `next` is the index the next element would have.
    @inline(__always)
    mutating func writeElements(_ entries: ContiguousArray<ChildEntry>, next: inout Int, pretty: Bool) {
        for position in entries.indices {
            let index = Int(entries[position].keyInteger)
            while next < index {
                if next > 0 { appendElementSeparator(pretty: pretty) }
                output.appendNull()
                next += 1
            }
            if next > 0 { appendElementSeparator(pretty: pretty) }
            writeInlineValue(entries[position].value)
            next += 1
        }
    }

    /// `,` between array elements, `, ` in the pretty layout.
    @inline(__always)
    mutating func appendElementSeparator(pretty: Bool) {
        if pretty {
            output.append(UInt8(ascii: ","))
            output.append(UInt8(ascii: " "))
        } else {
            output.append(UInt8(ascii: ","))
        }
    }

    mutating func writeObject(_ children: ChildMap, priority: Priority?) {
        beginObject()
        var first = true
        if case .leaf(let entries) = children.root {
            writeMembers(entries, first: &first)
        } else {
            children.forEachLeaf { writeMembers($0, first: &first) }
        }
        if let priority {
            writeMember(".priority", first: first)
            writeValue(priority.node)
            first = false
        }
        endObject(empty: first)
    }

    /// Writes the members of one leaf page. Leaves are written here, without a call per value;
    /// objects recurse.
    @inline(__always)
    mutating func writeMembers(_ entries: ContiguousArray<ChildEntry>, first: inout Bool) {
        let compact = options.layout == .compact
        for index in entries.indices {
            if compact {
                writeCompactKey(entries[index].keyString, flags: entries[index].keyFlags, comma: !first)
            } else {
                writeMember(entries[index].keyString, first: first)
            }
            writeInlineValue(entries[index].value)
            first = false
            flushIfNeeded()
        }
    }

    /// ``writeValue(_:)`` with the common cases inlined, for the loops over leaf pages.
    @inline(__always)
    mutating func writeInlineValue(_ node: Node) {
        switch node {
        case .string(let value): JSONWriter.writeString(value, to: &output)
        case .int(let value): output.append(integer: value)
        case .bool(let value): output.append(bool: value)
        case .double(let value): writeDouble(value)
        case .object(let children): writeChildren(children)
        default: writeValue(node)
        }
    }

    @inline(__always)
    mutating func beginObject() {
        output.append(UInt8(ascii: "{"))
        nesting += 1
    }

    @inline(__always)
    mutating func endObject(empty: Bool) {
        nesting -= 1
        if options.layout == .pretty {
            if empty {
                output.append(UInt8(ascii: " "))
            } else {
                newline()
            }
        }
        output.append(UInt8(ascii: "}"))
    }

    /// Writes the separator (if `comma`), key and colon before a member's value, compact layout.
    /// A small key with nothing to escape (most keys) takes four stores and no checks.
    @inline(__always)
    mutating func writeCompactKey(_ key: String, flags: UInt8, comma: Bool) {
        let isPlain = flags & ChildKey.plainFlag != 0
        let (low, high) = StringLayout.words(key)
        guard isPlain && StringLayout.isSmall(high) else {
            if comma { output.append(UInt8(ascii: ",")) }
            if isPlain {
                // Nothing to escape: the bytes as they are, between quotes.
                output.append(UInt8(ascii: "\""))
                JSONWriter.appendBytes(of: key, to: &output)
                output.append(UInt8(ascii: "\""))
            } else {
                JSONWriter.writeString(key, to: &output)
            }
            output.append(UInt8(ascii: ":"))
            return
        }
        let count = StringLayout.count(high)
        output.reserve(20)
        let destination = output.storage + output.written
        let start = comma ? 1 : 0
        // The comma is always stored; without one, the opening quote overwrites it.
        destination[0] = UInt8(ascii: ",")
        destination[start] = UInt8(ascii: "\"")
        UnsafeMutableRawPointer(destination + start + 1).storeBytes(of: low, as: UInt64.self)
        UnsafeMutableRawPointer(destination + start + 9).storeBytes(of: high, as: UInt64.self)
        destination[start + 1 + count] = UInt8(ascii: "\"")
        destination[start + 2 + count] = UInt8(ascii: ":")
        output.written += start + count + 3
    }

    /// Writes the separator, key and colon before a member's value.
    @inline(__always)
    mutating func writeMember(_ key: String, first: Bool) {
        if !first { output.append(UInt8(ascii: ",")) }
        if options.layout == .pretty {
            newline()
            JSONWriter.writeString(key, to: &output)
            output.append(" : ")
        } else {
            JSONWriter.writeString(key, to: &output)
            output.append(UInt8(ascii: ":"))
        }
    }

    mutating func newline() {
        output.append(UInt8(ascii: "\n"))
        output.append(repeating: UInt8(ascii: " "), count: nesting * 2)
    }

    // MARK: Scalars

    /// Integral doubles below 2^63 are written without a fraction (`1.0` → `1`), as JavaScript
    /// and Firebase show them; others in the shortest form that reads back to the same double.
    @inline(__always)
    mutating func writeDouble(_ value: Double) {
        if options.preservesNumberTypes && value.rounded(.towardZero) == value {
            output.append(value.description)  // "1.0", "1e+20": read back as doubles
        } else {
            JSONWriter.writeDouble(value, to: &output)
        }
    }

    public static func writeDouble(_ value: Double, to output: inout OutputBuffer) {
        // Integral and below 2^63 in magnitude: written as an integer. (A conversion round trip
        // instead of `rounded(.towardZero)`, which is a library call on baseline x86-64.)
        if abs(value) < 9_223_372_036_854_775_808, Double(Int64(value)) == value {
            output.append(integer: Int64(value))
        } else if !writeShortDecimal(value, to: &output) {
            output.append(value.description)
        }
    }

    static let hexDigits: StaticString = "0123456789abcdef"

    /// The fast path for doubles with few decimals (`27.45`): finds the smallest k ≤ 8 such that
    /// m = value × 10^k is an integer and m / 10^k (a correctly rounded division of two exact
    /// doubles) is `value` again, so the decimal m·10^-k reads back as exactly `value`.
    static func writeShortDecimal(_ value: Double, to output: inout OutputBuffer) -> Bool {
        let magnitude = abs(value)
        guard magnitude < 1e15, magnitude >= 1e-6 else { return false }
        var power = 1.0
        for k in 1...8 {
            power *= 10  // exact: powers of ten up to 10^22 are doubles
            let scaled = magnitude * power
            guard scaled < 9_007_199_254_740_992 else { return false }
            let integer = UInt64(scaled)
            guard Double(integer) == scaled && scaled / power == magnitude else { continue }
            // Drop trailing zeros of the fraction, then write the integer part, the point and
            // the fraction (zero-padded to its width), digits two at a time.
            var mantissa = integer
            var digits = k
            while digits > 0 && mantissa % 10 == 0 {
                mantissa /= 10
                digits -= 1
            }
            if value < 0 { output.append(UInt8(ascii: "-")) }
            let scale = OutputBuffer.powerOfTen(digits)
            output.append(integer: Int64(mantissa / scale))
            if digits > 0 {
                output.append(UInt8(ascii: "."))
                output.append(digitsOf: UInt32(truncatingIfNeeded: mantissa % scale), width: digits)
            }
            return true
        }
        return false
    }

    /// Writes a quoted, escaped string. Non-ASCII is written as UTF-8.
    @inline(__always)
    public static func writeString(_ string: String, to output: inout OutputBuffer) {
        let (low, high) = StringLayout.words(string)
        if StringLayout.isSmall(high) && writeSmallString(low: low, high: high, to: &output) { return }
        writeLargeString(string, to: &output)
    }

    /// Appends a string's UTF-8 bytes as they are.
    static func appendBytes(of string: String, to output: inout OutputBuffer) {
        let (low, high) = StringLayout.words(string)
        if let bytes = StringLayout.nativeUTF8(low: low, high: high) {
            output.append(copying: bytes)
            return
        }
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { output.append(UnsafeRawBufferPointer($0)) }
        if done == nil { output.append(string) }
    }

    /// Writes bytes (at least eight) as a quoted string if none needs escaping: one pass of
    /// eight-byte checks, then a copy. Returns false, having written nothing, otherwise.
    @inline(__always)
    static func writeCleanString(_ bytes: UnsafeRawBufferPointer, to output: inout OutputBuffer) -> Bool {
        let count = bytes.count
        guard count >= 8, let source = bytes.baseAddress else { return false }
        var bits: UInt64 = 0
        var index = 0
        while index + 8 <= count {
            bits |= escapeBits(source.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            index += 8
        }
        bits |= escapeBits(source.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self))
        guard bits == 0 else { return false }
        output.append(UInt8(ascii: "\""))
        output.append(copying: bytes)
        output.append(UInt8(ascii: "\""))
        return true
    }

    /// ``writeString(_:to:)`` for strings that are not small or need escapes: out of line, so
    /// that the small-string path stays small enough to inline.
    @inline(never)
    static func writeLargeString(_ string: String, to output: inout OutputBuffer) {
        let (low, high) = StringLayout.words(string)
        if let bytes = StringLayout.nativeUTF8(low: low, high: high), writeCleanString(bytes, to: &output) { return }
        // Non-mutating access: no copy of the string, so no reference count traffic.
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { bytes in
            writeString(bytes: UnsafeRawBufferPointer(bytes), to: &output)
        }
        if done == nil {
            var copy = string
            copy.withUTF8 { writeString(bytes: UnsafeRawBufferPointer($0), to: &output) }
        }
    }

    /// Writes a small string (see ``StringLayout``) from its two words, if none of its bytes
    /// needs escaping: one check per word and two eight-byte stores, no copy to memory first.
    /// Returns false, having written nothing, if a byte needs escaping.
    @inline(__always)
    static func writeSmallString(low: UInt64, high: UInt64, to output: inout OutputBuffer) -> Bool {
        let count = StringLayout.count(high)
        let spaces: UInt64 = 0x2020_2020_2020_2020
        // Bytes past the end are zero, which would read as control characters: make them spaces.
        let lowMask: UInt64 = count >= 8 ? ~0 : (1 &<< UInt64(truncatingIfNeeded: count &* 8)) &- 1
        let highMask: UInt64 = count <= 8 ? 0 : (1 &<< UInt64(truncatingIfNeeded: (count &- 8) &* 8)) &- 1
        let first = (low & lowMask) | (spaces & ~lowMask)
        let second = (high & highMask) | (spaces & ~highMask)
        guard escapeBits(first) | escapeBits(second) == 0 else { return false }
        output.reserve(18)
        let destination = output.storage + output.written
        destination[0] = UInt8(ascii: "\"")
        UnsafeMutableRawPointer(destination + 1).storeBytes(of: low, as: UInt64.self)
        UnsafeMutableRawPointer(destination + 9).storeBytes(of: high, as: UInt64.self)
        // The closing quote overwrites the first byte past the string (padding or discriminator).
        destination[1 + count] = UInt8(ascii: "\"")
        output.written += count + 2
        return true
    }

    /// Writes UTF-8 bytes as a quoted JSON string. Clean stretches are copied eight bytes at a
    /// time while they are checked (SWAR); only bytes that need escaping take the slow path.
    @inline(__always)
    public static func writeString(bytes: UnsafeRawBufferPointer, to output: inout OutputBuffer) {
        let count = bytes.count
        // Room for the quotes plus one word of slack for the final eight-byte store.
        output.reserve(count + 10)
        var destination = output.storage + output.written
        destination[0] = UInt8(ascii: "\"")
        var out = 1
        var index = 0
        var escaped = false
        if let source = bytes.baseAddress {
            while index < count {
                while index + 8 <= count {
                    let word = source.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                    if JSONWriter.wordNeedsEscape(word) { break }
                    UnsafeMutableRawPointer(destination + out).storeBytes(of: word, as: UInt64.self)
                    out += 8
                    index += 8
                }
                let remaining = count - index
                if remaining > 0 && remaining < 8 && !escaped {
                    // The clean tail in one word: the last eight bytes of a long string (which
                    // rewrites a few bytes already written, identically), or a short string
                    // padded with spaces.
                    if count >= 8 {
                        let word = source.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
                        if !JSONWriter.wordNeedsEscape(word) {
                            UnsafeMutableRawPointer(destination + out - (8 - remaining)).storeBytes(of: word, as: UInt64.self)
                            out += remaining
                            break
                        }
                    } else {
                        var word: UInt64 = 0x2020_2020_2020_2020
                        withUnsafeMutableBytes(of: &word) { $0.copyMemory(from: UnsafeRawBufferPointer(start: source, count: remaining)) }
                        if !JSONWriter.wordNeedsEscape(word) {
                            UnsafeMutableRawPointer(destination + out).storeBytes(of: word, as: UInt64.self)
                            out += remaining
                            break
                        }
                    }
                }
                // Fewer than eight bytes left, or a word with something to escape: go bytewise
                // to the end of this word.
                let stop = Swift.min(count, index + 8)
                while index < stop {
                    let byte = source.load(fromByteOffset: index, as: UInt8.self)
                    index += 1
                    if byte >= 0x20 && byte != 0x22 && byte != 0x5C {
                        destination[out] = byte
                        out += 1
                    } else {
                        escaped = true
                        output.written += out
                        writeEscape(byte, to: &output)
                        output.reserve(count - index + 10)
                        destination = output.storage + output.written
                        out = 0
                    }
                }
            }
        }
        destination[out] = UInt8(ascii: "\"")
        output.written += out + 1
    }

    /// True if any byte of `word` is below 0x20, `"` or `\` (SWAR: no branches per byte).
    @inline(__always)
    static func wordNeedsEscape(_ word: UInt64) -> Bool {
        escapeBits(word) != 0
    }

    /// Non-zero if any byte of `word` is below 0x20, `"` or `\` (each such byte, and possibly
    /// bytes above it, gets its high bit set).
    @inline(__always)
    static func escapeBits(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let below20 = (word &- ones &* 0x20) & ~word & highs
        let quote = word ^ (ones &* 0x22)
        let backslash = word ^ (ones &* 0x5C)
        let hasQuote = (quote &- ones) & ~quote & highs
        let hasBackslash = (backslash &- ones) & ~backslash & highs
        return below20 | hasQuote | hasBackslash
    }

    static func writeEscape(_ byte: UInt8, to output: inout OutputBuffer) {
        // Two-byte escapes as one store: a backslash then the letter.
        switch byte {
        case 0x22: output.append(word: 0x225C, count: 2)
        case 0x5C: output.append(word: 0x5C5C, count: 2)
        case 0x0A: output.append(word: 0x6E5C, count: 2)
        case 0x0D: output.append(word: 0x725C, count: 2)
        case 0x09: output.append(word: 0x745C, count: 2)
        case 0x08: output.append(word: 0x625C, count: 2)
        case 0x0C: output.append(word: 0x665C, count: 2)
        default:
            output.append(word: 0x3030_755C, count: 4)
            output.append(hexDigits.utf8Start[Int(byte >> 4)])
            output.append(hexDigits.utf8Start[Int(byte & 0xF)])
        }
    }
}

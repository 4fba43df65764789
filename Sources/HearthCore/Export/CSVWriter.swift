/// Writes the children of a node as CSV (RFC 4180): one row per child, the first column
/// `key`, then one column per leaf path found in the children.
///
/// Columns, in a stable order: every leaf path of every child (`device_id`, `network/mac`,
/// `tags/0`), in the order they first appear when the children are read in key order and each
/// child's fields in key order. A child that is itself a leaf has its value in the column
/// `.value`. Missing values are empty fields; strings are written as they are, numbers as in
/// JSON, booleans as `true`/`false`. Fields holding `,`, `"`, CR or LF are quoted, with `"`
/// doubled. Lines end with CRLF. UTF-8, no byte-order mark.
///
/// The text is produced in chunks (two passes over the children: columns, then rows), so a
/// node with millions of children is never held as one string.
public enum CSVWriter {
    /// The column for children that are leaves.
    public static let valueColumn = ".value"

    /// The leaf paths of `children`, in first-appearance order.
    public static func columns(of children: some Sequence<ChildEntry>) -> [String] {
        var order: [String] = []
        var seen: Set<[UInt8]> = []
        for child in children {
            forEachLeaf(of: child.value, prefix: "") { path, _ in
                if seen.insert(Array(path.utf8)).inserted { order.append(path) }
            }
        }
        return order
    }

    /// Calls `body` with each leaf's column name and value, in key order.
    static func forEachLeaf(of node: Node, prefix: String, _ body: (String, Node) -> Void) {
        switch node.withoutPriority {
        case .null:
            return
        case .object(let children):
            for child in children {
                let name = prefix.isEmpty ? child.key.string : prefix + "/" + child.key.string
                forEachLeaf(of: child.value, prefix: name, body)
            }
        default:
            body(prefix.isEmpty ? valueColumn : prefix, node.withoutPriority)
        }
    }

    /// Streams the CSV of `children` to `sink` in chunks of about `chunkBytes`. The children
    /// are read twice (columns, then rows), so they must be a multi-pass sequence such as a
    /// ``ChildMap`` or an array; nothing is copied.
    public static func write(
        _ children: some Sequence<ChildEntry>, chunkBytes: Int = 1 << 20, to sink: ([UInt8]) throws -> Void
    ) rethrows {
        var encoder = CSVEncoder(columns: columns(of: children))
        var output = encoder.header
        for child in children {
            encoder.append(child, to: &output)
            if output.count >= chunkBytes {
                try sink(output)
                output.removeAll(keepingCapacity: true)
            }
        }
        if !output.isEmpty { try sink(output) }
    }

    static func writeHeader(_ columns: [String], to output: inout [UInt8]) {
        writeField("key", to: &output)
        for column in columns {
            output.append(UInt8(ascii: ","))
            writeField(column, to: &output)
        }
        output += [13, 10]
    }

    static func writeRow(_ child: ChildEntry, columns: [String: Int], fields: inout [Node?], to output: inout [UInt8]) {
        for position in fields.indices { fields[position] = nil }
        forEachLeaf(of: child.value, prefix: "") { path, value in
            if let position = columns[path] { fields[position] = value }
        }
        writeField(child.key.string, to: &output)
        for field in fields {
            output.append(UInt8(ascii: ","))
            guard let field else { continue }
            switch field {
            case .string(let text): writeField(text, to: &output)
            case .bool(let value): output += Array((value ? "true" : "false").utf8)
            case .int(let value): output += Array(String(value).utf8)
            default: output += JSONWriter.serialize(field, options: .compact)
            }
        }
        output += [13, 10]
    }

    /// A field, quoted when it holds a comma, a quote, CR or LF (RFC 4180).
    static func writeField(_ text: String, to output: inout [UInt8]) {
        let bytes = text.utf8
        guard bytes.contains(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 13 || $0 == 10 }) else {
            output += bytes
            return
        }
        output.append(UInt8(ascii: "\""))
        for byte in bytes {
            if byte == UInt8(ascii: "\"") { output.append(byte) }
            output.append(byte)
        }
        output.append(UInt8(ascii: "\""))
    }
}

/// Encodes CSV rows for a fixed set of columns, one child at a time (for callers that write
/// each chunk as it is ready, such as an HTTP response).
public struct CSVEncoder: Sendable {
    public let columns: [String]
    let index: [String: Int]
    var fields: [Node?]

    public init(columns: [String]) {
        self.columns = columns
        var index: [String: Int] = [:]
        for (position, column) in columns.enumerated() { index[column] = position }
        self.index = index
        fields = [Node?](repeating: nil, count: columns.count)
    }

    /// The header line: `key` and the columns.
    public var header: [UInt8] {
        var output: [UInt8] = []
        CSVWriter.writeHeader(columns, to: &output)
        return output
    }

    /// Appends the row of one child.
    public mutating func append(_ child: ChildEntry, to output: inout [UInt8]) {
        CSVWriter.writeRow(child, columns: index, fields: &fields, to: &output)
    }
}

/// The hash Firebase's client SDKs compute of a value, exactly as they compute it: what a
/// transaction sends as `h` with its put, to be written only if the stored value still hashes
/// the same (the wire protocol reference, §4.2). Base64 SHA-1 of a text that spells the tree:
///
/// - a leaf: `[priority:<p>:]<type>:<value>`, every number as the 16 hex digits of its IEEE-754
///   double (`1` → `number:3ff0000000000000`), booleans as `boolean:true`, strings raw;
/// - an object: `[priority:<p>:]` then `:<key>:<hash of the child>` for each child in priority
///   order (no priority first, then numbers, then strings; ties in key order);
/// - null: the empty string, not hashed.
///
/// - Complexity: O(n) in the size of the tree (children are sorted only when some child has a
///   priority).
public enum NodeHash {
    public static func of(_ node: Node) -> String {
        guard let text = text(of: node) else { return "" }
        return Base64.encode(Array(text.utf8).withUnsafeBytes { SHA1.hash($0) })
    }

    /// The text hashed for `node`; nil for null.
    static func text(of node: Node) -> String? {
        var text = prefix(node.priority)
        switch node.withoutPriority {
        case .null:
            return nil
        case .bool(let value):
            text += value ? "boolean:true" : "boolean:false"
        case .int(let value):
            text += "number:" + numberText(Double(value))
        case .double(let value):
            text += "number:" + numberText(value)
        case .string(let value):
            text += "string:" + value
        case .object(let children):
            var ordered = Array(children)
            if ordered.contains(where: { $0.value.priority != nil }) {
                // Stable: equal priorities keep key order.
                ordered = ordered.enumerated().sorted { left, right in
                    let order = compare(left.element.value.priority, right.element.value.priority)
                    return order != 0 ? order < 0 : left.offset < right.offset
                }.map(\.element)
            }
            var any = false
            for child in ordered {
                let hash = of(child.value)
                guard !hash.isEmpty else { continue }
                any = true
                text += ":" + child.key.string + ":" + hash
            }
            guard any || !text.isEmpty else { return nil }
        case .prioritized:
            preconditionFailure("withoutPriority never is prioritized")
        }
        return text
    }

    /// `priority:number:<hex>:` or `priority:string:<p>:`; empty without a priority.
    static func prefix(_ priority: Priority?) -> String {
        switch priority {
        case nil: ""
        case .number(let number)?: "priority:number:" + numberText(number) + ":"
        case .string(let string)?: "priority:string:" + string + ":"
        }
    }

    /// The IEEE-754 double as 16 lowercase hex digits, big-endian.
    static func numberText(_ value: Double) -> String {
        let hex = String(value.bitPattern, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Firebase's priority order: none, then numbers ascending, then strings (UTF-16 order).
    static func compare(_ left: Priority?, _ right: Priority?) -> Int {
        func rank(_ priority: Priority?) -> Int {
            switch priority {
            case nil: 0
            case .number?: 1
            case .string?: 2
            }
        }
        switch (left, right) {
        case (.number(let a)?, .number(let b)?):
            return a < b ? -1 : a > b ? 1 : 0
        case (.string(let a)?, .string(let b)?):
            return a == b ? 0 : a.utf16.lexicographicallyPrecedes(b.utf16) ? -1 : 1
        default:
            return rank(left) - rank(right)
        }
    }
}

/// A `.read`, `.write` or `.validate` rule: a constant or a compiled expression.
public enum CompiledRule: Sendable {
    case constant(Bool)
    case expression(RuleExpression)

    /// The rule's verdict; a runtime error counts as false.
    public func evaluate(_ context: RuleContext) -> Bool {
        switch self {
        case .constant(let value): return value
        case .expression(let expression): return expression.evaluate(context) ?? false
        }
    }
}

/// The rules at one location of the rules tree.
public final class RuleNode: Sendable {
    public let read: CompiledRule?
    public let write: CompiledRule?
    public let validate: CompiledRule?
    /// `.indexOn`: child paths (or `.value`) to index here, for queries.
    public let indexOn: [String]
    /// Named children, which take precedence over the wildcard. Keyed by ``ChildKey``, which
    /// compares bytes as data keys do (Swift strings would equate canonically equivalent
    /// spellings such as `café` and `cafe\u{301}`, which are different keys in the data).
    public let children: [ChildKey: RuleNode]
    /// The `$wildcard` child and its name, if any.
    public let wildcardName: String?
    public let wildcard: RuleNode?

    init(
        read: CompiledRule?, write: CompiledRule?, validate: CompiledRule?, indexOn: [String],
        children: [ChildKey: RuleNode], wildcardName: String?, wildcard: RuleNode?
    ) {
        self.read = read
        self.write = write
        self.validate = validate
        self.indexOn = indexOn
        self.children = children
        self.wildcardName = wildcardName
        self.wildcard = wildcard
    }

    /// The rules for the child `key`: the named child, else the wildcard (which captures `key`).
    @inline(__always)
    func child(_ key: ChildKey, captures: inout [String]) -> RuleNode? {
        if let named = children[key] { return named }
        guard let wildcard else { return nil }
        captures.append(key.string)
        return wildcard
    }

    var isEmpty: Bool {
        read == nil && write == nil && validate == nil && indexOn.isEmpty && children.isEmpty && wildcard == nil
    }
}

/// A compiled rules document (`{"rules": {...}}`): parsed once, evaluated on every request.
///
/// ```swift
/// let rules = try RuleSet.parse(#"{"rules": {".read": "auth != null", ".write": "auth == null"}}"#)
/// rules.canRead(Path.root, RuleContext(auth: .null))  // false
/// ```
public struct RuleSet: Sendable {
    /// The document as it was given (comments included), for `GET /.settings/rules.json`.
    public let source: String
    /// The rules tree; its root is the `rules` object.
    public let root: RuleNode

    /// No rules: every read and write by a non-admin is denied (Firebase's default).
    public static let denyAll = try! RuleSet.parse(#"{"rules": {}}"#)
    /// Everything allowed (the emulator's default without a rules file).
    public static let allowAll = try! RuleSet.parse(#"{"rules": {".read": true, ".write": true}}"#)

    /// Parses and compiles a rules document. Errors name the line and column.
    public static func parse(_ text: String) throws(RuleError) -> RuleSet {
        let document = try RulesJSONParser.parse(text)
        guard case .object(let members, let position) = document else {
            throw RuleError("A rules document is an object with one key, \"rules\".", at: document.position)
        }
        guard let rules = members.first(where: { $0.key == "rules" }) else {
            throw RuleError("A rules document needs a top-level \"rules\" object.", at: position)
        }
        if let extra = members.first(where: { $0.key != "rules" }) {
            throw RuleError("Unknown top-level key \"\(extra.key)\"; a rules document has only \"rules\".", at: extra.keyPosition)
        }
        let root = try RuleSetCompiler.compile(rules.value, path: [], wildcards: [])
        return RuleSet(source: text, root: root)
    }

    /// The document as strict JSON (comments removed, key order kept), for `format=strict`.
    public var strictJSON: String {
        guard let document = try? RulesJSONParser.parse(source) else { return source }
        return RuleSetCompiler.strictJSON(document)
    }
}

/// Turns a parsed rules document into a tree of compiled rules.
enum RuleSetCompiler {
    static func compile(_ value: RulesJSON, path: [String], wildcards: [String]) throws(RuleError) -> RuleNode {
        let location = path.isEmpty ? "/" : "/" + path.joined(separator: "/")
        guard case .object(let members, _) = value else {
            throw RuleError("The rules at \(location) must be an object, not \(value.typeName).", at: value.position)
        }
        var read: CompiledRule?
        var write: CompiledRule?
        var validate: CompiledRule?
        var indexOn: [String] = []
        var children: [ChildKey: RuleNode] = [:]
        var wildcardName: String?
        var wildcard: RuleNode?
        for member in members {
            let key = member.key
            if key.hasPrefix(".") {
                switch key {
                case ".read":
                    read = try rule(member.value, kind: .read, location: location, wildcards: wildcards)
                case ".write":
                    write = try rule(member.value, kind: .write, location: location, wildcards: wildcards)
                case ".validate":
                    validate = try rule(member.value, kind: .validate, location: location, wildcards: wildcards)
                case ".indexOn":
                    indexOn = try indexes(member.value, location: location)
                default:
                    throw RuleError("Invalid rule type \"\(key)\" at \(location); expected .read, .write, .validate or .indexOn.",
                        at: member.keyPosition)
                }
            } else if key.hasPrefix("$") {
                guard wildcardName == nil else {
                    throw RuleError("Two wildcards (\(wildcardName!) and \(key)) at \(location); a location has at most one.",
                        at: member.keyPosition)
                }
                guard key.count > 1, key.dropFirst().unicodeScalars.allSatisfy(RuleLexer.isIdentifierPart) else {
                    throw RuleError("Invalid wildcard name \"\(key)\" at \(location).", at: member.keyPosition)
                }
                guard !wildcards.contains(key) else {
                    throw RuleError("The wildcard \(key) is already used above \(location).", at: member.keyPosition)
                }
                wildcardName = key
                wildcard = try compile(member.value, path: path + [key], wildcards: wildcards + [key])
            } else {
                guard KeyValidator.isValid(key) else {
                    throw RuleError("Invalid key \"\(key)\" at \(location): keys can't contain . # $ [ ] / or control characters.",
                        at: member.keyPosition)
                }
                children[ChildKey(key)] = try compile(member.value, path: path + [key], wildcards: wildcards)
            }
        }
        return RuleNode(
            read: read, write: write, validate: validate, indexOn: indexOn, children: children,
            wildcardName: wildcardName, wildcard: wildcard)
    }

    static func rule(_ value: RulesJSON, kind: RuleExpression.Kind, location: String, wildcards: [String]) throws(RuleError) -> CompiledRule {
        switch value {
        case .bool(let constant, _):
            return .constant(constant)
        case .string(let source, let start, let columns):
            do {
                return .expression(try RuleExpression.compile(source, kind: kind, wildcards: wildcards))
            } catch {
                // Expression positions are scalar offsets within the string; place them in the document.
                let offset = (error.position?.column ?? 1) - 1
                let column = offset < columns.count ? columns[offset] : (columns.last.map { $0 + 1 } ?? start.column)
                throw RuleError("\(error.message) (in the \(kind.rawValue) rule at \(location): \"\(source)\")",
                    at: SourcePosition(line: start.line, column: column))
            }
        default:
            throw RuleError("\(kind.rawValue) at \(location) must be a boolean or a string expression, not \(value.typeName).",
                at: value.position)
        }
    }

    static func indexes(_ value: RulesJSON, location: String) throws(RuleError) -> [String] {
        switch value {
        case .string(let name, _, _):
            return [name]
        case .array(let elements, _):
            var names: [String] = []
            for element in elements {
                guard case .string(let name, _, _) = element else {
                    throw RuleError(".indexOn at \(location) must list strings, not \(element.typeName).", at: element.position)
                }
                names.append(name)
            }
            return names
        default:
            throw RuleError(".indexOn at \(location) must be a string or an array of strings.", at: value.position)
        }
    }

    /// A parsed document as strict JSON, in document order, indented by two spaces.
    static func strictJSON(_ value: RulesJSON, indent: String = "") -> String {
        switch value {
        case .null: return "null"
        case .bool(let value, _): return value ? "true" : "false"
        case .number(let value, _):
            if value == value.rounded(), abs(value) < 9e15 { return String(Int64(value)) }
            return "\(value)"
        case .string(let value, _, _): return quoted(value)
        case .array(let elements, _):
            guard !elements.isEmpty else { return "[]" }
            let inner = indent + "  "
            return "[\n" + elements.map { inner + strictJSON($0, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
        case .object(let members, _):
            guard !members.isEmpty else { return "{}" }
            let inner = indent + "  "
            return "{\n"
                + members.map { inner + quoted($0.key) + ": " + strictJSON($0.value, indent: inner) }.joined(separator: ",\n")
                + "\n" + indent + "}"
        }
    }

    static func quoted(_ string: String) -> String {
        var result = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}

/// One compiled rule expression (the string of a `.read`, `.write` or `.validate`).
///
/// Compiling parses the expression, resolves every variable and method, checks what Firebase
/// checks when rules are deployed (unknown variables, non-boolean rules, comparisons with a
/// snapshot, methods that do not exist, regex flags, ...) and compiles regular expressions, so
/// evaluating never parses anything.
///
/// ```swift
/// let rule = try RuleExpression.compile("auth != null && $uid === auth.uid", kind: .write, wildcards: ["$uid"])
/// rule.evaluate(RuleContext(auth: someAuth, wildcards: ["alice"]))  // true, false, or nil (runtime error)
/// ```
public struct RuleExpression: Sendable {
    /// Which rule an expression is; decides which variables it may use.
    public enum Kind: String, Sendable {
        case read = ".read"
        case write = ".write"
        case validate = ".validate"
    }

    /// The expression as written.
    public let source: String
    /// The deepest expression tree a rule may have.
    public static let maxDepth = 200
    let body: RuleNodeExpression

    /// Compiles `source`. `wildcards` are the `$names` in scope, outermost first. Error
    /// positions are relative to the expression (line 1, column = offset + 1).
    public static func compile(_ source: String, kind: Kind, wildcards: [String] = []) throws(RuleError) -> RuleExpression {
        var parser = try RuleExpressionParser(source: source, kind: kind, wildcards: wildcards)
        let (body, type) = try parser.parseExpression()
        try parser.expectEnd()
        // Chains (`a && b && ...`, `x.a.b...`) nest without recursion in the parser, but
        // evaluation recurses: bound the depth of the tree it will walk.
        guard body.depth <= RuleExpression.maxDepth else {
            throw RuleError("The rule is too long or nested too deeply (more than \(RuleExpression.maxDepth) levels).",
                at: SourcePosition(line: 1, column: 1))
        }
        guard type.canBeBoolean else {
            throw RuleError("The rule must evaluate to a boolean, but this is a \(type.name).", at: SourcePosition(line: 1, column: 1))
        }
        return RuleExpression(source: source, body: body)
    }

    /// Evaluates the rule: `true` or `false`, or nil when evaluation failed at run time (a
    /// method called on null, arithmetic on a string, `parent()` at the root, a non-boolean
    /// result...), which Firebase treats as a denial.
    public func evaluate(_ context: RuleContext) -> Bool? {
        guard case .bool(let value)? = try? context.evaluate(body) else { return nil }
        return value
    }

    /// Like ``evaluate(_:)``, but says why evaluation failed.
    public func evaluateExplained(_ context: RuleContext) -> Result<Bool, RuleFailure> {
        do {
            let value = try context.evaluate(body)
            guard case .bool(let result) = value else {
                return .failure(RuleFailure("the rule evaluated to a \(value.typeName), not a boolean"))
            }
            return .success(result)
        } catch {
            return .failure(error)
        }
    }
}

/// Why a rule failed while it was evaluated; the rule then counts as false.
public struct RuleFailure: Error, Sendable, Equatable {
    public let reason: String
    init(_ reason: String) { self.reason = reason }
}

/// The variables of the rules language.
enum RuleVariable: Sendable {
    case auth, root, data, newData, now, query
}

/// Methods of `RuleDataSnapshot`.
enum SnapshotMethod: String, CaseIterable, Sendable {
    case val, child, parent, hasChild, hasChildren, exists, getPriority, isNumber, isString, isBoolean
}

/// Methods of strings.
enum StringMethod: String, CaseIterable, Sendable {
    case contains, beginsWith, endsWith, replace, toLowerCase, toUpperCase, matches
}

/// Fields of the `query` variable.
enum QueryField: String, CaseIterable, Sendable {
    case orderByKey, orderByValue, orderByPriority, orderByChild, startAt, endAt, equalTo, limitToFirst, limitToLast
}

enum RuleBinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", remainder = "%"
    case equal = "==", notEqual = "!="
    case less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
}

/// The compiled form of an expression: every name resolved.
extension RuleNodeExpression {
    /// The depth of the tree (a literal is 1).
    var depth: Int {
        switch self {
        case .literal, .variable, .wildcard, .queryField: return 1
        case .property(let inner, _), .childLiteral(let inner, _), .hasChildLiteral(let inner, _),
            .hasChildrenLiteral(let inner, _), .matches(let inner, _), .not(let inner), .negate(let inner):
            return inner.depth + 1
        case .computedProperty(let a, let b), .binary(_, let a, let b), .and(let a, let b), .or(let a, let b):
            return max(a.depth, b.depth) + 1
        case .snapshotCall(let receiver, _, let arguments), .stringCall(let receiver, _, let arguments):
            return arguments.reduce(receiver.depth) { max($0, $1.depth) } + 1
        case .conditional(let a, let b, let c):
            return max(a.depth, b.depth, c.depth) + 1
        case .array(let elements):
            return elements.reduce(0) { max($0, $1.depth) } + 1
        }
    }
}

indirect enum RuleNodeExpression: Sendable {
    case literal(RuleValue)
    case variable(RuleVariable)
    /// A `$wildcard`, by its index in the enclosing scope.
    case wildcard(Int)
    /// `x.name` or `x['name']` on an object (`auth...`): the child, or null; `length` of a string.
    case property(RuleNodeExpression, String)
    /// `x[expr]` with a computed name, on an object.
    case computedProperty(RuleNodeExpression, RuleNodeExpression)
    case queryField(QueryField)
    case snapshotCall(RuleNodeExpression, SnapshotMethod, [RuleNodeExpression])
    /// `child('a/b')` with a constant path, split into keys when compiled.
    case childLiteral(RuleNodeExpression, [ChildKey])
    /// `hasChild('a/b')` with a constant path.
    case hasChildLiteral(RuleNodeExpression, [ChildKey])
    /// `hasChildren(['a', 'b/c'])` with constant names.
    case hasChildrenLiteral(RuleNodeExpression, [[ChildKey]])
    case stringCall(RuleNodeExpression, StringMethod, [RuleNodeExpression])
    /// `s.matches(/re/)`, its regex compiled.
    case matches(RuleNodeExpression, RuleRegex)
    case not(RuleNodeExpression)
    case negate(RuleNodeExpression)
    case binary(RuleBinaryOperator, RuleNodeExpression, RuleNodeExpression)
    case and(RuleNodeExpression, RuleNodeExpression)
    case or(RuleNodeExpression, RuleNodeExpression)
    case conditional(RuleNodeExpression, RuleNodeExpression, RuleNodeExpression)
    case array([RuleNodeExpression])
}

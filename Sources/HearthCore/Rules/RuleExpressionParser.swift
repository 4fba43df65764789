/// What the compiler knows about an expression's value before it runs.
enum RuleStaticType: Equatable {
    case boolean, number, string, null
    case snapshot
    case query
    /// What `val()` or `getPriority()` returns: a primitive (or an opaque object).
    case primitive
    /// Anything (`auth` and what is read from it).
    case any
    case array
    case regex

    var name: String {
        switch self {
        case .boolean: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .null: return "null"
        case .snapshot: return "snapshot"
        case .query: return "query"
        case .primitive: return "value"
        case .any: return "value"
        case .array: return "array"
        case .regex: return "regular expression"
        }
    }

    var canBeBoolean: Bool { self == .boolean || self == .any || self == .primitive }
    var canBeString: Bool { self == .string || self == .any || self == .primitive }
}

/// A Pratt parser for rule expressions (JavaScript's expression syntax, restricted as
/// Firebase restricts it), which resolves names and checks types as it goes.
struct RuleExpressionParser {
    let tokens: [RuleToken]
    let kind: RuleExpression.Kind
    let wildcards: [String]
    var index = 0
    var depth = 0

    init(source: String, kind: RuleExpression.Kind, wildcards: [String]) throws(RuleError) {
        tokens = try RuleLexer.tokenize(source)
        self.kind = kind
        self.wildcards = wildcards
    }

    typealias Typed = (RuleNodeExpression, RuleStaticType)

    var current: RuleToken { tokens[index] }

    func error(_ message: String, at token: RuleToken? = nil) -> RuleError {
        RuleError(message, at: SourcePosition(line: 1, column: (token ?? current).offset + 1))
    }

    func isSymbol(_ symbol: String) -> Bool { current.kind == .symbol(symbol) }

    mutating func take(_ symbol: String) -> Bool {
        guard isSymbol(symbol) else { return false }
        index += 1
        return true
    }

    mutating func expect(_ symbol: String) throws(RuleError) {
        guard take(symbol) else { throw error("Expected '\(symbol)' \(describeCurrent()).") }
    }

    mutating func expectEnd() throws(RuleError) {
        guard current.kind == .end else { throw error("Unexpected \(describeCurrent(bare: true)); expected the end of the rule.") }
    }

    func describeCurrent(bare: Bool = false) -> String {
        let text: String
        switch current.kind {
        case .end: text = "the end of the rule"
        case .identifier(let name): text = "'\(name)'"
        case .number(let number): text = "number \(number)"
        case .string(let string): text = "string '\(string)'"
        case .regex(let pattern, let flags): text = "/\(pattern)/\(flags)"
        case .symbol(let symbol): text = "'\(symbol)'"
        }
        return bare ? text : "but found \(text)"
    }

    /// `typed`, if its tree is no deeper than a rule may be. Every node the parser builds
    /// passes here, so no tree (nor the work of measuring it) ever gets deep.
    func bounded(_ typed: Typed) throws(RuleError) -> Typed {
        guard typed.0.depth <= RuleExpression.maxDepth else {
            throw error("The rule is too long or nested too deeply (more than \(RuleExpression.maxDepth) levels).")
        }
        return typed
    }

    // MARK: Precedence climbing, lowest first

    mutating func parseExpression() throws(RuleError) -> Typed {
        depth += 1
        defer { depth -= 1 }
        guard depth < 100 else { throw error("The rule is nested too deeply.") }
        return try parseConditional()
    }

    mutating func parseConditional() throws(RuleError) -> Typed {
        let condition = try parseOr()
        guard take("?") else { return condition }
        let questionMark = tokens[index - 1]
        let whenTrue = try parseExpression()
        try expect(":")
        let whenFalse = try parseExpression()
        try requireBooleanOperand(condition.1, "the condition of ?:", at: questionMark)
        guard whenTrue.1.canBeBoolean, whenFalse.1.canBeBoolean else {
            throw error("Both branches of ?: must be booleans.", at: questionMark)
        }
        return try bounded((.conditional(condition.0, whenTrue.0, whenFalse.0), .boolean))
    }

    mutating func parseOr() throws(RuleError) -> Typed {
        var left = try parseAnd()
        while isSymbol("||") {
            let token = current
            index += 1
            let right = try parseAnd()
            try requireBooleanOperand(left.1, "'||'", at: token)
            try requireBooleanOperand(right.1, "'||'", at: token)
            left = try bounded((.or(left.0, right.0), .boolean))
        }
        return left
    }

    mutating func parseAnd() throws(RuleError) -> Typed {
        var left = try parseEquality()
        while isSymbol("&&") {
            let token = current
            index += 1
            let right = try parseEquality()
            try requireBooleanOperand(left.1, "'&&'", at: token)
            try requireBooleanOperand(right.1, "'&&'", at: token)
            left = try bounded((.and(left.0, right.0), .boolean))
        }
        return left
    }

    func requireBooleanOperand(_ type: RuleStaticType, _ what: String, at token: RuleToken) throws(RuleError) {
        guard type.canBeBoolean else { throw error("The operands of \(what) must be booleans, not a \(type.name).", at: token) }
    }

    mutating func parseEquality() throws(RuleError) -> Typed {
        var left = try parseRelational()
        while case .symbol(let symbol) = current.kind, ["==", "===", "!=", "!=="].contains(symbol) {
            let token = current
            index += 1
            let right = try parseRelational()
            for type in [left.1, right.1] where type == .snapshot || type == .regex || type == .query {
                throw error("A \(type.name) cannot be compared with \(symbol); call val() or exists() first.", at: token)
            }
            let op: RuleBinaryOperator = symbol.hasPrefix("=") ? .equal : .notEqual
            left = try bounded((.binary(op, left.0, right.0), .boolean))
        }
        return left
    }

    mutating func parseRelational() throws(RuleError) -> Typed {
        var left = try parseAdditive()
        while case .symbol(let symbol) = current.kind, let op = RuleBinaryOperator(rawValue: symbol),
            [.less, .lessOrEqual, .greater, .greaterOrEqual].contains(op)
        {
            let token = current
            index += 1
            let right = try parseAdditive()
            for type in [left.1, right.1] where ![.number, .string, .any, .primitive].contains(type) {
                throw error("'\(symbol)' compares numbers or strings, not a \(type.name).", at: token)
            }
            left = try bounded((.binary(op, left.0, right.0), .boolean))
        }
        return left
    }

    mutating func parseAdditive() throws(RuleError) -> Typed {
        var left = try parseMultiplicative()
        while isSymbol("+") || isSymbol("-") {
            let token = current
            let op: RuleBinaryOperator = isSymbol("+") ? .add : .subtract
            index += 1
            let right = try parseMultiplicative()
            try requireArithmeticOperands(left.1, right.1, op, at: token)
            var type = RuleStaticType.number
            if op == .add {
                if left.1 == .string || right.1 == .string {
                    type = .string
                } else if left.1 != .number || right.1 != .number {
                    type = .primitive
                }
            }
            left = try bounded((.binary(op, left.0, right.0), type))
        }
        return left
    }

    mutating func parseMultiplicative() throws(RuleError) -> Typed {
        var left = try parseUnary()
        while case .symbol(let symbol) = current.kind, ["*", "/", "%"].contains(symbol) {
            let token = current
            index += 1
            let op = RuleBinaryOperator(rawValue: symbol)!
            let right = try parseUnary()
            try requireArithmeticOperands(left.1, right.1, op, at: token)
            left = try bounded((.binary(op, left.0, right.0), .number))
        }
        return left
    }

    func requireArithmeticOperands(_ left: RuleStaticType, _ right: RuleStaticType, _ op: RuleBinaryOperator, at token: RuleToken) throws(RuleError) {
        for type in [left, right] where [.snapshot, .query, .regex, .array, .boolean].contains(type) {
            throw error("'\(op.rawValue)' cannot be applied to a \(type.name).", at: token)
        }
    }

    mutating func parseUnary() throws(RuleError) -> Typed {
        depth += 1
        defer { depth -= 1 }
        guard depth < 100 else { throw error("The rule is nested too deeply.") }
        if isSymbol("!") {
            let token = current
            index += 1
            let operand = try parseUnary()
            try requireBooleanOperand(operand.1, "'!'", at: token)
            return try bounded((.not(operand.0), .boolean))
        }
        if isSymbol("-") {
            let token = current
            index += 1
            let operand = try parseUnary()
            guard [.number, .any, .primitive, .string].contains(operand.1) else {
                throw error("'-' cannot be applied to a \(operand.1.name).", at: token)
            }
            if case .literal(.number(let number)) = operand.0 { return (.literal(.number(-number)), .number) }
            return try bounded((.negate(operand.0), .number))
        }
        return try parsePostfix()
    }

    // MARK: Members and calls

    mutating func parsePostfix() throws(RuleError) -> Typed {
        var value = try parsePrimary()
        while true {
            if isSymbol(".") {
                index += 1
                guard case .identifier(let name) = current.kind else { throw error("Expected a name after '.'.") }
                let token = current
                index += 1
                value = try bounded(try member(of: value, named: name, at: token))
            } else if isSymbol("[") {
                let token = current
                index += 1
                let key = try parseExpression()
                try expect("]")
                if case .literal(.string(let name)) = key.0 {
                    value = try bounded(try member(of: value, named: name, at: token))
                } else {
                    guard value.1 == .any, !isSymbol("(") else {
                        throw error("Only a constant string can name a member of a \(value.1.name).", at: token)
                    }
                    guard key.1.canBeString || key.1 == .number else {
                        throw error("A \(key.1.name) cannot name a member.", at: token)
                    }
                    value = try bounded((.computedProperty(value.0, key.0), .any))
                }
            } else if isSymbol("(") {
                throw error("Only methods can be called.")
            } else {
                return value
            }
        }
    }

    /// `receiver.name`, or `receiver.name(args)` when a call follows.
    mutating func member(of receiver: Typed, named name: String, at token: RuleToken) throws(RuleError) -> Typed {
        let called = isSymbol("(")
        switch receiver.1 {
        case .snapshot:
            guard let method = SnapshotMethod(rawValue: name) else {
                throw error("'\(name)' is not a method of a snapshot; use child('\(name)') to read a child.", at: token)
            }
            guard called else { throw error("\(name) is a method; call it: \(name)().", at: token) }
            return try snapshotCall(receiver.0, method, at: token)
        case .query:
            guard let field = QueryField(rawValue: name), !called else {
                throw error("'query.\(name)' is not a query parameter.", at: token)
            }
            let type: RuleStaticType = [.orderByKey, .orderByValue, .orderByPriority].contains(field) ? .boolean : .any
            return (.queryField(field), type)
        case .string, .primitive, .any:
            if called {
                guard let method = StringMethod(rawValue: name) else {
                    throw error("'\(name)' is not a method of a string.", at: token)
                }
                return try stringCall(receiver.0, method, at: token)
            }
            if receiver.1 == .any { return (.property(receiver.0, name), name == "length" ? .any : .any) }
            guard name == "length" else {
                throw error(
                    receiver.1 == .primitive
                        ? "val() returns a primitive value with no member '\(name)'; use child('\(name)').val()."
                        : "A string has no member '\(name)'.", at: token)
            }
            return (.property(receiver.0, name), .number)
        default:
            throw error("A \(receiver.1.name) has no member '\(name)'.", at: token)
        }
    }

    mutating func arguments() throws(RuleError) -> [Typed] {
        try expect("(")
        var arguments: [Typed] = []
        if take(")") { return arguments }
        repeat {
            arguments.append(try parseExpression())
        } while take(",")
        try expect(")")
        return arguments
    }

    mutating func snapshotCall(_ receiver: RuleNodeExpression, _ method: SnapshotMethod, at token: RuleToken) throws(RuleError) -> Typed {
        let arguments = try arguments()
        func count(_ expected: Int) throws(RuleError) {
            guard arguments.count == expected else {
                throw error("\(method.rawValue)() takes \(expected) argument\(expected == 1 ? "" : "s"), not \(arguments.count).", at: token)
            }
        }
        let result: RuleStaticType
        switch method {
        case .val, .getPriority:
            try count(0)
            result = .primitive
        case .parent:
            try count(0)
            result = .snapshot
        case .exists, .isNumber, .isString, .isBoolean:
            try count(0)
            result = .boolean
        case .child, .hasChild:
            try count(1)
            guard arguments[0].1.canBeString else {
                throw error("\(method.rawValue)() takes a path string, not a \(arguments[0].1.name).", at: token)
            }
            result = method == .child ? .snapshot : .boolean
        case .hasChildren:
            guard arguments.count <= 1 else {
                throw error("hasChildren() takes one array of child names, e.g. hasChildren(['a', 'b']).", at: token)
            }
            if let list = arguments.first {
                guard case .array(let elements) = list.0, !elements.isEmpty else {
                    throw error("hasChildren() takes a non-empty array literal of child names.", at: token)
                }
                _ = elements
            }
            result = .boolean
        }
        // Constant paths are split into keys once, here.
        switch (method, arguments.first?.0) {
        case (.child, .literal(.string(let path))?):
            return (.childLiteral(receiver, RuleExpressionParser.childKeys(path)), result)
        case (.hasChild, .literal(.string(let path))?):
            return (.hasChildLiteral(receiver, RuleExpressionParser.childKeys(path)), result)
        case (.hasChildren, .array(let elements)?):
            var lists: [[ChildKey]] = []
            for element in elements {
                guard case .literal(.string(let path)) = element else { break }
                lists.append(RuleExpressionParser.childKeys(path))
            }
            if lists.count == elements.count { return (.hasChildrenLiteral(receiver, lists), result) }
        default:
            break
        }
        return (.snapshotCall(receiver, method, arguments.map(\.0)), result)
    }

    /// A relative path's keys (`'a//b/'` → a, b).
    static func childKeys(_ path: String) -> [ChildKey] {
        path.split(separator: "/", omittingEmptySubsequences: true).map { ChildKey(String($0)) }
    }

    mutating func stringCall(_ receiver: RuleNodeExpression, _ method: StringMethod, at token: RuleToken) throws(RuleError) -> Typed {
        if method == .matches {
            try expect("(")
            guard case .regex(let pattern, let flags) = current.kind else {
                throw error("matches() takes a regular expression literal such as /^[a-z]+$/.", at: token)
            }
            let regexToken = current
            index += 1
            try expect(")")
            do {
                return (.matches(receiver, try RuleRegex(pattern: pattern, flags: flags)), .boolean)
            } catch {
                throw self.error(error.message, at: regexToken)
            }
        }
        let arguments = try arguments()
        let expected: Int
        switch method {
        case .contains, .beginsWith, .endsWith: expected = 1
        case .replace: expected = 2
        case .toLowerCase, .toUpperCase: expected = 0
        case .matches: expected = 1
        }
        guard arguments.count == expected else {
            throw error("\(method.rawValue)() takes \(expected) argument\(expected == 1 ? "" : "s"), not \(arguments.count).", at: token)
        }
        for argument in arguments where !argument.1.canBeString {
            throw error("\(method.rawValue)() takes string arguments, not a \(argument.1.name).", at: token)
        }
        let result: RuleStaticType = [.replace, .toLowerCase, .toUpperCase].contains(method) ? .string : .boolean
        return (.stringCall(receiver, method, arguments.map(\.0)), result)
    }

    // MARK: Primaries

    mutating func parsePrimary() throws(RuleError) -> Typed {
        let token = current
        switch token.kind {
        case .number(let number):
            index += 1
            return (.literal(.number(number)), .number)
        case .string(let string):
            index += 1
            return (.literal(.string(string)), .string)
        case .regex:
            throw error("A regular expression can only be the argument of matches().")
        case .identifier(let name):
            index += 1
            return try identifier(name, at: token)
        case .symbol("("):
            index += 1
            let inner = try parseExpression()
            try expect(")")
            return inner
        case .symbol("["):
            index += 1
            var elements: [RuleNodeExpression] = []
            if !take("]") {
                repeat {
                    let element = try parseExpression()
                    guard element.1.canBeString else {
                        throw error("An array in a rule holds child names (strings), not a \(element.1.name).", at: token)
                    }
                    elements.append(element.0)
                } while take(",")
                try expect("]")
            }
            return (.array(elements), .array)
        case .end:
            throw error("The rule ends where a value was expected.")
        case .symbol(let symbol):
            throw error("Unexpected '\(symbol)'.")
        }
    }

    func identifier(_ name: String, at token: RuleToken) throws(RuleError) -> Typed {
        switch name {
        case "true": return (.literal(.bool(true)), .boolean)
        case "false": return (.literal(.bool(false)), .boolean)
        case "null": return (.literal(.null), .null)
        case "auth": return (.variable(.auth), .any)
        case "root": return (.variable(.root), .snapshot)
        case "data": return (.variable(.data), .snapshot)
        case "now": return (.variable(.now), .number)
        case "newData":
            guard kind != .read else { throw error("newData is not available in .read rules.", at: token) }
            return (.variable(.newData), .snapshot)
        case "query":
            guard kind == .read else { throw error("query is only available in .read rules.", at: token) }
            return (.variable(.query), .query)
        case "var", "let", "const", "function", "new", "this", "typeof", "delete", "in", "instanceof", "void":
            throw error("'\(name)' is not allowed in rules; a rule is a single expression.", at: token)
        default:
            if name.hasPrefix("$") {
                guard let position = wildcards.lastIndex(of: name) else {
                    throw error("Unknown variable '\(name)': no \(name) wildcard encloses this rule.", at: token)
                }
                return (.wildcard(position), .string)
            }
            throw error("Unknown variable '\(name)'.", at: token)
        }
    }
}

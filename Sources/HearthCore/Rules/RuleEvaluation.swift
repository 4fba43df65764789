/// Evaluates compiled expressions against one self. Any runtime error throws a
/// ``RuleFailure``; the rule then counts as false. (An extension of the context, so the
/// context is borrowed, never copied, while a rule runs.)
extension RuleContext {
    func fail(_ reason: String) -> RuleFailure { RuleFailure(reason) }

    func evaluate(_ expression: RuleNodeExpression) throws(RuleFailure) -> RuleValue {
        switch expression {
        case .literal(let value):
            return value
        case .variable(let variable):
            switch variable {
            case .auth: return RuleValue(self.auth)
            case .root: return .snapshot(RuleSnapshot(root: self.root, node: self.root, base: .root, depth: 0))
            case .data:
                return .snapshot(RuleSnapshot(root: self.root, node: self.data, base: locationPath, depth: locationDepth))
            case .newData:
                return .snapshot(RuleSnapshot(root: self.newRoot, node: self.newData, base: locationPath, depth: locationDepth))
            case .now: return .number(Double(self.now))
            case .query: throw fail("query can only be used through its fields")
            }
        case .wildcard(let index):
            guard index < self.wildcards.count else { throw fail("wildcard out of scope") }
            return .string(self.wildcards[index])
        case .property(let receiver, let name):
            return try property(of: try evaluate(receiver), name)
        case .computedProperty(let receiver, let key):
            let object = try evaluate(receiver)
            switch try evaluate(key) {
            case .string(let name): return try property(of: object, name)
            case .number(let number): return try property(of: object, RuleValue.javaScriptString(number))
            case let other: throw fail("a \(other.typeName) cannot name a member")
            }
        case .queryField(let field):
            return queryField(field)
        case .childLiteral(let receiver, let keys):
            return .snapshot(try snapshot(receiver, "child").descendant(keys))
        case .hasChildLiteral(let receiver, let keys):
            var node = try snapshot(receiver, "hasChild").node
            for key in keys { node = node.child(key) }
            return .bool(!node.isNull)
        case .hasChildrenLiteral(let receiver, let lists):
            let start = try snapshot(receiver, "hasChildren").node
            for keys in lists {
                var node = start
                for key in keys { node = node.child(key) }
                if node.isNull { return .bool(false) }
            }
            return .bool(true)
        case .snapshotCall(let receiver, let method, let arguments):
            guard case .snapshot(let snapshot) = try evaluate(receiver) else { throw fail("\(method.rawValue)() needs a snapshot") }
            return try call(method, on: snapshot, arguments)
        case .stringCall(let receiver, let method, let arguments):
            let value = try evaluate(receiver)
            guard case .string(let string) = value else {
                throw fail("\(method.rawValue)() was called on a \(value.typeName), not a string")
            }
            return try call(method, on: string, arguments)
        case .matches(let receiver, let regex):
            let value = try evaluate(receiver)
            guard case .string(let string) = value else { throw fail("matches() was called on a \(value.typeName), not a string") }
            guard let matched = regex.matches(string, budget: budget) else {
                throw fail("the regular expression /\(regex.pattern)/ took too long")
            }
            return .bool(matched)
        case .not(let operand):
            return .bool(!(try boolean(operand, "!")))
        case .negate(let operand):
            guard case .number(let number) = try evaluate(operand) else { throw fail("'-' needs a number") }
            return .number(-number)
        case .and(let left, let right):
            guard try boolean(left, "&&") else { return .bool(false) }
            return .bool(try boolean(right, "&&"))
        case .or(let left, let right):
            if try boolean(left, "||") { return .bool(true) }
            return .bool(try boolean(right, "||"))
        case .conditional(let condition, let whenTrue, let whenFalse):
            return try evaluate(try boolean(condition, "?:") ? whenTrue : whenFalse)
        case .binary(let op, let left, let right):
            return try binary(op, try evaluate(left), try evaluate(right))
        case .array(let elements):
            var values: [RuleValue] = []
            values.reserveCapacity(elements.count)
            for element in elements { values.append(try evaluate(element)) }
            return .array(values)
        }
    }

    func snapshot(_ expression: RuleNodeExpression, _ method: String) throws(RuleFailure) -> RuleSnapshot {
        guard case .snapshot(let snapshot) = try evaluate(expression) else { throw fail("\(method)() needs a snapshot") }
        return snapshot
    }

    func boolean(_ expression: RuleNodeExpression, _ what: String) throws(RuleFailure) -> Bool {
        let value = try evaluate(expression)
        guard case .bool(let result) = value else { throw fail("'\(what)' needs booleans, not a \(value.typeName)") }
        return result
    }

    /// `x.name`: a child of an object; null on null (as Firebase does for `auth.foo` when
    /// anonymous); the length of a string.
    func property(of value: RuleValue, _ name: String) throws(RuleFailure) -> RuleValue {
        switch value {
        case .object(let node):
            return RuleValue(node.child(ChildKey(name)))
        case .null:
            if name == "length" { throw fail("length of null") }
            return .null
        case .string(let string):
            guard name == "length" else { throw fail("a string has no member '\(name)'") }
            return .number(Double(string.utf16.count))
        default:
            throw fail("a \(value.typeName) has no member '\(name)'")
        }
    }

    func queryField(_ field: QueryField) -> RuleValue {
        let query = self.query
        switch field {
        case .orderByKey: return .bool(query.orderByKey)
        case .orderByValue: return .bool(query.orderByValue)
        case .orderByPriority: return .bool(query.orderByPriority)
        case .orderByChild: return query.orderByChild.map(RuleValue.string) ?? .null
        case .startAt: return RuleValue(query.startAt)
        case .endAt: return RuleValue(query.endAt)
        case .equalTo: return RuleValue(query.equalTo)
        case .limitToFirst: return query.limitToFirst.map { .number(Double($0)) } ?? .null
        case .limitToLast: return query.limitToLast.map { .number(Double($0)) } ?? .null
        }
    }

    // MARK: Snapshots

    func call(_ method: SnapshotMethod, on snapshot: RuleSnapshot, _ arguments: [RuleNodeExpression]) throws(RuleFailure) -> RuleValue {
        switch method {
        case .val:
            if case .object = snapshot.node.withoutPriority { return .opaque }
            return RuleValue(snapshot.node)
        case .exists:
            return .bool(!snapshot.node.isNull)
        case .getPriority:
            return snapshot.node.priority.map { RuleValue($0.node) } ?? .null
        case .isNumber:
            switch snapshot.node.withoutPriority {
            case .int, .double: return .bool(true)
            default: return .bool(false)
            }
        case .isString:
            if case .string = snapshot.node.withoutPriority { return .bool(true) }
            return .bool(false)
        case .isBoolean:
            if case .bool = snapshot.node.withoutPriority { return .bool(true) }
            return .bool(false)
        case .parent:
            guard !snapshot.isRoot else { throw fail("parent() of the root") }
            let path = snapshot.path.parent
            return .snapshot(RuleSnapshot(root: snapshot.root, node: snapshot.root.at(path), base: path, depth: path.depth))
        case .child:
            return .snapshot(try child(of: snapshot, arguments[0]))
        case .hasChild:
            return .bool(!(try child(of: snapshot, arguments[0])).node.isNull)
        case .hasChildren:
            guard let list = arguments.first else {
                if case .object = snapshot.node.withoutPriority { return .bool(true) }
                return .bool(false)
            }
            guard case .array(let names) = try evaluate(list), !names.isEmpty else { throw fail("hasChildren() needs a non-empty array") }
            for name in names {
                guard case .string(let path) = name else { throw fail("hasChildren() needs child names, not a \(name.typeName)") }
                if try relative(snapshot, path).node.isNull { return .bool(false) }
            }
            return .bool(true)
        }
    }

    func child(of snapshot: RuleSnapshot, _ argument: RuleNodeExpression) throws(RuleFailure) -> RuleSnapshot {
        let value = try evaluate(argument)
        guard case .string(let path) = value else { throw fail("child() needs a path string, not a \(value.typeName)") }
        return try relative(snapshot, path)
    }

    /// The snapshot at a relative path (`'a'`, `'a/b'`); empty segments are ignored. A name
    /// that no data key can have (`'bob@example.com'`) just finds nothing, as in Firebase.
    func relative(_ snapshot: RuleSnapshot, _ path: String) throws(RuleFailure) -> RuleSnapshot {
        snapshot.descendant(RuleExpressionParser.childKeys(path))
    }

    // MARK: Strings

    func call(_ method: StringMethod, on string: String, _ arguments: [RuleNodeExpression]) throws(RuleFailure) -> RuleValue {
        var strings: [String] = []
        for argument in arguments {
            let value = try evaluate(argument)
            guard case .string(let text) = value else {
                throw fail("\(method.rawValue)() needs string arguments, not a \(value.typeName)")
            }
            strings.append(text)
        }
        // Like JavaScript, these compare UTF-16 code units, not Swift's Characters.
        switch method {
        case .contains: return .bool(RuleValue.firstRange(of: Array(strings[0].utf16), in: Array(string.utf16)) != nil)
        case .beginsWith: return .bool(string.utf16.starts(with: strings[0].utf16))
        case .endsWith: return .bool(string.utf16.reversed().starts(with: strings[0].utf16.reversed()))
        case .replace:
            return .string(RuleValue.replacingAll(Array(strings[0].utf16), with: strings[1], in: string))
        case .toLowerCase: return .string(string.lowercased())
        case .toUpperCase: return .string(string.uppercased())
        case .matches: throw fail("matches() needs a regular expression")
        }
    }

    // MARK: Operators

    func binary(_ op: RuleBinaryOperator, _ left: RuleValue, _ right: RuleValue) throws(RuleFailure) -> RuleValue {
        switch op {
        case .equal: return .bool(RuleValue.strictlyEqual(left, right))
        case .notEqual: return .bool(!RuleValue.strictlyEqual(left, right))
        case .add:
            switch (left, right) {
            case (.number(let a), .number(let b)): return .number(a + b)
            case (.string(let a), .string(let b)): return .string(a + b)
            case (.string(let a), .number(let b)): return .string(a + RuleValue.javaScriptString(b))
            case (.number(let a), .string(let b)): return .string(RuleValue.javaScriptString(a) + b)
            default: throw fail("'+' cannot add a \(left.typeName) and a \(right.typeName)")
            }
        case .subtract, .multiply, .divide, .remainder:
            guard case .number(let a) = left, case .number(let b) = right else {
                throw fail("'\(op.rawValue)' needs numbers, not a \(left.typeName) and a \(right.typeName)")
            }
            switch op {
            case .subtract: return .number(a - b)
            case .multiply: return .number(a * b)
            // Firebase treats division by zero as NaN (JavaScript would give Infinity).
            case .divide: return .number(b == 0 ? .nan : a / b)
            default: return .number(b == 0 ? .nan : a.truncatingRemainder(dividingBy: b))
            }
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            let order: Int
            switch (left, right) {
            case (.number(let a), .number(let b)):
                guard !a.isNaN, !b.isNaN else { return .bool(false) }
                order = a < b ? -1 : (a > b ? 1 : 0)
            case (.string(let a), .string(let b)):
                order = UTF16Order.compare(a, b)
            default:
                throw fail("'\(op.rawValue)' compares two numbers or two strings, not a \(left.typeName) and a \(right.typeName)")
            }
            switch op {
            case .less: return .bool(order < 0)
            case .lessOrEqual: return .bool(order <= 0)
            case .greater: return .bool(order > 0)
            default: return .bool(order >= 0)
            }
        }
    }
}

extension RuleValue {
    /// Where `needle` first occurs in `haystack` (UTF-16 units); an empty needle is at 0.
    static func firstRange(of needle: [UInt16], in haystack: [UInt16], from start: Int = 0) -> Range<Int>? {
        guard !needle.isEmpty else { return start..<start }
        guard needle.count <= haystack.count - start else { return nil }
        var index = start
        while index + needle.count <= haystack.count {
            if haystack[index] == needle[0], haystack[index..<(index + needle.count)].elementsEqual(needle) {
                return index..<(index + needle.count)
            }
            index += 1
        }
        return nil
    }

    /// Every occurrence of `needle` replaced (an empty needle changes nothing).
    static func replacingAll(_ needle: [UInt16], with replacement: String, in string: String) -> String {
        guard !needle.isEmpty else { return string }
        let units = Array(string.utf16)
        var result: [UInt16] = []
        result.reserveCapacity(units.count)
        var index = 0
        while let found = firstRange(of: needle, in: units, from: index) {
            result += units[index..<found.lowerBound]
            result += replacement.utf16
            index = found.upperBound
        }
        result += units[index...]
        return String(decoding: result, as: UTF16.self)
    }

    /// `===` without type coercion. Objects, snapshots and arrays are never equal to anything.
    static func strictlyEqual(_ left: RuleValue, _ right: RuleValue) -> Bool {
        switch (left, right) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.string(let a), .string(let b)): return a.utf8.elementsEqual(b.utf8)
        default: return false
        }
    }

    /// A number as JavaScript's `String(n)` writes it: `1`, `0.5`, `1e-7`, `100000000000000000000`,
    /// `1e+21`, `NaN` (ECMAScript's Number::toString, from Swift's shortest round-trip digits).
    static func javaScriptString(_ number: Double) -> String {
        if number.isNaN { return "NaN" }
        if number.isInfinite { return number < 0 ? "-Infinity" : "Infinity" }
        if number == 0 { return "0" }
        let sign = number < 0 ? "-" : ""
        // Swift writes the shortest digits that round-trip, as "123.45", "1e-05" or "1.5e+20".
        let text = "\(abs(number))"
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            mantissa = text[..<e]
        }
        let pieces = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        var digits = Array(pieces[0].utf8)
        var point = digits.count + exponent  // the decimal point follows this many digits
        if pieces.count > 1 { digits += pieces[1].utf8 }
        while digits.count > 1, digits.first == UInt8(ascii: "0") {
            digits.removeFirst()
            point -= 1
        }
        while digits.count > 1, digits.last == UInt8(ascii: "0") { digits.removeLast() }
        let k = digits.count
        let body = String(decoding: digits, as: UTF8.self)
        if k <= point && point <= 21 {
            return sign + body + String(repeating: "0", count: point - k)
        }
        if 0 < point && point <= 21 {
            let split = body.index(body.startIndex, offsetBy: point)
            return sign + body[..<split] + "." + body[split...]
        }
        if -6 < point && point <= 0 {
            return sign + "0." + String(repeating: "0", count: -point) + body
        }
        let e = point - 1
        let exponentText = (e < 0 ? "e-" : "e+") + String(abs(e))
        guard k > 1 else { return sign + body + exponentText }
        return sign + body.prefix(1) + "." + body.dropFirst() + exponentText
    }
}

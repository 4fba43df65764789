/// A regular expression in the subset Firebase's rules accept, compiled once when the rules
/// are loaded, and matched like JavaScript's `RegExp.test`: anywhere in the string unless
/// anchored. `^` may only open the pattern and `$` only close it (in JavaScript's reading,
/// `^a|b$` is `(^a)|(b$)`).
///
/// Supported: literals and escapes, `.`, `\d \w \s \D \W \S`, `[...]` and `[^...]` with ranges
/// and class escapes, groups `(...)`, alternation `|` (no empty alternatives), quantifiers
/// `* + ? {n} {n,} {n,m}` (greedy). The only flag is `i`. Matching backtracks with a step budget
/// and a depth limit, so a pathological pattern or subject fails the rule instead of stalling
/// or crashing the server; a repeated single character (`[a-z]+`) loops instead of recursing,
/// so long subjects are fine.
public struct RuleRegex: Sendable {
    indirect enum Element: Sendable {
        case scalar(Unicode.Scalar)
        case any
        case set(ScalarClass)
        case group([[Element]])
        case repeated(Element, min: Int, max: Int?)
        /// `^` at the start of the pattern.
        case start
        /// `$` at the end of the pattern.
        case end

        /// True for elements that match exactly one scalar.
        var isSingleScalar: Bool {
            switch self {
            case .scalar, .any, .set: return true
            default: return false
            }
        }
    }

    /// A character class: a union of ranges and (possibly negated) class escapes, possibly
    /// negated as a whole.
    struct ScalarClass: Sendable {
        struct Part: Sendable {
            var ranges: [ClosedRange<UInt32>]
            var negated: Bool
        }

        var parts: [Part] = []
        var negated = false

        init(parts: [Part] = [], negated: Bool = false) {
            self.parts = parts
            self.negated = negated
        }

        func contains(_ scalar: Unicode.Scalar, ignoringCase: Bool) -> Bool {
            var found = parts.contains { $0.contains(scalar.value) }
            if !found, ignoringCase {
                let lower = RuleRegex.fold(scalar).value, upper = RuleRegex.upper(scalar).value
                found = parts.contains { $0.contains(lower) || $0.contains(upper) }
            }
            return found != negated
        }
    }

    let alternatives: [[Element]]
    let ignoreCase: Bool
    /// Only a match from the first scalar can succeed (`^...` with no top-level `|`).
    let anchoredAtStart: Bool
    /// The pattern as written, for messages.
    public let pattern: String

    /// Most backtracking steps one match may take before the rule fails.
    static let stepBudget = 1_000_000
    /// Deepest recursion one match may use (groups repeated many times) before the rule fails.
    static let depthLimit = 1_000

    /// Compiles `/pattern/flags`; throws for anything outside Firebase's subset.
    public init(pattern: String, flags: String) throws(RuleError) {
        guard flags.isEmpty || flags == "i" else {
            throw RuleError("Invalid regular expression flags '\(flags)': only 'i' is supported.")
        }
        self.pattern = pattern
        ignoreCase = flags == "i"
        let scalars = Array(pattern.unicodeScalars)
        var parser = RegexParser(scalars: scalars, pattern: pattern)
        alternatives = try parser.parseAlternatives(depth: 0)
        guard parser.index == scalars.count else {
            throw RuleError("Invalid regular expression /\(pattern)/: unbalanced ')'.")
        }
        if alternatives.count == 1, case .start? = alternatives[0].first {
            anchoredAtStart = true
        } else {
            anchoredAtStart = false
        }
    }

    /// True if the pattern matches somewhere in `string`. Nil when the match ran out of its
    /// step budget or depth limit.
    public func matches(_ string: String) -> Bool? {
        matches(string, budget: RuleBudget(steps: RuleRegex.stepBudget))
    }

    /// Like ``matches(_:)``, spending the steps from `budget` (shared by a request's rules).
    public func matches(_ string: String, budget: RuleBudget) -> Bool? {
        let scalars = Array(string.unicodeScalars)
        var matcher = Matcher(regex: self, scalars: scalars, limit: min(RuleRegex.stepBudget, budget.remaining))
        defer { budget.remaining -= min(matcher.steps, budget.remaining) }
        let lastStart = anchoredAtStart ? 0 : scalars.count
        for start in 0...lastStart {
            let found = matcher.matchAlternatives(alternatives, at: start) { _, _ in true }
            if matcher.exhausted { return nil }
            if found { return true }
        }
        return false
    }

    static func fold(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        if ("A"..."Z").contains(scalar) { return Unicode.Scalar(scalar.value + 32)! }
        if scalar.isASCII { return scalar }
        let mapped = scalar.properties.lowercaseMapping.unicodeScalars
        return mapped.count == 1 ? mapped.first! : scalar
    }

    static func upper(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        if ("a"..."z").contains(scalar) { return Unicode.Scalar(scalar.value - 32)! }
        if scalar.isASCII { return scalar }
        let mapped = scalar.properties.uppercaseMapping.unicodeScalars
        return mapped.count == 1 ? mapped.first! : scalar
    }
}

extension RuleRegex.ScalarClass.Part {
    func contains(_ value: UInt32) -> Bool {
        ranges.contains { $0.contains(value) } != negated
    }
}

/// Parses a pattern into elements.
struct RegexParser {
    let scalars: [Unicode.Scalar]
    let pattern: String
    var index = 0

    func error(_ reason: String) -> RuleError {
        RuleError("Invalid regular expression /\(pattern)/: \(reason).")
    }

    var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

    mutating func parseAlternatives(depth: Int) throws(RuleError) -> [[RuleRegex.Element]] {
        guard depth < 32 else { throw error("groups are nested too deeply") }
        var alternatives: [[RuleRegex.Element]] = []
        var sequence: [RuleRegex.Element] = []
        while let scalar = current {
            switch scalar {
            case "|":
                guard !sequence.isEmpty else { throw error("empty alternatives are not supported") }
                alternatives.append(sequence)
                sequence = []
                index += 1
                continue
            case ")":
                guard depth > 0 else { throw error("unbalanced ')'") }
                guard !sequence.isEmpty else { throw error("empty alternatives are not supported") }
                alternatives.append(sequence)
                return alternatives
            default:
                let atom = try parseAtom(depth: depth)
                switch atom {
                case .start, .end: sequence.append(atom)
                default: sequence.append(try parseQuantifier(on: atom))
                }
            }
        }
        guard depth == 0 else { throw error("missing ')'") }
        // An empty pattern (`/^$/` is `^` then `$`) is fine; an empty last alternative (`/a|/`) is not.
        guard !sequence.isEmpty || alternatives.isEmpty else { throw error("empty alternatives are not supported") }
        alternatives.append(sequence)
        return alternatives
    }

    mutating func parseAtom(depth: Int) throws(RuleError) -> RuleRegex.Element {
        let scalar = scalars[index]
        index += 1
        switch scalar {
        case "^":
            guard index == 1 else { throw error("'^' is only allowed at the very start") }
            return .start
        case "$":
            guard index == scalars.count, depth == 0 else { throw error("'$' is only allowed at the very end") }
            return .end
        case "*", "+", "?", "{": throw error("nothing to repeat before '\(scalar)'")
        case ".": return .any
        case "(":
            if current == "?" { throw error("group modifiers '(?' are not supported") }
            let inner = try parseAlternatives(depth: depth + 1)
            guard current == ")" else { throw error("missing ')'") }
            index += 1
            return .group(inner)
        case "[": return .set(try parseClass())
        case "\\": return try parseEscape(inClass: false).element
        default: return .scalar(scalar)
        }
    }

    mutating func parseQuantifier(on atom: RuleRegex.Element) throws(RuleError) -> RuleRegex.Element {
        guard let scalar = current else { return atom }
        var element: RuleRegex.Element
        switch scalar {
        case "*": index += 1; element = .repeated(atom, min: 0, max: nil)
        case "+": index += 1; element = .repeated(atom, min: 1, max: nil)
        case "?": index += 1; element = .repeated(atom, min: 0, max: 1)
        case "{":
            index += 1
            let low = readInteger()
            guard let low else { throw error("expected a number after '{'") }
            var high: Int? = low
            if current == "," {
                index += 1
                high = readInteger()
            }
            guard current == "}" else { throw error("expected '}'") }
            index += 1
            if let high, high < low { throw error("{\(low),\(high)} has its bounds reversed") }
            guard low <= 1000, (high ?? 0) <= 1000 else { throw error("repetition counts are limited to 1000") }
            element = .repeated(atom, min: low, max: high)
        default:
            return atom
        }
        if let next = current, next == "*" || next == "+" || next == "?" || next == "{" {
            throw error("a quantifier cannot follow another quantifier (lazy quantifiers are not supported)")
        }
        return element
    }

    mutating func readInteger() -> Int? {
        var value: Int?
        while let scalar = current, ("0"..."9").contains(scalar), (value ?? 0) < 100_000 {
            value = (value ?? 0) * 10 + Int(scalar.value - 48)
            index += 1
        }
        return value
    }

    static let digits: [ClosedRange<UInt32>] = [48...57]
    static let word: [ClosedRange<UInt32>] = [48...57, 65...90, 95...95, 97...122]
    static let space: [ClosedRange<UInt32>] = [9...13, 32...32, 0xA0...0xA0, 0x1680...0x1680, 0x2000...0x200A,
        0x2028...0x2029, 0x202F...0x202F, 0x205F...0x205F, 0x3000...0x3000, 0xFEFF...0xFEFF]

    /// An escape after `\`: a class (`\d`), or a literal scalar.
    mutating func parseEscape(inClass: Bool) throws(RuleError) -> (element: RuleRegex.Element, scalar: Unicode.Scalar?) {
        guard let scalar = current else { throw error("a pattern cannot end with '\\'") }
        index += 1
        func set(_ ranges: [ClosedRange<UInt32>], negated: Bool) -> (RuleRegex.Element, Unicode.Scalar?) {
            (.set(RuleRegex.ScalarClass(parts: [.init(ranges: ranges, negated: negated)])), nil)
        }
        switch scalar {
        case "d": return set(RegexParser.digits, negated: false)
        case "D": return set(RegexParser.digits, negated: true)
        case "w": return set(RegexParser.word, negated: false)
        case "W": return set(RegexParser.word, negated: true)
        case "s": return set(RegexParser.space, negated: false)
        case "S": return set(RegexParser.space, negated: true)
        case "n": return (.scalar("\n"), "\n")
        case "t": return (.scalar("\t"), "\t")
        case "r": return (.scalar("\r"), "\r")
        case "f": return (.scalar("\u{0C}"), "\u{0C}")
        case "v": return (.scalar("\u{0B}"), "\u{0B}")
        case "b", "B":
            if inClass, scalar == "b" { return (.scalar("\u{08}"), "\u{08}") }
            throw error("word boundaries (\\\(scalar)) are not supported")
        case "1"..."9": throw error("back-references are not supported")
        default:
            if RuleLexer.isIdentifierPart(scalar) && !("0"..."9").contains(scalar) && scalar != "_" && scalar != "$" {
                throw error("unknown escape '\\\(scalar)'")
            }
            return (.scalar(scalar), scalar)
        }
    }

    mutating func parseClass() throws(RuleError) -> RuleRegex.ScalarClass {
        var result = RuleRegex.ScalarClass()
        var ranges: [ClosedRange<UInt32>] = []
        if current == "^" {
            result.negated = true
            index += 1
        }
        var first = true
        while true {
            guard let scalar = current else { throw error("missing ']'") }
            if scalar == "]" && !first {
                index += 1
                result.parts.append(.init(ranges: ranges, negated: false))
                return result
            }
            first = false
            index += 1
            var low: Unicode.Scalar
            if scalar == "\\" {
                let escape = try parseEscape(inClass: true)
                guard let literal = escape.scalar else {
                    if case .set(let inner) = escape.element { result.parts += inner.parts }
                    continue
                }
                low = literal
            } else {
                low = scalar
            }
            if current == "-", index + 1 < scalars.count, scalars[index + 1] != "]" {
                index += 1
                var high = scalars[index]
                index += 1
                if high == "\\" {
                    guard let literal = try parseEscape(inClass: true).scalar else { throw error("a range cannot end in a class escape") }
                    high = literal
                }
                guard low.value <= high.value else { throw error("range \(low)-\(high) is out of order") }
                ranges.append(low.value...high.value)
            } else {
                ranges.append(low.value...low.value)
            }
        }
    }
}

/// Backtracking matcher over Unicode scalars. Every step hands the end position to a
/// continuation, which says whether the rest of the pattern matched from there.
struct Matcher {
    typealias Continuation = (Int, inout Matcher) -> Bool

    let regex: RuleRegex
    let scalars: [Unicode.Scalar]
    let limit: Int
    var steps = 0
    var depth = 0
    var tooDeep = false

    init(regex: RuleRegex, scalars: [Unicode.Scalar], limit: Int = RuleRegex.stepBudget) {
        self.regex = regex
        self.scalars = scalars
        self.limit = limit
    }

    var exhausted: Bool { steps > limit || tooDeep }

    mutating func matchAlternatives(_ alternatives: [[RuleRegex.Element]], at index: Int, then: Continuation) -> Bool {
        for sequence in alternatives {
            if matchSequence(sequence[...], at: index, then: then) { return true }
            if exhausted { return false }
        }
        return false
    }

    mutating func matchSequence(_ sequence: ArraySlice<RuleRegex.Element>, at index: Int, then: Continuation) -> Bool {
        steps += 1
        guard !exhausted else { return false }
        guard let first = sequence.first else { return then(index, &self) }
        let rest = sequence.dropFirst()
        depth += 1
        defer { depth -= 1 }
        guard depth <= RuleRegex.depthLimit else {
            tooDeep = true
            return false
        }
        return matchOne(first, at: index) { end, matcher in matcher.matchSequence(rest, at: end, then: then) }
    }

    /// True if the single-scalar element matches the scalar at `index`.
    func matchesScalar(_ element: RuleRegex.Element, at index: Int) -> Bool {
        guard index < scalars.count else { return false }
        let actual = scalars[index]
        switch element {
        case .scalar(let expected):
            return regex.ignoreCase ? RuleRegex.fold(actual) == RuleRegex.fold(expected) : actual == expected
        case .any:
            return actual != "\n" && actual != "\r" && actual != "\u{2028}" && actual != "\u{2029}"
        case .set(let set):
            return set.contains(actual, ignoringCase: regex.ignoreCase)
        default:
            return false
        }
    }

    /// Greedy repetition of one scalar: count how far it reaches in a loop, then hand each
    /// end, longest first, to the continuation. No recursion per scalar.
    mutating func matchScalarRepeat(_ element: RuleRegex.Element, min: Int, max: Int?, at index: Int, then: Continuation) -> Bool {
        var end = index
        let limit = max.map { index + $0 } ?? Int.max
        // The scan is a tight loop; only the attempts to go on from an end count as steps.
        while end < limit, matchesScalar(element, at: end) { end += 1 }
        guard end - index >= min else { return false }
        var candidate = end
        while candidate >= index + min {
            steps += 1
            if exhausted { return false }
            if then(candidate, &self) { return true }
            candidate -= 1
        }
        return false
    }

    /// Greedy repetition of a group: as many as possible, then fewer.
    mutating func matchRepeat(
        _ element: RuleRegex.Element, min: Int, max: Int?, count: Int, at index: Int, then: Continuation
    ) -> Bool {
        steps += 1
        guard !exhausted else { return false }
        depth += 1
        defer { depth -= 1 }
        guard depth <= RuleRegex.depthLimit else {
            tooDeep = true
            return false
        }
        if max.map({ count < $0 }) ?? true {
            let matched = matchOne(element, at: index) { end, matcher in
                // An iteration that consumed nothing cannot make progress.
                guard end > index else { return false }
                return matcher.matchRepeat(element, min: min, max: max, count: count + 1, at: end, then: then)
            }
            if matched { return true }
        }
        return count >= min && then(index, &self)
    }

    /// Matches one element at `index`, handing each possible end to `then`.
    mutating func matchOne(_ element: RuleRegex.Element, at index: Int, then: Continuation) -> Bool {
        switch element {
        case .scalar, .any, .set:
            return matchesScalar(element, at: index) && then(index + 1, &self)
        case .start:
            return index == 0 && then(index, &self)
        case .end:
            return index == scalars.count && then(index, &self)
        case .group(let alternatives):
            return matchAlternatives(alternatives, at: index, then: then)
        case .repeated(let inner, let min, let max):
            if inner.isSingleScalar { return matchScalarRepeat(inner, min: min, max: max, at: index, then: then) }
            return matchRepeat(inner, min: min, max: max, count: 0, at: index, then: then)
        }
    }
}

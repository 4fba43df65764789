/// A regular expression in the subset Firebase's rules accept, compiled once when the rules
/// are loaded, and matched like JavaScript's `RegExp.test`: anywhere in the string unless
/// anchored with `^` (only at the very start) or `$` (only at the very end).
///
/// Supported: literals and escapes, `.`, `\d \w \s \D \W \S`, `[...]` and `[^...]` with ranges,
/// groups `(...)`, alternation `|` (no empty alternatives), quantifiers `* + ? {n} {n,} {n,m}`.
/// The only flag is `i`. Matching backtracks with a step budget, so a pathological pattern
/// fails the rule instead of stalling the server.
public struct RuleRegex: Sendable {
    indirect enum Element: Sendable {
        case scalar(Unicode.Scalar)
        case any
        case set(ScalarClass)
        case group([[Element]])
        case repeated(Element, min: Int, max: Int?)
    }

    /// A character class: ranges and class escapes, possibly negated.
    struct ScalarClass: Sendable {
        var ranges: [ClosedRange<UInt32>] = []
        var negated = false

        func contains(_ scalar: Unicode.Scalar, ignoringCase: Bool) -> Bool {
            var found = ranges.contains { $0.contains(scalar.value) }
            if !found, ignoringCase {
                let lower = RuleRegex.fold(scalar), upper = RuleRegex.upper(scalar)
                found = ranges.contains { $0.contains(lower.value) || $0.contains(upper.value) }
            }
            return found != negated
        }
    }

    let alternatives: [[Element]]
    let anchoredStart: Bool
    let anchoredEnd: Bool
    let ignoreCase: Bool
    /// The pattern as written, for messages.
    public let pattern: String

    /// Most backtracking steps one match may take before the rule fails.
    static let stepBudget = 200_000

    /// Compiles `/pattern/flags`; throws for anything outside Firebase's subset.
    public init(pattern: String, flags: String) throws(RuleError) {
        guard flags.isEmpty || flags == "i" else {
            throw RuleError("Invalid regular expression flags '\(flags)': only 'i' is supported.")
        }
        self.pattern = pattern
        ignoreCase = flags == "i"
        var scalars = Array(pattern.unicodeScalars)
        anchoredStart = scalars.first == "^"
        if anchoredStart { scalars.removeFirst() }
        // A `$` at the very end anchors unless it is escaped (an odd run of backslashes before it).
        var endsWithDollar = scalars.last == "$"
        if endsWithDollar {
            var backslashes = 0
            var index = scalars.count - 2
            while index >= 0, scalars[index] == "\\" {
                backslashes += 1
                index -= 1
            }
            endsWithDollar = backslashes % 2 == 0
        }
        anchoredEnd = endsWithDollar
        if anchoredEnd { scalars.removeLast() }
        var parser = RegexParser(scalars: scalars, pattern: pattern)
        alternatives = try parser.parseAlternatives(depth: 0)
        guard parser.index == scalars.count else {
            throw RuleError("Invalid regular expression /\(pattern)/: unbalanced ')'.")
        }
    }

    /// True if the pattern matches somewhere in `string` (respecting anchors). Nil when the
    /// match ran out of its step budget.
    public func matches(_ string: String) -> Bool? {
        let scalars = Array(string.unicodeScalars)
        var matcher = Matcher(regex: self, scalars: scalars)
        let lastStart = anchoredStart ? 0 : scalars.count
        let anchoredEnd = self.anchoredEnd
        for start in 0...lastStart {
            let found = matcher.matchAlternatives(alternatives, at: start) { end, _ in
                !anchoredEnd || end == scalars.count
            }
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

/// Parses the body of a pattern (anchors already removed) into elements.
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
                sequence.append(try parseQuantifier(on: atom))
            }
        }
        guard depth == 0 else { throw error("missing ')'") }
        // An empty pattern (`/^$/`) is fine; an empty last alternative (`/a|/`) is not.
        guard !sequence.isEmpty || alternatives.isEmpty else { throw error("empty alternatives are not supported") }
        alternatives.append(sequence)
        return alternatives
    }

    mutating func parseAtom(depth: Int) throws(RuleError) -> RuleRegex.Element {
        let scalar = scalars[index]
        index += 1
        switch scalar {
        case "^": throw error("'^' is only allowed at the very start")
        case "$": throw error("'$' is only allowed at the very end")
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
            throw error("a quantifier cannot follow another quantifier")
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
            (.set(RuleRegex.ScalarClass(ranges: ranges, negated: negated)), nil)
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
        if current == "^" {
            result.negated = true
            index += 1
        }
        var first = true
        while true {
            guard let scalar = current else { throw error("missing ']'") }
            if scalar == "]" && !first {
                index += 1
                return result
            }
            first = false
            index += 1
            var low: Unicode.Scalar
            if scalar == "\\" {
                let escape = try parseEscape(inClass: true)
                guard let literal = escape.scalar else {
                    if case .set(let inner) = escape.element {
                        guard !inner.negated else { throw error("negated class escapes inside [...] are not supported") }
                        result.ranges += inner.ranges
                    }
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
                result.ranges.append(low.value...high.value)
            } else {
                result.ranges.append(low.value...low.value)
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
    var steps = 0

    init(regex: RuleRegex, scalars: [Unicode.Scalar]) {
        self.regex = regex
        self.scalars = scalars
    }

    var exhausted: Bool { steps > RuleRegex.stepBudget }

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
        return matchOne(first, at: index) { end, matcher in matcher.matchSequence(rest, at: end, then: then) }
    }

    /// Greedy repetition: as many as possible, then fewer.
    mutating func matchRepeat(
        _ element: RuleRegex.Element, min: Int, max: Int?, count: Int, at index: Int, then: Continuation
    ) -> Bool {
        steps += 1
        guard !exhausted else { return false }
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
        case .scalar(let expected):
            guard index < scalars.count else { return false }
            let actual = scalars[index]
            let equal = regex.ignoreCase ? RuleRegex.fold(actual) == RuleRegex.fold(expected) : actual == expected
            return equal && then(index + 1, &self)
        case .any:
            guard index < scalars.count, scalars[index] != "\n", scalars[index] != "\r",
                scalars[index] != "\u{2028}", scalars[index] != "\u{2029}"
            else { return false }
            return then(index + 1, &self)
        case .set(let set):
            guard index < scalars.count, set.contains(scalars[index], ignoringCase: regex.ignoreCase) else { return false }
            return then(index + 1, &self)
        case .group(let alternatives):
            return matchAlternatives(alternatives, at: index, then: then)
        case .repeated(let inner, let min, let max):
            return matchRepeat(inner, min: min, max: max, count: 0, at: index, then: then)
        }
    }
}

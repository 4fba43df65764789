import HearthCore
import Testing

// The regular expressions of `matches()`: Firebase's subset of JavaScript's syntax (reference
// §3.5, targaryen `lib/parser/regexp/parser.ne`), matched like `RegExp.test`.

private func regex(_ pattern: String, _ flags: String = "") throws -> RuleRegex {
    try RuleRegex(pattern: pattern, flags: flags)
}

/// One pattern, one subject, and whether the pattern is found in it.
struct RegexMatchCase: Sendable, CustomTestStringConvertible {
    var pattern: String
    var flags: String
    var subject: String
    var matches: Bool

    var testDescription: String {
        "/\(pattern)/\(flags) \(matches ? "matches" : "does not match") \(subject.debugDescription)"
    }
}

private func match(_ pattern: String, _ flags: String = "", in subject: String) -> RegexMatchCase {
    RegexMatchCase(pattern: pattern, flags: flags, subject: subject, matches: true)
}

private func noMatch(_ pattern: String, _ flags: String = "", in subject: String) -> RegexMatchCase {
    RegexMatchCase(pattern: pattern, flags: flags, subject: subject, matches: false)
}

private let anchorCases: [RegexMatchCase] = [
    match("b", in: "abc"),
    match("^abc$", in: "abc"),
    noMatch("^abc$", in: "abcd"),
    noMatch("^abc$", in: "xabc"),
    match("^abc", in: "abcd"),
    noMatch("^abc", in: "xabc"),
    match("abc$", in: "xabc"),
    noMatch("abc$", in: "abcx"),
    match("^$", in: ""),
    noMatch("^$", in: "a"),
    // An escaped `$` at the end is a dollar sign, not an anchor.
    match(#"price\$"#, in: "the price$ is right"),
    noMatch(#"price\$"#, in: "the price is right"),
]

private let classCases: [RegexMatchCase] = [
    match("^[abc]+$", in: "cab"),
    noMatch("^[abc]+$", in: "cad"),
    match("^[a-z]+$", in: "hello"),
    noMatch("^[a-z]+$", in: "Hello"),
    match("^[0-9A-F]+$", in: "1F"),
    noMatch("^[0-9A-F]+$", in: "1G"),
    match("^[^0-9]+$", in: "abc"),
    noMatch("^[^0-9]+$", in: "a1c"),
    match("^[-a-z]+$", in: "well-known"),
    match(#"^[a\-z]+$"#, in: "a-z"),
    noMatch(#"^[a\-z]+$"#, in: "b"),
    match("^a.c$", in: "abc"),
    match("^a.c$", in: "a c"),
    noMatch("^a.c$", in: "a\nc"),
    match(#"^a\.c$"#, in: "a.c"),
    noMatch(#"^a\.c$"#, in: "abc"),
    match(#"^\d+$"#, in: "2024"),
    noMatch(#"^\d+$"#, in: "20x4"),
    match(#"^\D+$"#, in: "abc"),
    noMatch(#"^\D+$"#, in: "a1"),
    match(#"^\w+$"#, in: "snake_case_9"),
    noMatch(#"^\w+$"#, in: "kebab-case"),
    match(#"^\W$"#, in: "!"),
    noMatch(#"^\W$"#, in: "_"),
    match(#"^a\sb$"#, in: "a b"),
    match(#"^a\sb$"#, in: "a\tb"),
    noMatch(#"^a\sb$"#, in: "a_b"),
    match(#"^\S+$"#, in: "abc"),
    noMatch(#"^\S+$"#, in: "a b"),
    match(#"^[\d\s]+$"#, in: "1 2 3"),
    match("^.$", in: "\u{E9}"),
]

private let quantifierCases: [RegexMatchCase] = [
    match("^a*$", in: ""),
    match("^a*$", in: "aaa"),
    noMatch("^a+$", in: ""),
    match("^a+$", in: "aa"),
    match("^colou?r$", in: "color"),
    match("^colou?r$", in: "colour"),
    noMatch("^colou?r$", in: "colouur"),
    match("^a{3}$", in: "aaa"),
    noMatch("^a{3}$", in: "aa"),
    noMatch("^a{3}$", in: "aaaa"),
    noMatch("^a{2,}$", in: "a"),
    match("^a{2,}$", in: "aa"),
    match("^a{2,}$", in: "aaaaaaa"),
    noMatch("^a{2,4}$", in: "a"),
    match("^a{2,4}$", in: "aaa"),
    noMatch("^a{2,4}$", in: "aaaaa"),
    match("^(ab)+$", in: "abab"),
    noMatch("^(ab)+$", in: "aba"),
    match("^((a|b)c)+$", in: "acbc"),
    noMatch("^((a|b)c)+$", in: "ab"),
    match("cat|dog", in: "hotdog"),
    noMatch("cat|dog", in: "cow"),
    match("^(cat|dog)s?$", in: "cats"),
    match("^(cat|dog)s?$", in: "dog"),
    noMatch("^(cat|dog)s?$", in: "cow"),
    // The fixture `/\{foo}/`: an escaped brace, and a lone `}` is a literal.
    match(#"\{foo}"#, in: "{foo}"),
]

private let caseInsensitiveCases: [RegexMatchCase] = [
    match("^hello$", "i", in: "HeLLo"),
    noMatch("^hello$", in: "HeLLo"),
    match("^[a-z]+$", "i", in: "ABC"),
    match("^BAR$", "i", in: "bar"),
    match("^\u{E9}t\u{E9}$", "i", in: "\u{C9}T\u{C9}"),
]

/// Patterns people write in real rules.
private let realisticCases: [RegexMatchCase] = [
    // The e-mail pattern of Firebase's rules documentation.
    match(#"^[A-Z0-9._%+-]+@[A-Z0-9.-]+\.[A-Z]{2,4}$"#, "i", in: "bob@example.com"),
    match(#"^[A-Z0-9._%+-]+@[A-Z0-9.-]+\.[A-Z]{2,4}$"#, "i", in: "Bob.Smith+rules@mail.example.org"),
    noMatch(#"^[A-Z0-9._%+-]+@[A-Z0-9.-]+\.[A-Z]{2,4}$"#, "i", in: "bob@example"),
    noMatch(#"^[A-Z0-9._%+-]+@[A-Z0-9.-]+\.[A-Z]{2,4}$"#, "i", in: "bob example.com"),
    noMatch(#"^[A-Z0-9._%+-]+@[A-Z0-9.-]+\.[A-Z]{2,4}$"#, "i", in: "@example.com"),
    // North American phone numbers.
    match(#"^\(?\d{3}\)?[- ]?\d{3}-\d{4}$"#, in: "(555) 123-4567"),
    match(#"^\(?\d{3}\)?[- ]?\d{3}-\d{4}$"#, in: "555-123-4567"),
    noMatch(#"^\(?\d{3}\)?[- ]?\d{3}-\d{4}$"#, in: "5551234567"),
    noMatch(#"^\(?\d{3}\)?[- ]?\d{3}-\d{4}$"#, in: "555-1234-567"),
    noMatch(#"^\(?\d{3}\)?[- ]?\d{3}-\d{4}$"#, in: "12-345-6789"),
    // Dates, prices, user names.
    match(#"^\d{4}-\d{2}-\d{2}$"#, in: "2024-01-31"),
    noMatch(#"^\d{4}-\d{2}-\d{2}$"#, in: "2024-1-31"),
    match(#"^\$\d+(\.\d{2})?$"#, in: "$5"),
    match(#"^\$\d+(\.\d{2})?$"#, in: "$5.00"),
    noMatch(#"^\$\d+(\.\d{2})?$"#, in: "$5.0"),
    match("^[a-z0-9_]{3,16}$", in: "rules_fan_42"),
    noMatch("^[a-z0-9_]{3,16}$", in: "ab"),
    noMatch("^[a-z0-9_]{3,16}$", in: "has space"),
]

/// A pattern (and flags) outside Firebase's subset.
struct InvalidRegexCase: Sendable, CustomTestStringConvertible {
    var pattern: String
    var flags: String
    var why: String

    var testDescription: String { "/\(pattern)/\(flags): \(why)" }
}

private let invalidCases: [InvalidRegexCase] = [
    InvalidRegexCase(pattern: "abc", flags: "ig", why: "only the i flag exists"),
    InvalidRegexCase(pattern: "abc", flags: "g", why: "only the i flag exists"),
    InvalidRegexCase(pattern: "abc", flags: "m", why: "only the i flag exists"),
    InvalidRegexCase(pattern: "a^b", flags: "", why: "^ only at the very start"),
    InvalidRegexCase(pattern: "a$b", flags: "", why: "$ only at the very end"),
    InvalidRegexCase(pattern: "(^foo$|bar)", flags: "", why: "anchors inside a group (live fixture)"),
    InvalidRegexCase(pattern: "^(foo|)$", flags: "", why: "an empty alternative (live fixture)"),
    InvalidRegexCase(pattern: "a|", flags: "", why: "an empty last alternative"),
    InvalidRegexCase(pattern: "|a", flags: "", why: "an empty first alternative"),
    InvalidRegexCase(pattern: "(abc", flags: "", why: "an unclosed group"),
    InvalidRegexCase(pattern: "abc)", flags: "", why: "an unopened group"),
    InvalidRegexCase(pattern: "a(b", flags: "", why: "an unclosed group"),
    InvalidRegexCase(pattern: "[abc", flags: "", why: "an unclosed class"),
    InvalidRegexCase(pattern: "[z-a]", flags: "", why: "a reversed range"),
    InvalidRegexCase(pattern: "a{2,1}", flags: "", why: "reversed repetition bounds"),
    InvalidRegexCase(pattern: "a|*b", flags: "", why: "nothing to repeat"),
    InvalidRegexCase(pattern: "a**", flags: "", why: "nothing to repeat"),
    // Note: targaryen's grammar reads `\1` as an escaped literal "1"; JavaScript and Java
    // read it as a back-reference, which a linear rules engine cannot support.
    InvalidRegexCase(pattern: #"(a)\1"#, flags: "", why: "back-references"),
]

@Suite("Regular expressions in rules")
struct RuleRegexTests {
    @Test("anchors", arguments: anchorCases)
    func anchors(_ example: RegexMatchCase) throws {
        #expect(try regex(example.pattern, example.flags).matches(example.subject) == example.matches)
    }

    @Test("classes, escapes and the dot", arguments: classCases)
    func classes(_ example: RegexMatchCase) throws {
        #expect(try regex(example.pattern, example.flags).matches(example.subject) == example.matches)
    }

    @Test("quantifiers, groups and alternation", arguments: quantifierCases)
    func quantifiers(_ example: RegexMatchCase) throws {
        #expect(try regex(example.pattern, example.flags).matches(example.subject) == example.matches)
    }

    @Test("the i flag", arguments: caseInsensitiveCases)
    func ignoringCase(_ example: RegexMatchCase) throws {
        #expect(try regex(example.pattern, example.flags).matches(example.subject) == example.matches)
    }

    @Test("realistic validation patterns", arguments: realisticCases)
    func realistic(_ example: RegexMatchCase) throws {
        #expect(try regex(example.pattern, example.flags).matches(example.subject) == example.matches)
    }

    @Test("patterns outside Firebase's subset are refused", arguments: invalidCases)
    func invalid(_ example: InvalidRegexCase) {
        #expect(throws: RuleError.self) { try regex(example.pattern, example.flags) }
    }

    @Test func thePatternIsKeptAsWritten() throws {
        #expect(try regex(#"^\d+$"#).pattern == #"^\d+$"#)
    }

    // Exponential backtracking must end in a failure (nil) or a plain no, never a stall.
    @Test(.timeLimit(.minutes(1)))
    func catastrophicBacktrackingGivesUp() throws {
        let subject = String(repeating: "a", count: 36) + "b"
        let result = try regex("(a+)+$").matches(subject)
        #expect(result != true)
    }

    @Test(.timeLimit(.minutes(1)))
    func nestedQuantifiersStillMatchWhatTheyShould() throws {
        #expect(try regex("^(a+)+$").matches(String(repeating: "a", count: 36)) == true)
    }

    /// A repeated single character loops instead of recursing, so long subjects (Firebase
    /// strings reach 10 MB) match; a repeated group on a long subject stops at the depth limit
    /// (the rule fails) instead of overflowing the stack.
    @Test
    func longSubjectsMatch() throws {
        #expect(try regex("^[a-z]+$").matches(String(repeating: "a", count: 100_000)) == true)
        #expect(try regex("^[a-z]+$").matches(String(repeating: "a", count: 100_000) + "1") == false)
        #expect(try regex("^(ab)+$").matches(String(repeating: "ab", count: 100_000)) == nil)
    }

    /// In JavaScript's reading, `^a|b$` is `(^a)|(b$)`.
    @Test
    func anchorsBelongToTheirAlternative() throws {
        #expect(try regex("^a|b$").matches("xb") == true)
        #expect(try regex("^a|b$").matches("ax") == true)
        #expect(try regex("^a|b$").matches("xax") == false)
    }

    /// Class escapes, negated ones included, can be mixed into brackets.
    @Test
    func classEscapesInsideBrackets() throws {
        #expect(try regex("^[\\W]$").matches("-") == true)
        #expect(try regex("^[\\W]$").matches("a") == false)
        #expect(try regex("^[^\\W]bc$").matches("abc") == true)
        #expect(try regex("^[\\d_-]+$").matches("12_-3") == true)
    }
}

import HearthCore
import Testing

@Suite("Child keys")
struct ChildKeyTests {
    @Test("integer reading", arguments: [
        ("0", Int32?(0)), ("-0", 0), ("42", 42), ("007", 7), ("-2147483648", Int32.min), ("2147483647", Int32.max),
        ("2147483648", nil), ("-2147483649", nil), ("1.5", nil), ("a1", nil), ("", nil), ("-", nil), ("00000000000001", 1),
        ("12345678901", nil), (" 1", nil), ("+1", nil),
    ])
    func integerReading(key: String, expected: Int32?) {
        #expect(ChildKey(key).integerValue == expected)
    }

    @Test func firebaseOrder() {
        let shuffled = ["b", "a", "10", "9", "-3", "007", "7", "aa", "A", "2147483648", "Z", "日", "é", "😀", "\u{E000}"]
        let sorted = shuffled.map { ChildKey($0) }.sorted().map(\.string)
        // Integers first (numerically; equal values by length), then the rest in UTF-16 order,
        // where U+1F600 (a surrogate pair) comes before U+E000.
        #expect(sorted == ["-3", "7", "007", "9", "10", "2147483648", "A", "Z", "a", "aa", "b", "é", "日", "😀", "\u{E000}"])
    }

    @Test func orderIsTotalAndConsistentWithEquality() {
        let keys = ["0", "-0", "00", "000", "1", "01", "a", "b"].map { ChildKey($0) }
        for a in keys {
            for b in keys {
                let ab = ChildKey.compare(a, b)
                let ba = ChildKey.compare(b, a)
                #expect((ab == 0) == (a == b))
                #expect((ab < 0) == (ba > 0))
            }
        }
    }

    @Test func arrayIndices() {
        #expect(ChildKey("0").isArrayIndex)
        #expect(ChildKey("12").isArrayIndex)
        #expect(!ChildKey("012").isArrayIndex)
        #expect(!ChildKey("-1").isArrayIndex)
        #expect(!ChildKey("-0").isArrayIndex)
        #expect(!ChildKey("x").isArrayIndex)
    }
}

import Foundation
@testable import HearthCore
import HearthTestSupport
import Testing

/// The JSON code's fast paths (small strings read and made in registers, the key cache,
/// two-digit integer output, Clinger's double fast path, in-place sorting) checked against
/// simple reference implementations.
@Suite("JSON fast paths")
struct JSONFastPathTests {
    func parse(_ text: String) throws -> Node {
        try JSONParser.parse(Array(text.utf8)).node
    }

    /// JSON string escaping done the plain way, byte by byte.
    func referenceQuoted(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// Parses the records as one document (`{"r0": ..., "r1": ...}`, big enough for the
    /// per-parse caches) and expects the tree built from parsing each record on its own (too
    /// small for the caches).
    func expectSameTreeAsRecordByRecord(_ records: [String]) throws {
        let document = "{" + records.enumerated().map { "\"r\($0.offset)\":\($0.element)" }.joined(separator: ",") + "}"
        #expect(document.utf8.count >= 8192)
        var expected = ChildMap()
        for (index, record) in records.enumerated() {
            expected.set(ChildKey("r\(index)"), try parse(record))
        }
        #expect(try parse(document) == .object(expected))
    }

    @Test func smallStringLayoutIsAsExpected() {
        #expect(StringLayout.checkLayout() == nil)
    }

    /// Every length around the small-string limit and the eight-byte words, with each kind of
    /// byte that matters at each position: written as values and as keys, and read back.
    @Test func stringsOfEveryLengthWithSpecialBytesAtEveryPosition() throws {
        let specials: [Character] = ["\"", "\\", "\n", "\u{01}", "\u{1F}", "é", "✓", "~", " "]
        for length in 0...40 {
            let plain = String((0..<length).map { Character(UnicodeScalar(UInt8(ascii: "a") + UInt8($0 % 26))) })
            var samples = [plain]
            for special in specials where length > 0 {
                for position in Set([0, length / 2, length - 1]) {
                    var characters = Array(plain)
                    characters[position] = special
                    samples.append(String(characters))
                }
            }
            for sample in samples {
                let written = JSONWriter.string(.string(sample))
                #expect(written == referenceQuoted(sample), "value \(sample.debugDescription)")
                #expect(try parse(written) == .string(sample))
                let isValidKey = KeyValidator.isValid(sample)
                guard isValidKey else { continue }
                let object = Node.object(ChildMap().setting(ChildKey(sample), .int(1)))
                let objectText = JSONWriter.string(object)
                #expect(objectText == "{" + referenceQuoted(sample) + ":1}", "key \(sample.debugDescription)")
                #expect(try parse(objectText) == object)
            }
        }
    }

    @Test func stringsMadeByTheParserBehaveLikeAnyOther() throws {
        // Parsed small strings are built from their bytes; they must equal, hash and compare
        // like strings the standard library made.
        for text in ["", "a", "abcdefgh", "abcdefghijklmno", "abcdefghijklmnop", "é", "Ünïcode ✓ 1", "日本語"] {
            let parsed = try parse(referenceQuoted(text))
            guard case .string(let made) = parsed else {
                Issue.record("not a string: \(parsed)")
                continue
            }
            #expect(made == text)
            #expect(made.hashValue == text.hashValue)
            #expect(Array(made.utf8) == Array(text.utf8))
            #expect(made.count == text.count)
            #expect(made + "!" == text + "!")
        }
    }

    @Test func integersAtEveryDigitCount() {
        var values: [Int64] = [0, 1, -1, Int64.max, Int64.min, Int64.max - 1, Int64.min + 1]
        var power: Int64 = 1
        for _ in 0..<19 {
            values += [power - 1, power, power + 1, -(power - 1), -power, -(power + 1)]
            if power <= Int64.max / 10 { power *= 10 }
        }
        var random = SeededRandom(seed: 7)
        for _ in 0..<2_000 { values.append(Int64.random(in: Int64.min...Int64.max, using: &random) >> Int64.random(in: 0...62, using: &random)) }
        for value in values {
            var output = OutputBuffer()
            output.append(integer: value)
            #expect(output.string == String(value))
        }
    }

    @Test("doubles with few decimals are written as JavaScript shows them", arguments: [
        (0.05, "0.05"), (-0.5, "-0.5"), (35.67, "35.67"), (1.005, "1.005"), (100.25, "100.25"),
        (0.0000125, "0.0000125"), (12_345_678.125, "12345678.125"), (-1234.00001, "-1234.00001"), (0.1, "0.1"),
    ])
    func shortDecimals(value: Double, text: String) {
        #expect(JSONWriter.string(.double(value)) == text)
    }

    /// Decimal texts chosen to exercise both the exact fast path and the fallback; every one
    /// must read as the double the standard library reads.
    @Test func doublesMatchTheStandardLibrary() throws {
        var texts = [
            "0.1", "-0.1", "35.67", "1e22", "1e23", "-1e-22", "1e-23", "9007199254740993.5", "9007199254740992.0",
            "0.30000000000000004", "123456789012345678901234.5", "2.2250738585072014e-308", "1.7976931348623157e308",
            "4.9e-324", "0.0", "1E5", "1e+5", "12.5e-1", "0.000001", "99999999999999999999.0",
        ]
        var random = SeededRandom(seed: 11)
        for _ in 0..<5_000 {
            let digits = Int.random(in: 1...20, using: &random)
            var text = String(Int.random(in: 1...9, using: &random))
            for _ in 1..<digits { text += String(Int.random(in: 0...9, using: &random)) }
            let point = Int.random(in: 1...text.count, using: &random)
            text.insert(".", at: text.index(text.startIndex, offsetBy: point))
            if text.hasSuffix(".") { text += "0" }
            if Bool.random(using: &random) { text += "e\(Int.random(in: -30...30, using: &random))" }
            if Bool.random(using: &random) { text = "-" + text }
            texts.append(text)
        }
        for text in texts {
            let node = try parse(text)
            guard case .double(let value) = node, let expected = Double(text) else {
                Issue.record("\(text) read as \(node)")
                continue
            }
            #expect(value.bitPattern == expected.bitPattern, "\(text): \(value) vs \(expected)")
        }
        guard case .double(let negativeZero) = try parse("-0.0") else { return }
        #expect(negativeZero.sign == .minus)
    }

    /// A document big enough for the key cache, with repeated, integer-like, non-ASCII,
    /// escaped and many distinct names (so cache slots are replaced), parses to the same tree
    /// as its records parsed one by one (too small for the cache).
    @Test func keyCacheGivesTheSameTreeAsParsingRecordByRecord() throws {
        var random = SeededRandom(seed: 3)
        var records: [String] = []
        for index in 0..<600 {
            var members = [
                #""device_id":"dev-\#(index)""#, #""007":\#(index)"#, #""7":true"#, #""-3":1.5"#, #""é":"x""#,
                #""a\"b":1"#, #""k\#(index % 300)":\#(index)"#, #""z":null"#, #""tags":["a","b"]"#,
                #""d\#(Int.random(in: 0..<5000, using: &random))":{"x":1}"#, #""abcdefghijklmno":0"#, #""abcdefghijklmnop":1"#,
            ]
            members.shuffle(using: &random)
            records.append("{" + members.joined(separator: ",") + "}")
        }
        try expectSameTreeAsRecordByRecord(records)
    }

    /// Shapes that repeat (the key-order cache's hits), shapes with the same count and first
    /// key in a different order, nested shapes that alternate with their parents, duplicates
    /// and objects too large to cache: the same tree as record-by-record parses.
    @Test func keyOrderCacheGivesTheSameTreeAsParsingRecordByRecord() throws {
        let shapes = [
            #"{"m":1,"c":2,"b":{"y":1,"x":2},"a":3}"#,
            #"{"m":1,"b":{"x":1,"y":2},"c":2,"a":3}"#,
            #"{"m":1,"a":3,"c":2,"b":{"y":2,"x":1}}"#,
            #"{"m":1,"z":1,"m":2,"a":0}"#,
            #"{"m":"x","c":null,"b":1,"a":[3,2,1]}"#,
            "{" + (0..<30).reversed().map { #""k\#($0)":\#($0)"# }.joined(separator: ",") + "}",
            #"{"longer than fifteen bytes":1,"b":2,"a":3}"#,
        ]
        var random = SeededRandom(seed: 9)
        var records: [String] = []
        for index in 0..<800 {
            // Long runs of one shape, then alternation.
            records.append(index < 300 ? shapes[index / 100] : shapes.randomElement(using: &random)!)
        }
        try expectSameTreeAsRecordByRecord(records)
    }

    @Test func incrementsInALargeDocumentKeepTheirPaths() throws {
        let records = (0..<400).map { #""r\#($0)":{"device":1,"msg":"ok"}"# }.joined(separator: ",")
        let document = "{" + records + #","last":{"device":{"count":{".sv":{"increment":5}}},"list":[1,{".sv":{"increment":2}}]}}"#
        let parsed = try JSONParser.parse(Array(document.utf8))
        #expect(parsed.increments.map(\.relativePath.description) == ["/last/device/count", "/last/list/1"])
        #expect(parsed.node.child("last").child("device").child("count") == .int(5))
    }

    @Test func invalidKeysAreRefusedWhenTheCacheIsWarm() throws {
        let records = (0..<400).map { #""r\#($0)":{"device":1,"msg":"ok"}"# }.joined(separator: ",")
        for bad in [".bad", "a/b", "a.b", "$x", "[", "a\\u0001"] {
            let document = "{" + records + #","last":{"device":1,""# + bad + #"":2}}"#
            #expect(throws: DataError.self, "\(bad)") { try parse(document) }
        }
    }

    /// Objects large enough for the sort's second branch, with duplicates and nulls, sorted in
    /// place: the last duplicate wins and nulls vanish, as in the reference model.
    @Test func largeUnsortedObjectsWithDuplicatesAndNulls() throws {
        var random = SeededRandom(seed: 5)
        for size in [2, 10, 24, 25, 60, 200] {
            var members: [(String, Int?)] = []
            for _ in 0..<size {
                let key = ["k\(Int.random(in: 0..<(size * 2 / 3 + 1), using: &random))", "\(Int.random(in: 0..<50, using: &random))"]
                    .randomElement(using: &random)!
                members.append((key, Int.random(in: 0..<4, using: &random) == 0 ? nil : Int.random(in: 0..<100, using: &random)))
            }
            var model: [String: Int?] = [:]
            for (key, value) in members { model[key] = .some(value) }
            var expected = ChildMap()
            for (key, value) in model {
                if let value = value { expected.set(ChildKey(key), .int(Int64(value))) }
            }
            let text = "{" + members.map { "\"\($0.0)\":\($0.1.map(String.init) ?? "null")" }.joined(separator: ",") + "}"
            #expect(try parse(text) == Node.object(normalizing: expected), "\(text)")
        }
    }

    /// Small keys (compared as words), native ones (compared eight bytes at a time) and
    /// literals (the standard library's comparison), in every pairing.
    @Test func keysCompareByBytesWhateverTheirRepresentation() {
        var names = ["a", "ab", "a b", "a~", "b", "abcdefgh", "abcdefghi", "abcdefgh~", "abcdefghijklmno", "abcdefghijklmnop",
                     "abcdefghijklmnoa", "A", "_", "-", "-a", "zzzzzzzzzzzzzzz", "zzzzzzzzzzzzzzzz",
                     "-NjEtLV-_-J_w0Mdpfjj", "-NjEtLV-_-J_w0Mdpfjk", "-NjEtLV-_-J_w0Mdpfj", "-NjEtLV-_-J_w0Mdpfjj~",
                     "-NjEtLV-_-J_w0Mdpfjj-NjEtLV-_-J_w0Mdpfjj", "-NjEtLV-", "-NjEtLV-_"]
        // The same names made at run time: native strings for those over 15 bytes.
        names += names.map { String(decoding: Array($0.utf8) + [], as: UTF8.self) }
        for a in names {
            for b in names {
                let expected = a == b ? 0 : (Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8)) ? -1 : 1)
                let actual = ChildKey.compare(ChildKey(a), ChildKey(b)).signum()
                #expect(actual == expected, "\(a) vs \(b)")
            }
        }
    }
}

import HearthCore
import HearthTestSupport
import Testing

@Suite("String encoding and decoding")
struct StringCodingTests {
    @Test("invalid UTF-8 sequences", arguments: [
        [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80],
        [0x80], [0xBF], [0xC3], [0xE6, 0x97], [0xF0, 0x9F, 0x98], [0xFF], [0xFE],
    ] as [[UInt8]])
    func invalidUTF8(sequence: [UInt8]) {
        for padding in [0, 3, 9] {
            let bytes = [0x22] + Array(repeating: UInt8(ascii: "a"), count: padding) + sequence + [0x22]
            #expect(throws: DataError.self) { try JSONParser.parse(bytes) }
            // In a key as well.
            let key = [UInt8(ascii: "{")] + bytes + Array(":1}".utf8)
            #expect(throws: DataError.self) { try JSONParser.parse(key) }
        }
    }

    @Test func validUTF8Boundaries() throws {
        for scalar in ["\u{7F}", "\u{80}", "\u{7FF}", "\u{800}", "\u{D7FF}", "\u{E000}", "\u{FFFF}", "\u{10000}", "\u{10FFFF}"] {
            let text = "\"" + scalar + "\""
            #expect(try JSONParser.parse(Array(text.utf8)).node == .string(scalar))
        }
    }

    @Test func randomStringsRoundTrip() throws {
        var random = SeededRandom(seed: 99)
        let alphabet: [String] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\r", "\t", "\u{0}", "\u{1F}", "\u{7F}", "é", "日", "😀"]
        for _ in 0..<3000 {
            let length = Int.random(in: 0...40, using: &random)
            let string = (0..<length).map { _ in alphabet.randomElement(using: &random)! }.joined()
            let written = JSONWriter.string(.string(string))
            #expect(try JSONParser.parse(Array(written.utf8)).node == .string(string), "\(written)")
            // Escapes are exactly the required ones: nothing below 0x20, no bare quote or backslash.
            #expect(!written.dropFirst().dropLast().utf8.contains { $0 < 0x20 })
            if string.isEmpty == false, string.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x22 && $0 != 0x5C }) {
                #expect(written == "\"" + string + "\"")
            }
        }
    }
}

import Foundation
import HearthCore
import HearthTestSupport
import Testing

@Suite("JSON writer")
struct JSONWriterTests {
    func node(_ text: String) throws -> Node { try JSONParser.parse(Array(text.utf8)).node }

    @Test func compactRoundTrip() throws {
        let text = #"{"a":[1,2.5,"x",true,false],"b":{"c":"\"q\"\\\n\t\u0001"},"é":"日本😀"}"#
        #expect(JSONWriter.string(try node(text)) == text)
    }

    @Test func prettyMatchesFirebase() throws {
        let value = try node(#"{"a":1,"b":{"c":[1,{"d":2}],"e":"x"}}"#)
        let expected = """
            {
              "a" : 1,
              "b" : {
                "c" : [ 1, {
                  "d" : 2
                } ],
                "e" : "x"
              }
            }

            """
        #expect(JSONWriter.string(value, options: .pretty) == expected)
        #expect(JSONWriter.string(.string("x"), options: .pretty) == "\"x\"\n")
    }

    @Test func errorBodyIsByteExact() {
        let body = Node.object(ChildMap(sortedEntries: [ChildEntry(key: "error", value: .string("Permission denied"))]))
        let bytes = JSONWriter.serialize(body, options: .pretty)
        #expect(String(decoding: bytes, as: UTF8.self) == "{\n  \"error\" : \"Permission denied\"\n}\n")
        #expect(bytes.count == 36)  // Firebase's Content-Length for this error
    }

    @Test("array rule", arguments: [
        (#"{"0":"a","1":"b"}"#, #"["a","b"]"#),
        (#"{"0":"a","2":"c"}"#, #"["a",null,"c"]"#),
        (#"{"1":"b"}"#, #"[null,"b"]"#),  // maxKey 1 < 2 × 1
        (#"{"2":"c"}"#, #"{"2":"c"}"#),  // maxKey 2 is not < 2 × 1
        (#"{"1":"b","2":"c"}"#, #"[null,"b","c"]"#),
        (#"{"0":"a","01":"b"}"#, #"{"0":"a","01":"b"}"#),  // leading zero is no index
        (#"{"-1":"a","0":"b"}"#, #"{"-1":"a","0":"b"}"#),
        (#"{"0":"a","x":"b"}"#, #"{"0":"a","x":"b"}"#),
    ])
    func arrays(input: String, expected: String) throws {
        #expect(JSONWriter.string(try node(input)) == expected)
    }

    @Test func exportNeverRendersArrays() throws {
        let value = try node(#"["a","b"]"#)
        #expect(JSONWriter.string(value, options: .init(export: true)) == #"{"0":"a","1":"b"}"#)
    }

    @Test func doubles() {
        #expect(JSONWriter.string(.double(0.1)) == "0.1")
        #expect(JSONWriter.string(.double(-0.0)) == "0")
        #expect(JSONWriter.string(.double(1e300)) == "1e+300")
        #expect(JSONWriter.string(.double(123_456_789.25)) == "123456789.25")
        #expect(JSONWriter.string(.double(9_007_199_254_740_993)) == "9007199254740992")
        #expect(JSONWriter.string(.double(1e19)) == "1e+19")
        #expect(JSONWriter.string(.int(Int64.min)) == "-9223372036854775808")
        for value in [0.1, 1.0 / 3, 2.5e-8, 6.02214076e23, -123.456] {
            let text = JSONWriter.string(.double(value))
            #expect(Double(text) == value, "\(value) wrote \(text)")
        }
    }

    @Test func randomDoublesReadBackExactly() throws {
        var random = SeededRandom(seed: 7)
        for _ in 0..<20_000 {
            let value: Double
            switch Int.random(in: 0..<4, using: &random) {
            case 0: value = Double(Int.random(in: -1_000_000...1_000_000, using: &random)) / 100
            case 1: value = Double(Int.random(in: -99_999_999...99_999_999, using: &random)) / 1e8
            case 2: value = Double.random(in: -1e6...1e6, using: &random)
            default: value = Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &random))
            }
            guard value.isFinite else { continue }
            let text = JSONWriter.string(.double(value))
            #expect(Double(text) == value, "\(value) wrote \(text)")
            // Integral values read back as integers, which compare equal to the same double.
            #expect(try JSONParser.parse(Array(text.utf8)).node == .double(value))
        }
        #expect(JSONWriter.string(.double(27.45)) == "27.45")
        #expect(JSONWriter.string(.double(-0.05)) == "-0.05")
        #expect(JSONWriter.string(.double(0.000001)) == "0.000001")
        #expect(JSONWriter.string(.double(1.0e-7)) == "1e-07")
        #expect(JSONWriter.string(.double(123.456789)) == "123.456789")
    }

    @Test func largeDocumentRoundTrips() throws {
        var entries = ContiguousArray<ChildEntry>()
        for index in 0..<5000 { entries.append(ChildEntry(key: ChildKey("k\(index)"), value: .int(Int64(index)))) }
        entries.sort { $0.key < $1.key }
        let value = Node.object(ChildMap(sortedEntries: entries))
        let text = JSONWriter.string(value)
        #expect(try node(text) == value)
    }
}

@Suite("Streaming writer")
struct StreamingWriterTests {
    @Test func chunksConcatenateToTheWholeDocument() throws {
        let bytes = DataGenerator.webhookDocument(bytes: 200_000, seed: 3)
        let node = try JSONParser.parse(bytes).node
        var chunks: [[UInt8]] = []
        try JSONWriter.stream(node, options: .compact, chunkBytes: 4096) { chunks.append(Array($0)) }
        #expect(chunks.count > 10)
        #expect(chunks.dropLast().allSatisfy { $0.count >= 4096 && $0.count < 4096 + 2048 })
        #expect(chunks.flatMap { $0 } == JSONWriter.serialize(node))
    }

    @Test func sinkErrorsStopTheExport() {
        struct Full: Error {}
        let node = Node.object(ChildMap(sortedEntries: ContiguousArray((0..<1000).map {
            ChildEntry(key: ChildKey("k\(String(format: "%04d", $0))"), value: .string(String(repeating: "x", count: 100)))
        })))
        #expect(throws: Full.self) {
            try JSONWriter.stream(node, options: .compact, chunkBytes: 1024) { _ in throw Full() }
        }
    }
}

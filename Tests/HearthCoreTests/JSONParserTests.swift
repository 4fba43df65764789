import HearthCore
import Testing

@Suite("JSON parser")
struct JSONParserTests {
    func parse(_ text: String, serverTime: Int64 = 0) throws -> Node {
        try JSONParser.parse(Array(text.utf8), options: .init(serverTime: serverTime)).node
    }

    func compact(_ text: String) throws -> String {
        JSONWriter.string(try parse(text))
    }

    @Test("scalars keep their types", arguments: [
        ("true", Node.bool(true)), ("false", .bool(false)), ("0", .int(0)), ("-0", .int(0)), ("42", .int(42)),
        ("-9223372036854775808", .int(Int64.min)), ("9223372036854775807", .int(Int64.max)),
        ("1.5", .double(1.5)), ("1e3", .double(1000)), ("-2.5E-3", .double(-0.0025)),
        ("9223372036854775808", .double(9_223_372_036_854_775_808)), ("\"hi\"", .string("hi")),
        ("  \"padded\" \n", .string("padded")),
    ])
    func scalars(text: String, expected: Node) throws {
        let node = try parse(text)
        #expect(node == expected)
        switch (node, expected) {
        case (.int, .int), (.double, .double), (.bool, .bool), (.string, .string): break
        default: Issue.record("type changed: \(node) for \(text)")
        }
    }

    @Test func integersAndDoublesStayDistinct() throws {
        guard case .int = try parse("1") else { Issue.record("1 should be an integer"); return }
        guard case .double(let value) = try parse("1.0") else { Issue.record("1.0 should be a double"); return }
        #expect(value == 1.0)
        // 1.0 is written as 1, as JavaScript and Firebase show it; 1.5 stays 1.5.
        #expect(try compact("1.0") == "1")
        #expect(try compact("[1.5,2.0,1e21]") == "[1.5,2,1e+21]")
    }

    @Test("escapes and unicode", arguments: [
        (#""a\"b\\c\/d""#, "a\"b\\c/d"), (#""\b\f\n\r\t""#, "\u{8}\u{c}\n\r\t"), (#""\u00e9\u65e5""#, "é日"),
        (#""\ud83d\ude00""#, "😀"), ("\"é日😀\"", "é日😀"), (#""\u0000""#, "\u{0}"),
    ])
    func strings(text: String, expected: String) throws {
        #expect(try parse(text) == .string(expected))
    }

    @Test("malformed input is refused", arguments: [
        "", " ", "{", "}", "[", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{'a':1}", "tru", "nul", "True",
        "NaN", "Infinity", "-Infinity", "01", "-", "1.", ".5", "1e", "1e+", "+1", "0x10", "\"unterminated", "\"bad \\x\"",
        "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "1 2", "{} {}", "[1] x", "\"tab\there\"",
        "\"line\nbreak\"", "1e400", "-1e400", "{\"a\":}", "[\"a\":1]", "/* c */ 1",
    ])
    func malformed(text: String) {
        #expect(throws: DataError.self) { try parse(text) }
    }

    @Test func invalidUTF8IsRefused() {
        let bytes: [UInt8] = [0x22, 0xC3, 0x28, 0x22]
        #expect(throws: DataError.self) { try JSONParser.parse(bytes) }
        let overlong: [UInt8] = [0x22, 0xC0, 0xAF, 0x22]
        #expect(throws: DataError.self) { try JSONParser.parse(overlong) }
    }

    @Test("invalid keys name their position", arguments: ["a.b", "a$b", "a#b", "a[b", "a]b", "a/b", "", "a\u{7f}", ".x"])
    func invalidKeys(key: String) throws {
        let document = "{\n  \"ok\": 1,\n  \(JSONWriter.string(.string(key))): 2\n}"
        let error = #expect(throws: DataError.self) { try parse(document) }
        #expect(error?.message == "Invalid data; couldn't parse key beginning at 3:3. Key value can't be empty or contain $ # [ ] / or .")
    }

    @Test func controlCharacterKeysAreRefused() {
        #expect(throws: DataError.self) { try parse(#"{"a\u0001":1}"#) }
    }

    @Test func keyLengthLimit() throws {
        let ok = String(repeating: "k", count: 768)
        #expect(try parse("{\"\(ok)\":1}").child(ChildKey(ok)) == .int(1))
        let long = String(repeating: "k", count: 769)
        #expect(throws: DataError.self) { try parse("{\"\(long)\":1}") }
    }

    @Test func nestingLimit() throws {
        func nested(_ depth: Int) -> String {
            String(repeating: "{\"a\":", count: depth) + "1" + String(repeating: "}", count: depth)
        }
        #expect(try parse(nested(32)).at(Path(keys: Array(repeating: "a", count: 32))) == .int(1))
        #expect(throws: DataError.self) { try parse(nested(33)) }
        // Deep arrays count too, and a pathological nesting fails fast without recursion trouble.
        #expect(throws: DataError.self) { try parse(String(repeating: "[", count: 100_000)) }
        // The limit shrinks with the depth of the write location.
        let options = JSONParser.Options(maxDepth: 2)
        #expect(throws: DataError.self) { try JSONParser.parse(Array(nested(3).utf8), options: options) }
    }

    @Test func stringSizeLimit() throws {
        let options = JSONParser.Options(maxStringBytes: 10)
        #expect(try JSONParser.parse(Array("\"0123456789\"".utf8), options: options).node == .string("0123456789"))
        #expect(throws: DataError.self) { try JSONParser.parse(Array("\"01234567890\"".utf8), options: options) }
        #expect(throws: DataError.self) { try JSONParser.parse(Array("\"0123456789\\n\"".utf8), options: options) }
    }

    @Test func nullsAndEmptyObjectsVanish() throws {
        #expect(try parse("null") == .null)
        #expect(try parse("{}") == .null)
        #expect(try parse("[]") == .null)
        #expect(try parse(#"{"a":null,"b":{},"c":{"d":{}}}"#) == .null)
        #expect(try compact(#"{"a":null,"b":1,"c":[]}"#) == #"{"b":1}"#)
    }

    @Test func arraysBecomeIndexedObjects() throws {
        let node = try parse(#"["x",null,"z"]"#)
        #expect(node.children.keys == ["0", "2"])
        #expect(JSONWriter.string(node) == #"["x",null,"z"]"#)
        // maxKey < 2 × count: 2 children with max key 4 is not an array; with max key 3 it is.
        #expect(try compact(#"[1,null,null,null,5]"#) == #"{"0":1,"4":5}"#)
        #expect(try compact(#"[1,null,null,4]"#) == #"[1,null,null,4]"#)
    }

    @Test func duplicateKeysLastWins() throws {
        #expect(try compact(#"{"a":1,"b":2,"a":3}"#) == #"{"a":3,"b":2}"#)
        #expect(try compact(#"{"a":1,"a":null}"#) == "null")
        let many = (0..<40).map { "\"k\($0 % 30)\":\($0)" }.joined(separator: ",")
        let node = try parse("{\(many)}")
        #expect(node.children.count == 30)
        #expect(node.child("k5") == .int(35))
        #expect(node.child("k29") == .int(29))
    }

    @Test func keysAreOrderedTheFirebaseWay() throws {
        let node = try parse(#"{"b":1,"10":1,"a":1,"2":1,"-5":1,"007":1,"7":1,"2147483648":1}"#)
        #expect(node.children.keys.map(\.string) == ["-5", "2", "7", "007", "10", "2147483648", "a", "b"])
    }

    @Test func prioritiesAndDotValue() throws {
        let node = try parse(#"{"a":{".value":"Tom",".priority":1.5},"b":{"c":1,".priority":"p"}}"#)
        #expect(node.child("a").priority == .number(1.5))
        #expect(node.child("a").withoutPriority == .string("Tom"))
        #expect(node.child("b").priority == .string("p"))
        #expect(JSONWriter.string(node) == #"{"a":"Tom","b":{"c":1}}"#)
        #expect(JSONWriter.string(node, options: .init(export: true))
            == #"{"a":{".value":"Tom",".priority":1.5},"b":{"c":1,".priority":"p"}}"#)
        #expect(throws: DataError.self) { try parse(#"{".value":1,"x":2}"#) }
        #expect(throws: DataError.self) { try parse(#"{".priority":true,"x":2}"#) }
        #expect(throws: DataError.self) { try parse(#"{".other":1}"#) }
    }

    @Test func serverValues() throws {
        let parsed = try JSONParser.parse(
            Array(#"{"t":{".sv":"timestamp"},"n":{"c":{".sv":{"increment":2}}}}"#.utf8), options: .init(serverTime: 1234))
        #expect(parsed.node.child("t") == .int(1234))
        #expect(parsed.increments.count == 1)
        #expect(parsed.increments[0].relativePath == Path(keys: ["n", "c"]))
        let current = try parse(#"{"n":{"c":40}}"#)
        #expect(JSONWriter.string(try parsed.resolved(against: current)) == #"{"n":{"c":42},"t":1234}"#)
        #expect(throws: DataError.self) { try parse(#"{".sv":"nope"}"#) }
        #expect(throws: DataError.self) { try parse(#"{".sv":{"increment":"1"}}"#) }
        #expect(throws: DataError.self) { try parse(#"{".sv":{"decrement":1}}"#) }
        #expect(throws: DataError.self) { try parse(#"{".sv":"timestamp","x":1}"#) }
    }

    @Test func updateBodies() throws {
        let entries = try Array(#"{"a/b":1,"c":{"d":2},"e/.priority":3,"f":null}"#.utf8).withUnsafeBytes {
            try JSONParser.parseUpdate($0, locationDepth: 0)
        }
        #expect(entries.map(\.path.description) == ["/a/b", "/c", "/e", "/f"])
        #expect(entries.map(\.isPriority) == [false, false, true, false])
        #expect(entries[3].value.node == .null)
        for bad in ["[1]", "1", "{\"a.b\":1}", "{\"a/$x\":1}", "{"] {
            #expect(throws: DataError.self) {
                try Array(bad.utf8).withUnsafeBytes { try JSONParser.parseUpdate($0, locationDepth: 0) }
            }
        }
        // The depth limit counts the location, the key path and the value.
        #expect(throws: DataError.self) {
            try Array(#"{"a/b":{"c":1}}"#.utf8).withUnsafeBytes { try JSONParser.parseUpdate($0, locationDepth: 30) }
        }
    }
}

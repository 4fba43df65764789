@testable import HearthCore
import Testing

@Suite("The SDKs' node hash (transactions)")
struct NodeHashTests {
    /// The reference's test vectors (wire protocol §4.3), computed with an independent
    /// implementation and checked against Node's crypto.
    static let vectors: [(json: String, hash: String)] = [
        ("null", ""),
        ("1", "YPVfR2bXt/lcDjiQZ8pOkAd3qkQ="),
        ("0", "7ysMph9WPitGP7poMnMHMVPtUlI="),
        ("5", "w28swksk9+tXf5jEdS9R5oSFAv8="),
        ("true", "E5z61QM0lN/U2WsOnusszCTkR8M="),
        (#""hello""#, "z6sRbrNLwbHX5fdjpvsTtWgXUFc="),
        (#""""#, "Ki0Xy0V6morg0TO3Sxi/jwugYDQ="),
        (#"{"a":1,"b":"x"}"#, "jRI9dwRS9sb4SWm8uuoN7+xBk4g="),
        (#"{".value":5,".priority":2}"#, "lfDzIw5VmUgOXT41FhmDyk7Dveo="),
        (#"{"b":{".value":1,".priority":"z"},"a":{".value":2,".priority":1},"c":3}"#, "vIhHk0MaZOjYThr3YU/Wcr2e8UM="),
        (#"{"10":1,"9":2,"a":3,"09":4}"#, "mgjYhNA//Dw3S63sUrI7d4jveJg="),
    ]

    @Test(arguments: vectors)
    func matchesTheReference(json: String, hash: String) throws {
        let node = try JSONParser.parse(Array(json.utf8)).node
        #expect(NodeHash.of(node) == hash)
    }

    @Test func theTextSpellsTheTree() throws {
        func text(_ json: String) throws -> String? {
            NodeHash.text(of: try JSONParser.parse(Array(json.utf8)).node)
        }
        #expect(try text("1") == "number:3ff0000000000000")
        #expect(try text("1.0") == "number:3ff0000000000000", "integers and doubles hash alike")
        #expect(try text("-0.0") == "number:8000000000000000")
        #expect(try text("false") == "boolean:false")
        #expect(try text(#"{".value":5,".priority":2}"#) == "priority:number:4000000000000000:number:4014000000000000")
        #expect(try text(#"{".value":"v",".priority":"p"}"#) == "priority:string:p:string:v")
        #expect(try text(#"{"a":1,"b":"x"}"#) == ":a:YPVfR2bXt/lcDjiQZ8pOkAd3qkQ=:b:" + NodeHash.of(.string("x")))
        #expect(try text("null") == nil)
        // An array is an object keyed 0, 1, ...
        #expect(try NodeHash.of(JSONParser.parse(Array(#"[1,"x"]"#.utf8)).node)
            == NodeHash.of(JSONParser.parse(Array(#"{"0":1,"1":"x"}"#.utf8)).node))
    }

    @Test func childrenGoInPriorityOrderThenKeyOrder() throws {
        func hash(_ json: String) throws -> String { NodeHash.of(try JSONParser.parse(Array(json.utf8)).node) }
        // Equal priorities keep key order; numbers before strings; none first.
        let text = NodeHash.text(of: try JSONParser.parse(Array(
            #"{"d":{".value":1,".priority":"a"},"c":{".value":1,".priority":2},"b":{".value":1,".priority":2},"a":1}"#.utf8)).node)
        let keys = text?.split(separator: ":").enumerated().filter { $0.offset % 2 == 0 }.map { String($0.element) }
        #expect(keys == ["a", "b", "c", "d"])
        #expect(try hash(#"{"x":{".value":1,".priority":10},"y":{".value":1,".priority":9}}"#)
            != hash(#"{"x":{".value":1,".priority":9},"y":{".value":1,".priority":10}}"#))
    }
}

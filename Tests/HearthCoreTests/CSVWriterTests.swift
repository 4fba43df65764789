import HearthCore
import Testing

private func csv(_ json: String, chunkBytes: Int = 1 << 20) throws -> String {
    let node = try JSONParser.parse(Array(json.utf8)).node
    var bytes: [UInt8] = []
    CSVWriter.write(node.children, chunkBytes: chunkBytes) { bytes += $0 }
    return String(decoding: bytes, as: UTF8.self)
}

@Suite("CSV export")
struct CSVWriterTests {
    @Test func oneRowPerChildAndOneColumnPerLeafPath() throws {
        #expect(try csv(#"{"b":{"x":1,"y":"two"},"a":{"x":3}}"#) == "key,x,y\r\na,3,\r\nb,1,two\r\n")
    }

    @Test func nestedAndSparseChildrenAndArrays() throws {
        let text = try csv(#"{"d1":{"net":{"mac":"0c","ip":"10.0.0.1"}},"d2":{"tags":["p","q"],"ok":true},"d3":5}"#)
        #expect(text == "key,net/ip,net/mac,ok,tags/0,tags/1,.value\r\n"
            + "d1,10.0.0.1,0c,,,,\r\nd2,,,true,p,q,\r\nd3,,,,,,5\r\n")
    }

    @Test func fieldsAreQuotedByRFC4180() throws {
        let text = try csv(#"{"k":{"a":"one, two","b":"say \"hi\"","c":"line\nbreak","d":"cr\rhere","e":"plain"}}"#)
        #expect(text == "key,a,b,c,d,e\r\nk,\"one, two\",\"say \"\"hi\"\"\",\"line\nbreak\",\"cr\rhere\",plain\r\n")
    }

    @Test func keysAndHeadersAreQuotedToo() throws {
        #expect(try csv(#"{"a,b":{"x y":1}}"#) == "key,x y\r\n\"a,b\",1\r\n")
    }

    @Test func numbersBooleansAndUnicode() throws {
        let text = try csv(#"{"k":{"d":1.5,"i":-7,"big":12345678901234,"t":true,"f":false,"u":"日本 🔥 é"}}"#)
        #expect(text == "key,big,d,f,i,t,u\r\nk,12345678901234,1.5,false,-7,true,日本 🔥 é\r\n")
    }

    @Test func emptyAndLeafNodesHaveNoRows() throws {
        #expect(try csv("null") == "key\r\n")
        #expect(try csv("5") == "key\r\n")
    }

    @Test func aHugeNodeIsWrittenInChunks() throws {
        var children = ContiguousArray<ChildEntry>()
        for index in 0..<100_000 {
            let key = ChildKey(String(format: "r%06d", index))
            children.append(ChildEntry(key: key, value: .object(ChildMap(sortedEntries: [
                ChildEntry(key: "n", value: .int(Int64(index))), ChildEntry(key: "s", value: .string("v\(index % 7)")),
            ]))))
        }
        let map = ChildMap(sortedEntries: children)
        var chunks = 0
        var largest = 0
        var rows = 0
        var total = 0
        CSVWriter.write(map, chunkBytes: 64 * 1024) { chunk in
            chunks += 1
            largest = max(largest, chunk.count)
            rows += chunk.filter { $0 == 10 }.count
            total += chunk.count
        }
        #expect(rows == 100_001)
        #expect(chunks > 10)
        #expect(largest < 64 * 1024 + 1024)
    }
}

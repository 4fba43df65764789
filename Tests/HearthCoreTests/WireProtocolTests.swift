@testable import HearthCore
import Testing

/// Decodes `text` as one client message.
private func decode(_ text: String, now: Int64 = 1_000) throws -> WireMessage {
    try Array(text.utf8).withUnsafeBytes { try WireMessage.decode($0, now: now) }
}

/// The action of a request that decoded.
private func action(_ text: String) throws -> WireAction {
    guard case .request(_, .success(let action)) = try decode(text) else {
        Issue.record("\(text) did not decode to an action")
        throw DataError("no action")
    }
    return action
}

/// The query of a listen whose body is `{"p":"/a","q":<query>,"t":1}`.
private func query(_ json: String) throws -> Query? {
    let message = try decode(#"{"t":"d","d":{"r":1,"a":"q","b":{"p":"/a","q":\#(json),"t":1,"h":""}}}"#)
    guard case .request(_, let result) = message, case .listen(let listen) = try result.get() else { throw DataError("not a listen") }
    return listen.query
}

private func bound(_ value: Node, key: String? = nil) -> Query.Bound {
    Query.Bound(value: IndexValue(value), key: key.map { ChildKey($0) }, node: value)
}

@Suite("The realtime protocol's messages")
struct WireProtocolTests {
    @Test func membersAreRangesOfTheirValues() throws {
        let text = #" {"t" : "d", "d": {"r":1,"a":"p","b":{"p":"/x","d":[1,{"y":"}"}]}}, "t":"c"} "#
        let bytes = Array(text.utf8)
        let members = try bytes.withUnsafeBytes { try JSONMembers($0, range: 0..<$0.count) }
        #expect(members.members.map(\.key) == ["t", "d", "t"])
        let value = { (range: Range<Int>) in String(decoding: bytes[range], as: UTF8.self) }
        #expect(members["t"].map(value) == #""c""#, "the last of a repeated key")
        #expect(members["d"].map(value) == #"{"r":1,"a":"p","b":{"p":"/x","d":[1,{"y":"}"}]}}"#)
    }

    @Test(arguments: [
        "", "{", "{}x", #"{"a"}"#, #"{"a":}"#, #"{"a":1,}"#, #"{"a":01}"#, #"{"a":1.}"#, #"{"a":"\x"}"#, #"{"a":tru}"#,
        "{\"a\":\"\u{01}\"}", #"{"a":[1,]}"#, #"{"a":"unterminated}"#, "[1]", #"{"a":-}"#,
        String(repeating: "{\"a\":", count: 70) + "1" + String(repeating: "}", count: 70),
    ])
    func malformedObjectsAreRefused(text: String) {
        #expect(throws: DataError.self) {
            _ = try Array(text.utf8).withUnsafeBytes { try JSONMembers($0, range: 0..<$0.count) }
        }
    }

    @Test func controlMessagesAndRequestsDecode() throws {
        guard case .control("p") = try decode(#"{"t":"c","d":{"t":"p","d":{}}}"#) else {
            Issue.record("a ping")
            return
        }
        guard case .request(7, .success(.stats)) = try decode(#"{"t":"d","d":{"r":7,"a":"s","b":{"c":{"sdk.js.1-1-5":1}}}}"#)
        else {
            Issue.record("stats with keys that are not valid data keys")
            return
        }
        guard case .put(let path, let value, let hash, let priorityOnly) = try action(
            #"{"t":"d","d":{"r":1,"a":"p","b":{"p":"/a/b","d":{"x":{".sv":"timestamp"}},"h":"abc="}}}"#)
        else {
            Issue.record("a put")
            return
        }
        #expect(path == (try Path(validating: "a/b")))
        #expect(value.node == .object(ChildMap(sortedEntries: [ChildEntry(key: "x", value: .int(1_000))])))
        #expect(hash == "abc=")
        #expect(!priorityOnly)
        guard case .put(let priorityPath, _, nil, true) = try action(#"{"t":"d","d":{"r":2,"a":"p","b":{"p":"a/.priority","d":5}}}"#)
        else {
            Issue.record("a setPriority")
            return
        }
        #expect(priorityPath == (try Path(validating: "a")))
        guard case .auth("owner", .authVariable(let auth)) = try action(
            #"{"t":"d","d":{"r":3,"a":"gauth","b":{"cred":"owner","authvar":{"uid":"u1"}}}}"#)
        else {
            Issue.record("gauth with authvar")
            return
        }
        #expect(auth.child("uid") == .string("u1"))
        guard case .auth(_, .anonymous) = try action(#"{"t":"d","d":{"r":4,"a":"auth","b":{"cred":"t","noauth":true}}}"#)
        else {
            Issue.record("noauth")
            return
        }
    }

    @Test func aBadBodyKeepsItsRequestNumber() throws {
        for text in [
            #"{"t":"d","d":{"r":9,"a":"p","b":{"p":"/a.b","d":1}}}"#,
            #"{"t":"d","d":{"r":9,"a":"p","b":{"d":1}}}"#,
            #"{"t":"d","d":{"r":9,"a":"m","b":{"p":"/a","d":5}}}"#,
            #"{"t":"d","d":{"r":9,"a":"q","b":{"p":"/a","t":"seven"}}}"#,
        ] {
            guard case .request(9, .failure) = try decode(text) else {
                Issue.record("\(text) should be request 9 with an error")
                continue
            }
        }
        // Without a request number there is nothing to answer: the envelope is refused.
        for text in [#"{"t":"d","d":{"a":"p"}}"#, #"{"t":"x","d":{}}"#, #"{"d":{}}"#, #"{"t":"d","d":{"r":"1","a":"s"}}"#] {
            #expect(throws: DataError.self, "\(text)") { _ = try decode(text) }
        }
    }

    @Test func queriesMapOntoRestsBounds() throws {
        #expect(try query(#"{"i":"score"}"#) == nil, "an ordering alone filters nothing")
        var expected = Query(orderBy: .child(try Path(validating: "score")))
        expected.startAfter = bound(.int(2))
        expected.limitToFirst = 3
        #expect(try query(#"{"i":"score","sp":2,"sn":"[MAX_NAME]","sin":false,"l":3,"vf":"l"}"#) == expected)
        #expect(try query(#"{"i":"score","sp":2,"sn":"[MAX_KEY]","l":3,"vf":"l"}"#) == expected)
        expected.startAfter = nil
        expected.startAt = bound(.int(2), key: "k")
        #expect(try query(#"{"i":"score","sp":2,"sn":"k","l":3}"#) == expected)

        var end = Query(orderBy: .value)
        end.endBefore = bound(.string("m"))
        end.limitToLast = 2
        #expect(try query(#"{"i":".value","ep":"m","en":"[MIN_NAME]","ein":false,"l":2,"vf":"r"}"#) == end)
        #expect(try query(#"{"i":".value","ep":"m","en":"[MIN_NAME]","l":2,"vf":"r"}"#) == end)

        var equal = Query(orderBy: .priority)
        equal.startAt = bound(.int(1))
        equal.endAt = bound(.int(1))
        equal.equalTo = bound(.int(1))
        #expect(try query(#"{"sp":1,"ep":1}"#) == equal)

        var key = Query(orderBy: .key)
        key.startAfter = bound(.string("10"))
        #expect(try query(#"{"i":".key","sp":"10","sin":false}"#) == key)

        for bad in [#"{"i":".key","sp":1}"#, #"{"i":"a","sp":{"x":1}}"#, #"{"sp":true}"#, #"{"l":-1}"#, #"{"l":2,"vf":"x"}"#,
            #"{"i":"a.b","l":1}"#]
        {
            #expect(throws: DataError.self, "\(bad)") { _ = try query(bad) }
        }
    }

    @Test func longMessagesSplitIntoACountAndSlicesThatJoinBack() throws {
        let short = Array(#"{"t":"d"}"#.utf8)
        #expect(WireFrames.split(short).map(Array.init) == [short])
        let long = Array(("\"" + String(repeating: "é", count: 9000) + String(repeating: "x", count: 20000) + "\"").utf8)
        let frames = WireFrames.split(long)
        #expect(String(decoding: frames[0], as: UTF8.self) == String(frames.count - 1))
        for slice in frames.dropFirst() {
            #expect(slice.count <= WireFrames.sliceSize)
            #expect(String(validating: slice, as: UTF8.self) != nil, "a slice is cut between characters")
        }
        var assembler = WireFrameAssembler(maxMessageBytes: 1 << 20)
        var joined: [UInt8]?
        for frame in frames {
            if case .message(let message) = try assembler.receive(Array(frame)) { joined = message }
        }
        #expect(joined == long)
    }

    @Test func theAssemblerIgnoresKeepAlivesAndBoundsMessages() throws {
        var assembler = WireFrameAssembler(maxMessageBytes: 10)
        #expect(try assembler.receive(Array("0".utf8)) == .pending)
        #expect(try assembler.receive(Array("{}".utf8)) == .message(Array("{}".utf8)))
        #expect(try assembler.receive(Array("2".utf8)) == .pending)
        #expect(try assembler.receive(Array("abcdef".utf8)) == .pending)
        #expect(throws: DataError.self) { _ = try assembler.receive(Array("ghijkl".utf8)) }
        var fresh = WireFrameAssembler(maxMessageBytes: 10)
        #expect(throws: DataError.self) { _ = try fresh.receive(Array(String(repeating: "x", count: 11).utf8)) }
        // Seven digits is not a count (the SDKs' counts have at most six).
        #expect(try fresh.receive(Array("1234567".utf8)) == .message(Array("1234567".utf8)))
    }

    @Test func pushesCarryPrioritiesAndAbsolutePaths() throws {
        let old = try JSONParser.parse(Array(#"{"a":{"b":1,"c":2}}"#.utf8)).node
        let location = try Path(validating: "a")
        let set = Change(kind: .set, path: try Path(validating: "a/b"), mutations: [.set(try Path(validating: "a/b"), .int(5))])
        #expect(WirePush.event(at: location, for: set, old: old, new: set.applied(to: old)) == .data(try Path(validating: "a/b"), .int(5)))
        let priority = Change(kind: .set, path: location, mutations: [.setPriority(location, .number(3))])
        let prioritized = priority.applied(to: old)
        #expect(WirePush.event(at: location, for: priority, old: old, new: prioritized) == .data(location, prioritized.at(location)),
            "a priority change alone is pushed (SSE would not show it)")
        let update = Change(
            kind: .update, path: location,
            mutations: [.set(try Path(validating: "a/b"), .int(7)), .set(try Path(validating: "a/d/e"), .string("x"))])
        #expect(WirePush.event(at: .root, for: update, old: old, new: update.applied(to: old)) == .merge(location, [
            WirePush.MergeChild(key: "b", value: .int(7)), WirePush.MergeChild(key: "d/e", value: .string("x")),
        ]))
        let same = Change(kind: .set, path: try Path(validating: "a/b"), mutations: [.set(try Path(validating: "a/b"), .int(1))])
        #expect(WirePush.event(at: location, for: same, old: old, new: old) == nil)
        let encoded = String(decoding: WirePush.data(location, .int(1).with(priority: .string("p"))).encoded(tag: 4), as: UTF8.self)
        #expect(encoded == #"{"t":"d","d":{"a":"d","b":{"p":"a","d":{".value":1,".priority":"p"},"t":4}}}"#)
    }
}

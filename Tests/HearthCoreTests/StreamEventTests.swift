import HearthCore
import Testing

private func node(_ json: String) throws -> Node {
    try JSONParser.parse(Array(json.utf8)).node
}

private func path(_ text: String) throws -> Path {
    try Path(validating: text)
}

/// The event a listener at `listened` gets when `change` turns `before` into the tree after it.
private func event(at listened: String, _ change: Change, on before: Node) throws -> StreamEvent? {
    StreamEvent.event(at: try path(listened), for: change, old: before, new: change.applied(to: before))
}

private func set(_ at: String, _ json: String) throws -> Change {
    let location = try path(at)
    return Change(kind: .set, path: location, mutations: [.set(location, try node(json))])
}

private func update(_ at: String, _ entries: [(String, String)]) throws -> Change {
    let location = try path(at)
    return Change(kind: .update, path: location, mutations: try entries.map { .set(location.appending(try path($0.0)), try node($0.1)) })
}

private func frame(_ event: StreamEvent?, id: UInt64 = 7) -> String {
    String(decoding: event?.frame(id: id) ?? [], as: UTF8.self)
}

@Suite("Stream events")
struct StreamEventTests {
    let tree: Node

    init() throws {
        tree = try node(#"{"a":{"b":{"c":1},"d":2},"e":3}"#)
    }

    @Test func aWriteAtTheLocationIsAPutOfTheWholeValue() throws {
        #expect(frame(try event(at: "a", try set("a", #"{"x":1}"#), on: tree))
            == "event: put\ndata: {\"path\":\"/\",\"data\":{\"x\":1}}\nid: 7\n\n")
    }

    @Test func aWriteBelowIsAPutAtTheRelativePath() throws {
        #expect(frame(try event(at: "a", try set("a/b/c", "5"), on: tree))
            == "event: put\ndata: {\"path\":\"/b/c\",\"data\":5}\nid: 7\n\n")
        #expect(frame(try event(at: "/", try set("a/b", "null"), on: tree))
            == "event: put\ndata: {\"path\":\"/a/b\",\"data\":null}\nid: 7\n\n")
    }

    @Test func aWriteAboveSendsOnlyTheListenedPart() throws {
        #expect(frame(try event(at: "a/b", try set("/", #"{"a":{"b":{"c":9}}}"#), on: tree))
            == "event: put\ndata: {\"path\":\"/\",\"data\":{\"c\":9}}\nid: 7\n\n")
        // Unchanged at the listened location: no event.
        #expect(try event(at: "a/b", try set("a", #"{"b":{"c":1},"d":5}"#), on: tree) == nil)
    }

    @Test func unrelatedWritesSendNothing() throws {
        #expect(try event(at: "a", try set("e", "4"), on: tree) == nil)
        #expect(try event(at: "a/b", try set("a/d", "4"), on: tree) == nil)
    }

    @Test func aPatchIsOnePatchEvent() throws {
        let change = try update("a", [("b/c", "5"), ("d", "null"), ("n", #"{"m":1}"#)])
        #expect(frame(try event(at: "a", change, on: tree))
            == "event: patch\ndata: {\"path\":\"/\",\"data\":{\"b/c\":5,\"d\":null,\"n\":{\"m\":1}}}\nid: 7\n\n")
        // Listened above the PATCH location: the patch is at the PATCH's relative path.
        #expect(frame(try event(at: "/", change, on: tree))
            == "event: patch\ndata: {\"path\":\"/a\",\"data\":{\"b/c\":5,\"d\":null,\"n\":{\"m\":1}}}\nid: 7\n\n")
        // Listened below it: only the children inside, relative to the listened location.
        #expect(frame(try event(at: "a/b", change, on: tree))
            == "event: patch\ndata: {\"path\":\"/\",\"data\":{\"c\":5}}\nid: 7\n\n")
        // A PATCH that replaces the listened location itself.
        #expect(frame(try event(at: "a/n", change, on: tree))
            == "event: put\ndata: {\"path\":\"/\",\"data\":{\"m\":1}}\nid: 7\n\n")
    }

    @Test func stringsAreEscapedAndPathsEncoded() throws {
        let tricky = try event(at: "/", try set("k\u{e9}y", #""a\"b\n""#), on: tree)
        #expect(frame(tricky) == "event: put\ndata: {\"path\":\"/k\u{e9}y\",\"data\":\"a\\\"b\\n\"}\nid: 7\n\n")
    }

    @Test func otherEvents() {
        #expect(String(decoding: StreamEvent.frame(event: "keep-alive", data: "null"), as: UTF8.self)
            == "event: keep-alive\ndata: null\n\n")
    }
}

extension StreamEventTests {
    @Test func aWriteThatChangesNothingSendsNothing() throws {
        #expect(try event(at: "a", try set("a/b/c", "1"), on: tree) == nil)
        #expect(try event(at: "/", try set("x/y", "null"), on: tree) == nil)
    }
}

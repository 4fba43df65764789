import HearthCore
import HearthTestSupport
import Testing

/// The test support's `text/event-stream` parser: fields, comments, line endings, events
/// without data, and chunks split anywhere.
@Suite("SSE parser")
struct SSEParserTests {
    /// Parses `text` in one chunk.
    func parse(_ text: String) -> [SSEEvent] {
        var parser = SSEParser()
        return parser.feed(Array(text.utf8))
    }

    @Test func hearthFramesParseToTheirEventDataAndID() throws {
        var parser = SSEParser()
        var bytes = StreamEvent.put(try Path(validating: "a/b"), .string("x y")).frame(id: 7)
        bytes += StreamEvent.patch(.root, [("c/d", .int(1)), ("e", .null)]).frame(id: 8)
        bytes += StreamEvent.frame(event: "keep-alive", data: "null")
        bytes += StreamEvent.frame(event: "cancel", data: "\"Permission denied\"")
        #expect(
            parser.feed(bytes) == [
                SSEEvent(event: "put", data: #"{"path":"/a/b","data":"x y"}"#, id: "7"),
                SSEEvent(event: "patch", data: #"{"path":"/","data":{"c/d":1,"e":null}}"#, id: "8"),
                SSEEvent(event: "keep-alive", data: "null"),
                SSEEvent(event: "cancel", data: "\"Permission denied\""),
            ])
        #expect(parser.lastEventID == "8")
        #expect(parse(String(decoding: StreamEvent.put(.root, .null).frame(id: 0), as: UTF8.self)).first?.sequence == 0)
    }

    @Test func dataLinesAreJoinedWithNewlines() {
        #expect(parse("data: a\ndata: b\ndata:\ndata:  c\n\n") == [SSEEvent(data: "a\nb\n\n c")])
        // One space after the colon is dropped, no more; no space is fine.
        #expect(parse("data:x\n\ndata:  y \n\n") == [SSEEvent(data: "x"), SSEEvent(data: " y ")])
        // Colons after the first belong to the value.
        #expect(parse("data: {\"a\":1}\n\n") == [SSEEvent(data: #"{"a":1}"#)])
    }

    @Test func eventTypeDefaultsToMessageAndUnknownFieldsAreIgnored() {
        #expect(
            parse("event: put\ndata: 1\n\ndata: 2\nfoo: bar\nEvent: nope\n\n") == [
                SSEEvent(event: "put", data: "1"), SSEEvent(event: "message", data: "2"),
            ])
        // The type does not carry over to the next event.
        #expect(parse("event: a\ndata: 1\n\ndata: 2\n\n").map(\.event) == ["a", "message"])
    }

    @Test func commentsAreIgnored() {
        #expect(parse(": hello\nevent: x\n: in the middle\ndata: 1\n:\n\n") == [SSEEvent(event: "x", data: "1")])
        // A block of comments alone is no event, and does not end the next one early.
        #expect(parse(":one\n:two\n\ndata: 2\n\n") == [SSEEvent(data: "2")])
    }

    @Test func lineEndingsMayBeCRLFLFOrCR() {
        let expected = [
            SSEEvent(event: "a", data: "1\n2", id: "1"), SSEEvent(event: "b", data: "3", id: "2"),
            SSEEvent(event: "c", data: "4", id: "3"),
        ]
        #expect(parse("event: a\r\ndata: 1\r\ndata: 2\r\nid: 1\r\n\r\nevent: b\rdata: 3\rid: 2\r\revent: c\ndata: 4\nid: 3\n\n") == expected)
        // CR LF is one line end, not two: it does not end the event.
        #expect(parse("data: 1\r\ndata: 2\r\n\r\n") == [SSEEvent(data: "1\n2")])
        // LF CR is two.
        #expect(parse("data: 1\n\rdata: 2\n\n") == [SSEEvent(data: "1"), SSEEvent(data: "2")])
    }

    @Test func eventsWithoutDataAreNotDispatchedButTheirIDIsKept() {
        var parser = SSEParser()
        #expect(parser.feed(Array("event: ping\nid: 5\n\n".utf8)) == [])
        #expect(parser.lastEventID == "5")
        // The id belonged to the event that was not dispatched: the next one has none.
        #expect(parser.feed(Array("data: 1\n\n".utf8)) == [SSEEvent(data: "1")])
        #expect(parser.lastEventID == "5")
        // A `data` field with an empty value (with or without a colon) is data.
        #expect(parser.feed(Array("event: e\ndata\n\ndata:\n\n".utf8)) == [SSEEvent(event: "e", data: ""), SSEEvent(data: "")])
        // Blank lines alone are nothing.
        #expect(parser.feed(Array("\n\n\r\n\r".utf8)) == [])
    }

    @Test func idsAndRetry() {
        var parser = SSEParser()
        #expect(parser.lastEventID == "")
        #expect(parser.feed(Array("id: 41\nretry: 1500\ndata: a\n\n".utf8)) == [SSEEvent(data: "a", id: "41")])
        #expect(parser.retry == 1500)
        // An id with NUL is ignored; so is a retry that is not a number.
        #expect(parser.feed(Array("id: 4\u{0}2\nretry: 1x\ndata: b\n\n".utf8)) == [SSEEvent(data: "b")])
        #expect(parser.lastEventID == "41")
        #expect(parser.retry == 1500)
        // An empty id resets the last id.
        #expect(parser.feed(Array("id\ndata: c\n\n".utf8)) == [SSEEvent(data: "c", id: "")])
        #expect(parser.lastEventID == "")
    }

    @Test func aLeadingByteOrderMarkIsSkippedOnlyAtTheStart() {
        #expect(parse("\u{FEFF}data: 1\n\n") == [SSEEvent(data: "1")])
        // Later, it is part of a field name that means nothing.
        #expect(parse("data: 1\n\n\u{FEFF}data: 2\n\n") == [SSEEvent(data: "1")])
        // Split inside the mark.
        var parser = SSEParser()
        let bytes = Array("\u{FEFF}data: 3\n\n".utf8)
        #expect(parser.feed(bytes[..<1]) == [])
        #expect(parser.feed(bytes[1..<2]) == [])
        #expect(parser.feed(bytes[2...]) == [SSEEvent(data: "3")])
    }

    @Test func anUnfinishedEventWaitsForItsBlankLine() {
        var parser = SSEParser()
        #expect(parser.feed(Array("event: put\ndata: 1\n".utf8)) == [])
        #expect(parser.feed(Array("data: 2".utf8)) == [])
        #expect(parser.feed(Array("\n".utf8)) == [])
        #expect(parser.feed(Array("\n".utf8)) == [SSEEvent(event: "put", data: "1\n2")])
    }

    /// A stream with every kind of line end, multi-byte characters, comments and an event
    /// without data, split into two chunks at every byte offset, and fed one byte at a time:
    /// always the same events.
    @Test func chunksMaySplitTheStreamAnywhere() {
        let text = "\u{FEFF}: comment\r\nevent: put\r\ndata: {\"path\":\"/héllo\",\"data\":\"🔥\"}\r\nid: 12\r\n\r\n"
            + "event: patch\rdata: a\rdata: b\rid: 13\r\r"
            + "event: nothing\nid: 14\n\n"
            + "event: keep-alive\ndata: null\n\n"
            + "data: last\r\n\r\n"
        let expected = [
            SSEEvent(event: "put", data: #"{"path":"/héllo","data":"🔥"}"#, id: "12"),
            SSEEvent(event: "patch", data: "a\nb", id: "13"),
            SSEEvent(event: "keep-alive", data: "null"),
            SSEEvent(event: "message", data: "last"),
        ]
        let bytes = Array(text.utf8)
        #expect(parse(text) == expected)
        for split in 0...bytes.count {
            var parser = SSEParser()
            let events = parser.feed(bytes[..<split]) + parser.feed(bytes[split...])
            #expect(events == expected, "split at byte \(split)")
            #expect(parser.lastEventID == "14", "split at byte \(split)")
        }
        var parser = SSEParser()
        var events: [SSEEvent] = []
        for byte in bytes { events += parser.feed(CollectionOfOne(byte)) }
        #expect(events == expected)
    }
}

import Foundation
import Testing

@testable import HearthCore

/// Long polling's two encodings: the segments a browser sends (web-safe base64 chunks,
/// numbered across the connection) and the JavaScript the server answers.
@Suite("Long polling")
struct LongPollTests {
    typealias Segment = LongPollSegments.Segment

    /// `text` as the SDK sends it: web-safe base64 of the UTF-8, `.` padding, cut into chunks
    /// of `size` characters numbered from `first`.
    func segments(_ text: String, from first: Int, size: Int = 1840) -> [Segment] {
        let encoded = Data(text.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: ".")
        var chunks: [Substring] = []
        var rest = Substring(encoded)
        while !rest.isEmpty {
            chunks.append(rest.prefix(size))
            rest = rest.dropFirst(size)
        }
        return chunks.enumerated().map { Segment(number: first + $0.offset, total: chunks.count, data: $0.element) }
    }

    @Test func segmentsAreJoinedInNumberOrderWhateverOrderTheyArriveIn() throws {
        var joiner = LongPollSegments(maxMessageBytes: 1 << 20)
        let first = #"{"t":"d","d":{"r":1,"a":"s","b":{"c":{}}}}"#
        let second = String(repeating: "é€𝄞~?>", count: 400)
        let a = segments(first, from: 0, size: 16)
        let b = segments(second, from: a.count, size: 100)
        #expect(try joiner.receive(Array(b.reversed())).isEmpty, "nothing before the first message is complete")
        #expect(try joiner.receive(Array(a.dropFirst())).isEmpty)
        let messages = try joiner.receive([a[0]])
        #expect(messages.map { String(decoding: $0, as: UTF8.self) } == [first, second])
        #expect(joiner.next == a.count + b.count)
        #expect(try joiner.receive([a[0]]).isEmpty, "a chunk already joined is ignored")
    }

    @Test func pollParametersBecomeSegmentsInIndexOrder() throws {
        let parameters = ["seg0": "4", "ts0": "2", "d0": "ab", "seg1": "5", "ts1": "2", "d1": "cd", "ser": "9", "seg3": "1"]
        #expect(try LongPollSegments.segments(in: parameters) == [
            Segment(number: 4, total: 2, data: "ab"), Segment(number: 5, total: 2, data: "cd"),
        ])
        #expect(throws: DataError.self) { try LongPollSegments.segments(in: ["seg0": "1", "d0": "x"]) }
        #expect(throws: DataError.self) { try LongPollSegments.segments(in: ["seg0": "-1", "ts0": "1", "d0": "x"]) }
        #expect(throws: DataError.self) { try LongPollSegments.segments(in: ["seg0": "1", "ts0": "0", "d0": "x"]) }
    }

    @Test func badSegmentsAreRefused() {
        var small = LongPollSegments(maxMessageBytes: 100)
        #expect(throws: DataError.self, "larger than a message may be") {
            try small.receive(segments(String(repeating: "x", count: 200), from: 0, size: 64))
        }
        var joiner = LongPollSegments(maxMessageBytes: 1000)
        #expect(throws: DataError.self, "too far ahead") { try joiner.receive([Segment(number: 1_000_000, total: 1, data: "e30.")]) }
        #expect(throws: DataError.self, "not base64") { try joiner.receive([Segment(number: 0, total: 1, data: "!!!!")]) }
        var disagreeing = LongPollSegments(maxMessageBytes: 1000)
        #expect(throws: DataError.self, "counts that disagree") {
            try disagreeing.receive([Segment(number: 0, total: 2, data: "e3"), Segment(number: 1, total: 3, data: "0.")])
        }
    }

    @Test func webSafeBase64WithOrWithoutPaddingDecodes() throws {
        #expect(try LongPollSegments.decode("e30.") == Array("{}".utf8))
        #expect(try LongPollSegments.decode("e30") == Array("{}".utf8))
        #expect(try LongPollSegments.decode("-_8.") == [0xFB, 0xFF])
    }

    @Test func theStartResponseDefinesTheCallbacksAndCarriesTheHello() {
        let script = String(decoding: LongPollScript.start(callback: 3, id: "id1", password: "pw1", hello: Array("{\"h\":1}".utf8)), as: UTF8.self)
        #expect(script == """
            function pLPCommand(c, a1, a2, a3, a4) {
            parent.window["pLPCommand3"] && parent.window["pLPCommand3"](c, a1, a2, a3, a4);
            }
            function pRTLPCB(pN, data) {
            parent.window["pRTLPCB3"] && parent.window["pRTLPCB3"](pN, data);
            }
            pLPCommand('start','id1','pw1');
            pRTLPCB(0,[{"h":1}]);

            """)
    }

    @Test func messagesAreNumberedAndLineSeparatorsEscaped() {
        let messages = [Array("{\"d\":\"a\u{2028}b\u{2029}c\"}".utf8), Array("{}".utf8)]
        let script = String(decoding: LongPollScript.messages(number: 4, messages, closing: true), as: UTF8.self)
        #expect(script == "pRTLPCB(4,[{\"d\":\"a\\u2028b\\u2029c\"},{}]);\npLPCommand('close',4);\n")
        #expect(String(decoding: LongPollScript.close(after: nil), as: UTF8.self) == "pLPCommand('close');\n")
    }
}

import Foundation
import HTTPTypes
import HearthCore
import HearthStorage
import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Testing

@testable import HearthServer

/// Requests answered on the event loop without a task, and the ones handed on to Hummingbird:
/// which are which, the answer's headers, and the order of pipelined requests.
@Suite("Inline answers")
struct InlineAnswerHandlerTests {
    /// Answers `/inline` with `{"a":1}`; declines everything else. Counts its calls.
    final class Answerer: @unchecked Sendable {
        var calls: [String] = []

        func answer(_ request: Request) -> BufferedResponse? {
            calls.append(request.uri.path)
            guard request.uri.path == "/inline" else { return nil }
            var headers = HTTPFields()
            headers[.contentType] = "application/json; charset=utf-8"
            return BufferedResponse(status: .ok, headers: headers, body: ByteBuffer(string: "{\"a\":1}"))
        }
    }

    func channel(_ answerer: Answerer) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        let handler = InlineAnswerHandler(serverName: "Hearth", logger: Logger(label: "test")) { request, _ in
            answerer.answer(request)
        }
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9000)).wait()
        return channel
    }

    func head(_ path: String, method: HTTPRequest.Method = .get, headers: HTTPFields = [:]) -> HTTPRequestPart {
        .head(HTTPRequest(method: method, scheme: "http", authority: "x", path: path, headerFields: headers))
    }

    func send(_ channel: EmbeddedChannel, _ path: String, method: HTTPRequest.Method = .get, headers: HTTPFields = [:])
        throws
    {
        try channel.writeInbound(head(path, method: method, headers: headers))
        try channel.writeInbound(HTTPRequestPart.end(nil))
    }

    /// The parts passed on to Hummingbird, described as `head <path>`, `body`, `end`.
    func handedOn(_ channel: EmbeddedChannel) throws -> [String] {
        var parts: [String] = []
        while let part = try channel.readInbound(as: HTTPRequestPart.self) {
            switch part {
            case .head(let head): parts.append("head \(head.path ?? "")")
            case .body: parts.append("body")
            case .end: parts.append("end")
            }
        }
        return parts
    }

    /// The answers written, each as its head and body text.
    func answers(_ channel: EmbeddedChannel) throws -> [(HTTPResponse, String)] {
        var answers: [(HTTPResponse, String)] = []
        var head: HTTPResponse?
        var body = ""
        while let part = try channel.readOutbound(as: HTTPResponsePart.self) {
            switch part {
            case .head(let value): head = value
            case .body(let buffer): body += String(buffer: buffer)
            case .end:
                answers.append((head!, body))
                head = nil
                body = ""
            }
        }
        return answers
    }

    @Test func aRequestThatNeedsNoWaitingIsAnsweredHere() throws {
        let answerer = Answerer()
        let channel = try channel(answerer)
        try send(channel, "/inline")
        #expect(try handedOn(channel) == [])
        let answers = try answers(channel)
        try #require(answers.count == 1)
        let (head, body) = answers[0]
        #expect(head.status == .ok)
        #expect(body == "{\"a\":1}")
        #expect(head.headerFields[.contentLength] == "7")
        #expect(head.headerFields[.server] == "Hearth")
        #expect(head.headerFields[.date]?.hasSuffix(" GMT") == true)
        #expect(head.headerFields[.contentType] == "application/json; charset=utf-8")
    }

    @Test func aRequestTheResponderDeclinesIsHandedOnWhole() throws {
        let answerer = Answerer()
        let channel = try channel(answerer)
        try send(channel, "/stream")
        #expect(answerer.calls == ["/stream"])
        #expect(try handedOn(channel) == ["head /stream", "end"])
        #expect(try answers(channel).isEmpty)
    }

    @Test func writesAndRequestsWithBodiesAreHandedOnWithoutAsking() throws {
        let answerer = Answerer()
        let channel = try channel(answerer)
        try channel.writeInbound(head("/inline", method: .post))
        try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: "{}")))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try handedOn(channel) == ["head /inline", "body", "end"])
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        _ = try answers(channel)
        // A GET that carries a body is handed on too: the body is not Hearth's to drop.
        try channel.writeInbound(head("/inline"))
        try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: "x")))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try handedOn(channel) == ["head /inline", "body", "end"])
        #expect(answerer.calls == [])
    }

    @Test func requestsThatChangeTheConnectionAreHandedOn() throws {
        let answerer = Answerer()
        let channel = try channel(answerer)
        try send(channel, "/inline", headers: [.connection: "close"])
        #expect(try handedOn(channel) == ["head /inline", "end"])
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        try send(channel, "/inline", headers: [.upgrade: "websocket"])
        #expect(try handedOn(channel) == ["head /inline", "end"])
        #expect(answerer.calls == [])
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let answerer = Answerer()
        let channel = try channel(answerer)
        // A write is handed on; the read pipelined behind it must wait for its answer, so it
        // is handed on as well rather than answered first.
        try channel.writeInbound(head("/write", method: .put))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        try send(channel, "/inline")
        #expect(try handedOn(channel) == ["head /write", "end", "head /inline", "end"])
        #expect(try answers(channel).isEmpty)
        #expect(answerer.calls == [])
        // Hummingbird answers both; after that, reads are answered here again.
        for _ in 0..<2 {
            try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
            try channel.writeOutbound(HTTPResponsePart.end(nil))
        }
        #expect(try answers(channel).count == 2)
        try send(channel, "/inline")
        #expect(try handedOn(channel) == [])
        #expect(try answers(channel).map(\.1) == ["{\"a\":1}"])
    }

    @Test func afterShutdownBeginsEveryRequestIsHandedOn() throws {
        let answerer = Answerer()
        let channel = try channel(answerer)
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try send(channel, "/inline")
        #expect(try handedOn(channel) == ["head /inline", "end"])
        #expect(answerer.calls == [])
    }

    @Test func whileTheClientIsNotReadingRequestsAreHandedOn() throws {
        let answerer = Answerer()
        let channel = try channel(answerer)
        channel.isWritable = false
        try send(channel, "/inline")
        #expect(try handedOn(channel) == ["head /inline", "end"])
        #expect(answerer.calls == [])
    }

    @Test func aRequestHeldWhenShutdownBeginsIsHandedOn() throws {
        let answerer = Answerer()
        let channel = try channel(answerer)
        try channel.writeInbound(head("/inline"))
        #expect(try handedOn(channel) == [])
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try handedOn(channel) == ["head /inline", "end"])
        #expect(answerer.calls == [])
    }

    /// With Hearth's own responder and middleware: reads, health and refusals are answered
    /// here; tokens to verify are handed on.
    @Test func hearthsResponderAnswersReadsHereAndHandsOnTheRest() async throws {
        let storage = StorageEngine(directory: nil)
        let configuration = ServerConfiguration(
            port: 0, rules: try RuleSet.parse(#"{"rules": {".read": true, ".write": true}}"#),
            adminToken: "inline-test-admin-token")
        let rules = RulesRegistry(fallback: configuration.fallbackRules, storage: storage)
        let responder = HearthResponder(
            configuration: configuration, namespaces: NamespaceRegistry { try storage.open(namespace: $0) }, rules: rules,
            streams: StreamRegistry(), storage: storage, logger: Logger(label: "test"))
        _ = try await responder.service.write(
            WriteRequest(path: try Path(validating: "/x"), operation: .set(ParsedNode(node: .int(42)))),
            in: "default", as: .admin, now: 0)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            InlineAnswerHandler(responder: withMiddleware(responder), serverName: "Hearth", logger: Logger(label: "test")))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9000)).wait()

        try send(channel, "/x.json")
        try send(channel, "/.health")
        try send(channel, "/x")
        try send(channel, "/x.json?auth=inline-test-admin-token&print=pretty")
        #expect(try handedOn(channel) == [])
        let answers = try answers(channel)
        #expect(answers.map(\.0.status.code) == [200, 200, 404, 200])
        #expect(answers.map(\.1) == ["42", #"{"status":"ok"}"#, answers[2].1, "42\n"])
        #expect(answers[2].1.contains("append .json"))
        for (head, _) in answers {
            #expect(head.headerFields[RequestLogMiddleware.requestIDHeader] != nil)
            #expect(head.headerFields[.accessControlExposeHeaders] == "X-Request-Id, ETag")
        }

        // (Streams are answered here too, in a task of their own: InlineStreamTests.)
        try send(channel, "/x.json", headers: [.authorization: "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"])
        #expect(try handedOn(channel) == ["head /x.json", "end"])
    }

    @Test func theDateHeaderIsAnIMFFixdate() {
        var seconds = time_t(1_796_665_615)  // 2026-12-07 17:46:55 UTC, a Monday
        #expect(HTTPDate.format(&seconds) == "Mon, 07 Dec 2026 17:46:55 GMT")
        var early = time_t(0)
        #expect(HTTPDate.format(&early) == "Thu, 01 Jan 1970 00:00:00 GMT")
    }

    @Test func requestIdsAreHexAndNeverRepeat() {
        let ids = (0..<1000).map { _ in RequestIdentifier.next() }
        #expect(Set(ids).count == 1000)
        for id in ids {
            #expect(id.count > 16 && id.count <= 32)
            #expect(id.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        }
        // The counter is the last 16 digits: consecutive ids differ by one there.
        let first = UInt64(ids[0].suffix(16), radix: 16)!
        let second = UInt64(ids[1].suffix(16), radix: 16)!
        #expect(second &- first == 1)
    }
}

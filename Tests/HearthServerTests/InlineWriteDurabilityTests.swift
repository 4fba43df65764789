import Foundation
import HTTPTypes
import HearthCore
import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Synchronization
import Testing

@testable import HearthServer
@testable import HearthStorage

/// Writes answered without a task, through Hearth's own responder and a real log: the answer
/// leaves only after the write's sync, a failed log answers 507 and writing resumes, and a
/// write with a credential to verify, or to a namespace not open yet, still runs in a task.
@Suite("Inline writes and the log")
struct InlineWriteDurabilityTests {
    let storage: StorageEngine
    let responder: HearthResponder
    /// How many writes were answered in a task.
    let tasks = TaskCounter()

    final class TaskCounter: Sendable {
        let count = Atomic<Int>(0)
        var value: Int { count.load(ordering: .relaxed) }
    }

    init() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hearth-inline-\(UUID().uuidString)").path
        storage = StorageEngine(directory: directory, options: StorageOptions(fsync: .always))
        let configuration = ServerConfiguration(
            port: 0, rules: try RuleSet.parse(#"{"rules": {".read": true, ".write": true}}"#),
            adminToken: "inline-test-admin-token")
        let rules = RulesRegistry(fallback: configuration.fallbackRules, storage: storage)
        let storage = self.storage
        responder = HearthResponder(
            configuration: configuration, namespaces: NamespaceRegistry { try storage.open(namespace: $0) }, rules: rules,
            streams: StreamRegistry(), storage: storage, logger: Logger(label: "test"))
    }

    func channel() async throws -> NIOAsyncTestingChannel {
        let channel = NIOAsyncTestingChannel()
        let stack = withMiddleware(responder)
        let tasks = self.tasks
        try await channel.testingEventLoop.executeInContext {
            // As the server's handler, counting the writes answered in a task.
            let handler = InlineAnswerHandler(
                serverName: "Hearth", logger: Logger(label: "test"),
                answerWrite: { request, context in
                    tasks.count.add(1, ordering: .relaxed)
                    return (try? await stack.chain(to: request, context: context)) ?? Response(status: .internalServerError)
                },
                startWrite: { request, body, context, deliver in
                    stack.writeWithoutWaiting(request, body: body, context: context, deliver: deliver)
                },
                answer: { request, context in stack.answerWithoutWaiting(request, context: context) })
            try channel.pipeline.syncOperations.addHandler(handler)
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9000))
        return channel
    }

    @Test func aWriteIsAnsweredOnlyAfterItsSync() async throws {
        defer { storage.close() }
        let channel = try await channel()
        try await channel.writePost("/warmup.json", body: "1")
        #expect(try await channel.nextAnswer().0 == 200)
        let database = try #require(responder.namespaces.existing("default"))
        let held = storage.observer.holdSyncs()
        // Whatever fails below, the flusher is let go (else closing the storage would wait).
        defer { held.release() }
        try await channel.writePost("/things.json", body: #"{"a":1}"#)
        #expect(try await held.waitForSync() == 1, "the write reached its sync")
        try await Task.sleep(for: .milliseconds(200))
        try await channel.testingEventLoop.executeInContext {}
        #expect(try await channel.readOutbound(as: HTTPResponsePart.self) == nil, "answered before its sync")
        #expect(database.root.child("things") == .null, "visible to readers before its sync")
        held.release()
        let (status, body) = try await channel.nextAnswer()
        #expect(status == 200)
        #expect(body.hasPrefix(#"{"name":"-"#))
        #expect(database.root.child("things").children.count == 1, "visible when answered")
        #expect(tasks.value == 1, "answered without a task (but the first, which opened the namespace)")
    }

    @Test func aFailedLogAnswers507AndWritingResumes() async throws {
        defer { storage.close() }
        let channel = try await channel()
        try await channel.writePost("/a.json", body: "1")
        #expect(try await channel.nextAnswer().0 == 200)
        let log = try #require(storage.stores.all.first?.log)
        log.injectWriteFailures(1, errno: ENOSPC)
        try await channel.writePost("/b.json", body: "2")
        let (status, body) = try await channel.nextAnswer()
        #expect(status == 507)
        #expect(body.contains("Insufficient storage"))
        try await channel.writePost("/c.json", body: "3")
        #expect(try await channel.nextAnswer().0 == 200)
        let database = try #require(responder.namespaces.existing("default"))
        #expect(JSONWriter.string(database.root.child("b")) == "null")
        #expect(database.root.child("c").children.count == 1)
        #expect(tasks.value == 1, "answered without a task (but the first, which opened the namespace)")
    }

    @Test func aWriteWithATokenToVerifyIsAnsweredInATask() async throws {
        defer { storage.close() }
        let channel = try await channel()
        // Not a token this server can verify: the task's answer is the refusal.
        try await channel.writePost("/t.json", body: "1", headers: [.authorization: "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"])
        #expect(try await channel.nextAnswer().0 == 401)
        #expect(try await channel.readInbound(as: HTTPRequestPart.self) == nil, "not handed on")
        #expect(tasks.value == 1)
    }

    @Test func aWriteToANamespaceNotOpenYetIsAnsweredInATask() async throws {
        defer { storage.close() }
        let channel = try await channel()
        // The admin may create namespaces; creating one writes files, off the event loop.
        try await channel.writePost("/n.json?ns=fresh&auth=inline-test-admin-token", body: "1")
        #expect(try await channel.nextAnswer().0 == 200)
        #expect(tasks.value == 1)
        try await channel.writePost("/n.json?ns=fresh&auth=inline-test-admin-token", body: "2")
        #expect(try await channel.nextAnswer().0 == 200)
        #expect(tasks.value == 1, "the second write, once the namespace is open, without a task")
        #expect(responder.namespaces.existing("fresh")?.root.child("n").children.count == 2)
    }
}

import HearthCore
import HearthStorage
import Logging
import Testing

@testable import HearthServer

@Suite("On-disconnect writes in the database service")
struct OnDisconnectServiceTests {
    static let presenceRules = #"""
        {"rules": {"presence": {".read": true, "$uid": {".write": "auth != null && auth.uid == $uid"}}}}
        """#

    func service() throws -> DatabaseService {
        let storage = StorageEngine(directory: nil)
        let configuration = ServerConfiguration(port: 0, rules: try RuleSet.parse(Self.presenceRules))
        let rules = RulesRegistry(fallback: configuration.fallbackRules, storage: storage)
        return DatabaseService(
            configuration: configuration, namespaces: NamespaceRegistry { try storage.open(namespace: $0) }, rules: rules,
            streams: StreamRegistry(), logger: Logger(label: "test"))
    }

    func user(_ uid: String) -> Caller {
        Caller(bypassesRules: false, isAdmin: false, auth: .object(ChildMap(sortedEntries: [ChildEntry(key: "uid", value: .string(uid))])))
    }

    func parsed(_ text: String, time: Int64 = 1000) throws -> ParsedNode {
        try JSONParser.parse(Array(text.utf8), options: .init(serverTime: time))
    }

    func value(_ service: DatabaseService, _ path: String) throws -> String {
        guard case .value(let node) = try service.read(
            DatabaseService.Read(namespace: "default", path: try Path(validating: path)), as: .admin, now: 0)
        else { return "?" }
        return JSONWriter.string(node)
    }

    @Test func registeredWritesFireOnceWhenTheSessionEndsWithServerValuesOfThatTime() async throws {
        let service = try service()
        let alice = SessionID(1)
        let presence = try Path(validating: "presence/alice")
        try service.onDisconnect(
            .set(try parsed(#"{"online":false,"at":{".sv":"timestamp"}}"#)), at: presence, in: "default", session: alice,
            as: user("alice"), now: 1000)
        _ = try await service.write(
            WriteRequest(path: presence, operation: .set(try parsed(#"{"online":true}"#))), in: "default", as: user("alice"),
            now: 1000)
        #expect(try value(service, "presence/alice") == #"{"online":true}"#)
        // Another session's end fires nothing of alice's.
        await service.sessionEnded(SessionID(2), now: 2000)
        #expect(try value(service, "presence/alice") == #"{"online":true}"#)
        await service.sessionEnded(alice, now: 9000)
        #expect(try value(service, "presence/alice") == #"{"at":9000,"online":false}"#)
        // They fire once.
        _ = try await service.write(
            WriteRequest(path: presence, operation: .set(try parsed("true"))), in: "default", as: user("alice"), now: 9500)
        await service.sessionEnded(alice, now: 10_000)
        #expect(try value(service, "presence/alice") == "true")
    }

    @Test func theRulesJudgeAWriteWhenItIsRegistered() async throws {
        let service = try service()
        let bob = SessionID(3)
        #expect(throws: PermissionDenied.self) {
            try service.onDisconnect(
                .set(try parsed("false")), at: try Path(validating: "presence/alice"), in: "default", session: bob,
                as: user("bob"), now: 1000)
        }
        #expect(throws: PermissionDenied.self) {
            try service.onDisconnect(
                .set(try parsed("false")), at: try Path(validating: "elsewhere"), in: "default", session: bob, as: .anonymous,
                now: 1000)
        }
        await service.sessionEnded(bob, now: 2000)
        #expect(try value(service, "") == "null", "nothing refused was stored")
        // Only the admin names a namespace that does not exist.
        #expect(throws: ServiceError.self) {
            try service.onDisconnect(
                .set(try parsed("1")), at: try Path(validating: "presence/bob"), in: "elsewhere", session: bob,
                as: user("bob"), now: 1000)
        }
    }

    @Test func everyOperationKeepsToTheNamespacePolicy() async throws {
        let service = try service()
        let elsewhere = try Path(validating: "presence/bob")
        await #expect(throws: ServiceError.self) {
            _ = try await service.write(
                WriteRequest(path: elsewhere, operation: .set(try parsed("1"))), in: "elsewhere", as: user("bob"), now: 0)
        }
        #expect(throws: ServiceError.self) {
            _ = try service.read(DatabaseService.Read(namespace: "elsewhere", path: elsewhere), as: user("bob"), now: 0)
        }
        await #expect(throws: ServiceError.self) {
            _ = try await service.listen(
                namespace: "elsewhere", path: elsewhere, query: nil, as: user("bob"), client: "c", from: nil, now: 0)
        }
        #expect(service.namespaces.names.isEmpty, "nothing was created")
        // The admin creates it.
        _ = try await service.write(
            WriteRequest(path: elsewhere, operation: .set(try parsed("1"))), in: "elsewhere", as: .admin, now: 0)
        #expect(service.namespaces.names == ["elsewhere"])
    }

    @Test func aCancelledWriteDoesNotFireAndUpdatesFireAsOneChange() async throws {
        let service = try service()
        let carol = SessionID(4)
        let entries = try Array(#"{"carol/online":false,"carol/last":{".sv":"timestamp"}}"#.utf8).withUnsafeBytes { bytes in
            try JSONParser.parseUpdate(bytes, locationDepth: 1, options: .init(serverTime: 1000))
        }
        try service.onDisconnect(
            .update(entries), at: try Path(validating: "presence"), in: "default", session: carol, as: user("carol"), now: 1000)
        try service.onDisconnect(
            .cancel, at: try Path(validating: "presence/carol/online"), in: "default", session: carol, as: user("carol"),
            now: 1000)
        await service.sessionEnded(carol, now: 3000)
        #expect(try value(service, "presence/carol") == #"{"last":3000}"#)
    }
}

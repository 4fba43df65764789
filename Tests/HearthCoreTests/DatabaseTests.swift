import HearthCore
import Synchronization
import Testing

@Suite("Database writer")
struct DatabaseTests {
    func parsed(_ text: String, time: Int64 = 0) throws -> ParsedNode {
        try JSONParser.parse(Array(text.utf8), options: .init(serverTime: time))
    }

    @Test func concurrentIncrementsAreSerialised() async throws {
        let database = Database(name: "t")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    _ = try await database.write(
                        WriteRequest(path: Path(keys: ["n"]), operation: .set(try self.parsed(#"{".sv":{"increment":1}}"#))))
                }
            }
            try await group.waitForAll()
        }
        #expect(database.root.child("n") == .int(200))
        #expect(database.snapshot.sequence == 200)
    }

    /// The change feed's subscriber used to be a bare closure in a `Mutex`, and every read of it
    /// grew a chain of re-abstraction thunks: after ~100,000 publications, calling or releasing
    /// it overflowed the stack (the soak run's server crashed at exit). 150,000 writes, then the
    /// database and its subscriber are released.
    @Test func theChangeFeedStaysCheapAfterManyWrites() async throws {
        var database: Database? = Database(name: "t")
        let seen = Mutex(0)
        _ = database!.observe { changes in seen.withLock { $0 += changes.count } }
        let value = try parsed("1")
        for _ in 0..<150_000 {
            _ = try await database!.write(WriteRequest(path: Path(keys: ["n"]), operation: .set(value)))
        }
        #expect(seen.withLock { $0 } == 150_000)
        database = nil
    }

    @Test func pushKeysFollowWriteOrder() async throws {
        let database = Database(name: "t", clock: { 1_700_000_000_000 })
        var names: [String] = []
        for index in 0..<50 {
            let outcome = try await database.write(
                WriteRequest(path: Path(keys: ["list"]), operation: .push(try parsed("\(index)"))))
            guard case .written(_, .pushed(let name)) = outcome else { Issue.record("no name"); return }
            names.append(name.string)
        }
        #expect(names == names.sorted())
        let values = database.root.child("list").children.map { $0.value }
        #expect(values == (0..<50).map { Node.int(Int64($0)) })
    }

    @Test func aTransactionWritesOnlyIfTheHashStillMatches() async throws {
        let database = Database(name: "t")
        let path = Path(keys: ["counter"])
        // No data hashes to "".
        var outcome = try await database.write(
            WriteRequest(path: path, operation: .set(try parsed("1")), condition: .hash("")))
        guard case .written = outcome else { Issue.record("refused: \(outcome)"); return }
        outcome = try await database.write(WriteRequest(path: path, operation: .set(try parsed("2")), condition: .hash("")))
        guard case .conditionFailed(let current) = outcome else { Issue.record("written: \(outcome)"); return }
        #expect(current == .int(1))
        outcome = try await database.write(
            WriteRequest(path: path, operation: .set(try parsed("2")), condition: .hash(NodeHash.of(.int(1)))))
        guard case .written = outcome else { Issue.record("refused: \(outcome)"); return }
        #expect(database.root.child("counter") == .int(2))
    }

    @Test func ifMatch() async throws {
        let database = Database(name: "t")
        let path = Path(keys: ["a"])
        var outcome = try await database.write(WriteRequest(path: path, operation: .set(try parsed("1")), ifMatch: "null_etag"))
        guard case .written = outcome else { Issue.record("null_etag should match an empty location"); return }
        outcome = try await database.write(WriteRequest(path: path, operation: .set(try parsed("2")), ifMatch: "null_etag"))
        guard case .conditionFailed(let current) = outcome else { Issue.record("stale etag must fail"); return }
        #expect(current == .int(1))
        outcome = try await database.write(WriteRequest(path: path, operation: .set(try parsed("2")), ifMatch: ETag.of(.int(1))))
        guard case .written = outcome else { Issue.record("current etag should match"); return }
        #expect(database.root.child("a") == .int(2))
    }

    /// A log that refuses appends, like a full disk.
    struct FailingLog: WriteLog {
        struct DiskFull: Error {}
        func append(_ record: LogRecord, pushTime: Int64) throws -> UInt64 { throw DiskFull() }
        func waitUntilDurable(_ sequence: UInt64, ticket: UInt64) async throws {}
        func recover(from failure: any Error) -> UInt64? { nil }
    }

    @Test func aRefusedAppendChangesNothing() async throws {
        let database = Database(name: "t", root: .int(7), log: FailingLog())
        await #expect(throws: FailingLog.DiskFull.self) {
            try await database.write(WriteRequest(path: Path(keys: ["a"]), operation: .set(try parsed("1"))))
        }
        #expect(database.root == .int(7))
        #expect(database.snapshot.sequence == 0)
    }
}

@Suite("Database recovery from log failures")
struct DatabaseLogFailureTests {
    /// A log that failed while idle: it refuses appends until the writer lets it recover.
    final class IdleFailedLog: WriteLog, @unchecked Sendable {
        struct Failed: Error {}
        var failed = true
        var recoveries = 0
        func append(_ record: LogRecord, pushTime: Int64) throws -> UInt64 {
            if failed { throw Failed() }
            return 0
        }
        func waitUntilDurable(_ sequence: UInt64, ticket: UInt64) async throws {}
        func recover(from failure: any Error) -> UInt64? {
            guard failed, failure is Failed else { return nil }
            failed = false
            recoveries += 1
            return 0
        }
    }

    @Test func aRefusedAppendLetsTheLogRecoverAndIsMadeThen() async throws {
        let log = IdleFailedLog()
        let database = Database(name: "t", log: log)
        let request = WriteRequest(path: Path(keys: ["a"]), operation: .set(try JSONParser.parse(Array("1".utf8))))
        // Nothing was appended when the log refused: the write is made once it has recovered.
        _ = try await database.write(request)
        #expect(log.recoveries == 1)
        #expect(database.root.child("a") == .int(1))
    }

    /// A log that fails every append and never recovers (its storage is gone).
    final class DeadLog: WriteLog, @unchecked Sendable {
        struct Gone: Error {}
        var appends = 0
        func append(_ record: LogRecord, pushTime: Int64) throws -> UInt64 {
            appends += 1
            throw Gone()
        }
        func waitUntilDurable(_ sequence: UInt64, ticket: UInt64) async throws {}
        func recover(from failure: any Error) -> UInt64? { nil }
    }

    @Test func aLogThatCannotRecoverIsTriedTwiceAndTheWriteFails() async throws {
        let log = DeadLog()
        let database = Database(name: "t", root: .int(7), log: log)
        let request = WriteRequest(path: Path(keys: ["a"]), operation: .set(try JSONParser.parse(Array("1".utf8))))
        await #expect(throws: DeadLog.Gone.self) { try await database.write(request) }
        #expect(log.appends == 2, "once more in case another writer had just recovered it, no more")
        #expect(database.root == .int(7) && database.snapshot.sequence == 0)
    }
}

@Suite("Database after a lost commit answer")
struct DatabaseLostAnswerTests {
    /// A log whose commit answer was lost: the wait fails, yet recovery finds every record
    /// durable (PostgreSQL committed the batch before the connection broke); or finds the
    /// store ahead of the writer (someone else wrote there).
    final class LostAnswerLog: WriteLog, @unchecked Sendable {
        struct ConnectionBroke: Error {}
        var appended: UInt64 = 0
        var ahead: UInt64 = 0
        func append(_ record: LogRecord, pushTime: Int64) throws -> UInt64 {
            appended = record.sequence
            return 0
        }
        func waitUntilDurable(_ sequence: UInt64, ticket: UInt64) async throws { throw ConnectionBroke() }
        func recover(from failure: any Error) -> UInt64? { appended + ahead }
    }

    @Test func writesTheStoreKeptBecomeVisibleWithoutAnotherWrite() async throws {
        let database = Database(name: "t", log: LostAnswerLog())
        let request = WriteRequest(path: Path(keys: ["a"]), operation: .set(try JSONParser.parse(Array("1".utf8))))
        await #expect(throws: LostAnswerLog.ConnectionBroke.self) { try await database.write(request) }
        #expect(database.snapshot.sequence == 1, "the store holds it: readers see it")
        #expect(database.root.child("a") == .int(1))
    }

    @Test func aStoreAheadOfTheWriterChangesNothing() async throws {
        let log = LostAnswerLog()
        log.ahead = 5
        let database = Database(name: "t", root: .int(7), log: log)
        let request = WriteRequest(path: Path(keys: ["a"]), operation: .set(try JSONParser.parse(Array("1".utf8))))
        await #expect(throws: LostAnswerLog.ConnectionBroke.self) { try await database.write(request) }
        #expect(database.snapshot.sequence == 0 && database.root == .int(7), "nothing of what the writer holds is published")
    }
}

@Suite("Database following a log written elsewhere")
struct DatabaseFollowTests {
    func record(_ sequence: UInt64, _ key: String, _ value: Int64) -> LogRecord {
        LogRecord(sequence: sequence, change: Change(kind: .set, path: Path(keys: [ChildKey(key)]), mutations: [
            .set(Path(keys: [ChildKey(key)]), .int(value)),
        ]))
    }

    @Test func followedRecordsArePublishedInOrderAndOlderOnesSkipped() {
        let database = Database(name: "t")
        #expect(database.applyFollowed([record(1, "a", 1), record(2, "b", 2)]))
        #expect(database.snapshot.sequence == 2)
        #expect(database.root.child("a") == .int(1) && database.root.child("b") == .int(2))
        #expect(database.applyFollowed([record(2, "b", 99), record(3, "c", 3)]), "records already applied are skipped")
        #expect(database.snapshot.sequence == 3 && database.root.child("b") == .int(2))
    }

    @Test func aSnapshotJumpSetsTheWholeTree() {
        let database = Database(name: "t")
        #expect(database.applyFollowed([record(1, "a", 1)]))
        let whole = LogRecord(sequence: 40, change: Change(kind: .set, path: .root, mutations: [
            .set(.root, .object(ChildMap(sortedEntries: [ChildEntry(key: "z", value: .int(26))]))),
        ]))
        #expect(database.applyFollowed([whole, record(41, "y", 25)]))
        #expect(database.snapshot.sequence == 41)
        #expect(database.root.child("a") == .null && database.root.child("z") == .int(26) && database.root.child("y") == .int(25))
    }
}

@Suite("Database on a log other nodes write too")
struct DatabaseSharedLogTests {
    /// A log where another node committed first: the first commit is refused (the fence),
    /// the recovery finds none of this node's records and returns the other node's, and
    /// the records appended again are committed.
    final class ContendedLog: WriteLog, @unchecked Sendable {
        struct Fenced: Error {}
        struct Discarded: Error {}
        let elsewhere: [LogRecord]
        var recovered = false
        var appended: [UInt64] = []
        var isShared: Bool { true }
        init(elsewhere: [LogRecord]) { self.elsewhere = elsewhere }
        func append(_ record: LogRecord, pushTime: Int64) throws -> UInt64 {
            appended.append(record.sequence)
            return recovered ? 1 : 0
        }
        func waitUntilDurable(_ sequence: UInt64, ticket: UInt64) async throws {
            guard ticket == 0 else { return }
            if recovered { throw Discarded() }
            throw Fenced()
        }
        func recover(from failure: any Error) -> UInt64? {
            guard !recovered, failure is Fenced else { return nil }
            recovered = true
            return 0
        }
        func recordsWrittenElsewhere(after sequence: UInt64) throws -> [LogRecord] {
            elsewhere.filter { $0.sequence > sequence }
        }
    }

    static func setting(_ key: String, to value: Int64, at sequence: UInt64) -> LogRecord {
        LogRecord(sequence: sequence, change: Change(kind: .set, path: Path(keys: [ChildKey(key)]), mutations: [
            .set(Path(keys: [ChildKey(key)]), .int(value)),
        ]))
    }

    static func set(_ key: String, _ json: String, ifMatch: String? = nil) throws -> WriteRequest {
        WriteRequest(path: Path(keys: [ChildKey(key)]), operation: .set(try JSONParser.parse(Array(json.utf8))), ifMatch: ifMatch)
    }

    @Test func aWriteFencedOutIsMadeAgainAfterTheOtherNodesRecords() async throws {
        let log = ContendedLog(elsewhere: [Self.setting("a", to: 1, at: 1), Self.setting("c", to: 3, at: 2)])
        let database = Database(name: "t", log: log)
        let outcome = try await database.write(try Self.set("b", "2"))
        guard case .written(let sequence, _) = outcome else { Issue.record("refused: \(outcome)"); return }
        #expect(sequence == 3, "committed after the other node's records")
        #expect(log.appended == [1, 3])
        #expect(database.snapshot.sequence == 3)
        #expect(database.root.child("a") == .int(1) && database.root.child("b") == .int(2) && database.root.child("c") == .int(3))
    }

    @Test func aConditionIsJudgedAgainstTheNewerState() async throws {
        let log = ContendedLog(elsewhere: [Self.setting("a", to: 1, at: 1)])
        let database = Database(name: "t", log: log)
        // Judged against "a is empty" here, but another node set it first.
        let outcome = try await database.write(try Self.set("a", "5", ifMatch: "null_etag"))
        guard case .conditionFailed(let current) = outcome else { Issue.record("written on a stale state: \(outcome)"); return }
        #expect(current == .int(1))
        #expect(log.appended == [1], "not appended again")
        #expect(database.root.child("a") == .int(1) && database.snapshot.sequence == 1)
    }

    @Test func pipelinedWritesFencedOutAreMadeAgainInTheirOrder() async throws {
        let log = ContendedLog(elsewhere: [Self.setting("a", to: 1, at: 1)])
        let database = Database(name: "t", log: log)
        let first = try database.submit(try Self.set("x", "1"))
        let second = try database.submit(try Self.set("x", "2"))
        _ = try await database.finish(first)
        _ = try await database.finish(second)
        #expect(log.appended == [1, 2, 2, 3], "both applied again, in their order, after the other node's record")
        #expect(database.root.child("x") == .int(2) && database.snapshot.sequence == 3)
    }
}

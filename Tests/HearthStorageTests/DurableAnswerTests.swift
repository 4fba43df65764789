import Foundation
import HearthCore
@testable import HearthStorage
import Synchronization
import Testing

/// Under `fsync always`, a write is answered only after the `fdatasync` that makes it durable:
/// with the sync held back, the write waits, unseen by readers; released, it is answered.
/// (A faster group commit must keep this; see issue 18.)
@Suite("Durable answers")
struct DurableAnswerTests {
    /// Whether the write was answered.
    final class Answered: Sendable {
        private let value = Atomic<Bool>(false)
        var isSet: Bool { value.load(ordering: .relaxed) }
        func set() { value.store(true, ordering: .relaxed) }
    }

    /// Writes `/a = 1` with syncs held (`start` starts it and returns what waits for its
    /// answer; `answered` says whether it was answered) and checks that it is answered, and
    /// seen by readers, only once the sync is let go.
    func expectAnsweredOnlyAfterSync(
        start: (Database, Answered) throws -> @Sendable () async throws -> Void
    ) async throws {
        let directory = temporaryDirectory()
        let engine = StorageEngine(directory: directory, options: StorageOptions(fsync: .always))
        defer { engine.close() }
        let database = try engine.open(namespace: "ns")
        let held = engine.observer.holdSyncs()
        // Whatever fails below, the flusher is let go (else closing the engine would wait).
        defer { held.release() }
        let answered = Answered()
        let waitForAnswer = try start(database, answered)
        // The flusher reaches the sync and is held there. (The bound is generous: with every
        // suite starting at once on two cores, the write's task waited over 10 s in one run.)
        #expect(try await held.waitForSync(deadline: .seconds(60)) == 1, "the write reached its sync")
        try await Task.sleep(for: .milliseconds(200))
        let answeredEarly = answered.isSet
        #expect(!answeredEarly, "answered before its sync")
        #expect(database.snapshot.sequence == 0 && database.root == .null, "visible to readers before its sync")
        held.release()
        try await waitForAnswer()
        let answeredAfter = answered.isSet
        #expect(answeredAfter)
        #expect(database.root.child("a") == .int(1), "visible when answered")
    }

    @Test func aWriteIsNotAnsweredBeforeItsSync() async throws {
        try await expectAnsweredOnlyAfterSync { database, answered in
            let write = Task {
                _ = try await database.write(WriteRequest(path: Path(keys: ["a"]), operation: .set(try parsed("1"))))
                answered.set()
            }
            return { try await write.value }
        }
    }

    /// The same without a task: the callback that answers a write read on an event loop
    /// (``Database/finish(_:then:)``) is called only after the sync.
    @Test func aWriteFinishedByCallbackIsNotAnsweredBeforeItsSync() async throws {
        try await expectAnsweredOnlyAfterSync { database, answered in
            let (done, finished) = AsyncStream<Void>.makeStream()
            let submitted = try database.submit(WriteRequest(path: Path(keys: ["a"]), operation: .set(try parsed("1"))))
            database.finish(submitted) { outcome in
                if case .success = outcome { answered.set() }
                finished.finish()
            }
            return { for await _ in done {} }
        }
    }
}

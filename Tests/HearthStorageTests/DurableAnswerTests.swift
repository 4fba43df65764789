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
    @Test func aWriteIsNotAnsweredBeforeItsSync() async throws {
        let directory = temporaryDirectory()
        let engine = StorageEngine(directory: directory, options: StorageOptions(fsync: .always))
        defer { engine.close() }
        let database = try engine.open(namespace: "ns")
        let held = engine.observer.holdSyncs()
        // Whatever fails below, the flusher is let go (else closing the engine would wait).
        defer { held.release() }
        let answered = Atomic<Bool>(false)
        let write = Task {
            _ = try await database.write(WriteRequest(path: Path(keys: ["a"]), operation: .set(try parsed("1"))))
            answered.store(true, ordering: .relaxed)
        }
        // The flusher reaches the sync and is held there. (The bound is generous: with every
        // suite starting at once on two cores, the write's task waited over 10 s in one run.)
        let reached = try await held.waitForSync(deadline: .seconds(60))
        #expect(reached == 1, "the write reached its sync")
        try await Task.sleep(for: .milliseconds(200))
        let answeredEarly = answered.load(ordering: .relaxed)
        #expect(!answeredEarly, "answered before its sync")
        #expect(database.snapshot.sequence == 0 && database.root == .null, "visible to readers before its sync")
        held.release()
        try await write.value
        let answeredAfter = answered.load(ordering: .relaxed)
        #expect(answeredAfter)
        #expect(database.root.child("a") == .int(1))
    }

    /// The same without a task: the callback that answers a write read on an event loop
    /// (``Database/finish(_:then:)``) is called only after the sync.
    @Test func aWriteFinishedByCallbackIsNotAnsweredBeforeItsSync() async throws {
        let directory = temporaryDirectory()
        let engine = StorageEngine(directory: directory, options: StorageOptions(fsync: .always))
        defer { engine.close() }
        let database = try engine.open(namespace: "ns")
        let held = engine.observer.holdSyncs()
        defer { held.release() }
        let answered = Atomic<Bool>(false)
        let (done, finished) = AsyncStream<Void>.makeStream()
        let submitted = try database.submit(WriteRequest(path: Path(keys: ["a"]), operation: .set(try parsed("1"))))
        database.finish(submitted) { outcome in
            if case .success = outcome { answered.store(true, ordering: .relaxed) }
            finished.finish()
        }
        #expect(try await held.waitForSync() == 1, "the write reached its sync")
        try await Task.sleep(for: .milliseconds(200))
        let answeredEarly = answered.load(ordering: .relaxed)
        #expect(!answeredEarly, "answered before its sync")
        #expect(database.snapshot.sequence == 0 && database.root == .null, "visible to readers before its sync")
        held.release()
        for await _ in done {}
        let answeredAfter = answered.load(ordering: .relaxed)
        #expect(answeredAfter)
        #expect(database.root.child("a") == .int(1), "visible when answered")
    }
}

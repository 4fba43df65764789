import Foundation
import HearthCore
@testable import HearthStorage
import HearthTestSupport
import Testing

/// A fresh data directory for one test.
func temporaryDirectory() -> String {
    let path = NSTemporaryDirectory() + "hearth-test-" + UUID().uuidString
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func parsed(_ text: String) throws -> ParsedNode {
    try JSONParser.parse(Array(text.utf8))
}

/// Writes `count` values at /items/k<i> through a namespace and closes it.
@discardableResult
func writeItems(_ directory: String, count: Int, from start: Int = 0, options: StorageOptions = StorageOptions()) async throws -> Node {
    let engine = StorageEngine(directory: directory, options: options)
    let database = try engine.open(namespace: "ns")
    for index in start..<(start + count) {
        _ = try await database.write(WriteRequest(path: Path(keys: ["items", ChildKey("k\(index)")]), operation: .set(try parsed("\(index)"))))
    }
    let root = database.root
    engine.close()
    return root
}

func segmentFiles(_ directory: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory + "/ns").filter { $0.hasSuffix(".hlog") }.sorted()
}

@Suite("Recovery")
struct RecoveryTests {
    @Test func restartKeepsEverythingAndContinues() async throws {
        let directory = temporaryDirectory()
        let written = try await writeItems(directory, count: 50)
        let engine = StorageEngine(directory: directory)
        #expect(try engine.existingNamespaces() == ["ns"])
        let database = try engine.open(namespace: "ns")
        #expect(database.root == written)
        #expect(database.snapshot.sequence == 50)
        // Sequence numbers continue after the restart.
        let outcome = try await database.write(WriteRequest(path: Path(keys: ["more"]), operation: .set(try parsed("1"))))
        guard case .written(let sequence, _) = outcome else { Issue.record("write failed"); return }
        #expect(sequence == 51)
        engine.close()
    }

    @Test func pushIDsStayMonotonicAcrossRestarts() async throws {
        let directory = temporaryDirectory()
        var names: [String] = []
        for _ in 0..<3 {
            let engine = StorageEngine(directory: directory)
            let database = try engine.open(namespace: "ns")
            for _ in 0..<20 {
                let outcome = try await database.write(WriteRequest(path: Path(keys: ["log"]), operation: .push(try parsed("1"))))
                if case .written(_, .pushed(let name)) = outcome { names.append(name.string) }
            }
            engine.close()
        }
        #expect(names.count == 60)
        #expect(names == names.sorted())
    }

    @Test func aTornTailIsTruncatedWithAWarning() async throws {
        let directory = temporaryDirectory()
        try await writeItems(directory, count: 10)
        let segment = directory + "/ns/" + (try segmentFiles(directory)).last!
        let size = try FileIO.size(segment)
        try FileIO.truncate(path: segment, to: size - 3)
        let engine = StorageEngine(directory: directory)
        let database = try engine.open(namespace: "ns")
        #expect(database.snapshot.sequence == 9)
        #expect(database.root.child("items").children.count == 9)
        // The next write lands cleanly after the cut, and survives another restart.
        _ = try await database.write(WriteRequest(path: Path(keys: ["after"]), operation: .set(try parsed("true"))))
        engine.close()
        let again = StorageEngine(directory: directory)
        let reopened = try again.open(namespace: "ns")
        #expect(reopened.snapshot.sequence == 10)
        #expect(reopened.root.child("after") == .bool(true))
        again.close()
    }

    @Test func corruptionInTheMiddleStopsStartAndRepairFixesIt() async throws {
        let directory = temporaryDirectory()
        try await writeItems(directory, count: 10)
        let name = (try segmentFiles(directory)).last!
        let segment = directory + "/ns/" + name
        var bytes = try FileIO.read(segment)
        // Damage the 5th record's payload: find record starts by reading the clean file.
        let clean = try SegmentFixture.read(bytes)
        #expect(clean.entries.count == 10)
        var offsets: [Int] = []
        var offset = StorageFormat.segmentHeaderSize
        while offset < bytes.count {
            offsets.append(offset)
            let length = Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16
            offset += StorageFormat.recordHeaderSize + length
        }
        bytes[offsets[4] + 20] ^= 0x40
        try FileIO.writeAtomically(bytes, to: segment, directory: directory + "/ns")

        let error = #expect(throws: RecoveryError.self) { try StorageEngine(directory: directory).open(namespace: "ns") }
        #expect(error?.file == segment)
        #expect(error?.offset == offsets[4])
        #expect(error?.description.contains("hearth repair") == true)

        let report = try Recovery.recover(directory: directory + "/ns", logger: .init(label: "test"), mode: .verify)
        #expect(report.lastSequence == 4)
        #expect(report.notes.count == 1)
        #expect(try FileIO.read(segment) == bytes, "verify changes nothing")

        let repaired = try Recovery.recover(directory: directory + "/ns", logger: .init(label: "test"), mode: .repair)
        #expect(repaired.lastSequence == 4)
        #expect(FileIO.exists(segment + ".broken"))
        let database = try StorageEngine(directory: directory).open(namespace: "ns")
        #expect(database.snapshot.sequence == 4)
        #expect(database.root.child("items").children.count == 4)
    }

    @Test func aMissingSegmentStopsStart() async throws {
        let directory = temporaryDirectory()
        let options = StorageOptions(segmentBytes: 4096, snapshotAfterRecords: 1_000_000)
        try await writeItems(directory, count: 300, options: options)
        let segments = try segmentFiles(directory)
        #expect(segments.count >= 3)
        try FileIO.remove(directory + "/ns/" + segments[1])
        let error = #expect(throws: RecoveryError.self) { try StorageEngine(directory: directory, options: options).open(namespace: "ns") }
        #expect(error?.reason.contains("missing") == true)
    }

    @Test func snapshotsRetireOldSegmentsAndRecoverTheSameTree() async throws {
        let directory = temporaryDirectory()
        let options = StorageOptions(segmentBytes: 4096, snapshotAfterRecords: 100)
        let written = try await writeItems(directory, count: 1000, options: options)
        // Let the last background snapshot finish.
        try await Task.sleep(for: .milliseconds(300))
        let files = try FileManager.default.contentsOfDirectory(atPath: directory + "/ns")
        #expect(files.contains { $0.hasPrefix("snap-") })
        #expect(try segmentFiles(directory).count < 1000 * 40 / 4096, "old segments were removed")
        let engine = StorageEngine(directory: directory, options: options)
        let database = try engine.open(namespace: "ns")
        #expect(database.root == written)
        #expect(database.snapshot.sequence == 1000)
        try engine.compactAll()
        engine.close()
        let again = try StorageEngine(directory: directory, options: options).open(namespace: "ns")
        #expect(again.root == written)
    }

    @Test func aDamagedSnapshotStopsStart() async throws {
        let directory = temporaryDirectory()
        let engine = StorageEngine(directory: directory)
        let database = try engine.open(namespace: "ns")
        _ = try await database.write(WriteRequest(path: Path(keys: ["a"]), operation: .set(try parsed(#"{"b":[1,2,3]}"#))))
        try engine.compactAll()
        engine.close()
        let snapshot = try FileManager.default.contentsOfDirectory(atPath: directory + "/ns").first { $0.hasPrefix("snap-") }!
        var bytes = try FileIO.read(directory + "/ns/" + snapshot)
        bytes[bytes.count - 2] ^= 0xFF
        try FileIO.writeAtomically(bytes, to: directory + "/ns/" + snapshot, directory: directory + "/ns")
        let error = #expect(throws: RecoveryError.self) { try StorageEngine(directory: directory).open(namespace: "ns") }
        #expect(error?.reason.contains("snapshot is damaged") == true)
    }

    @Test func concurrentWritersShareSyncs() async throws {
        let directory = temporaryDirectory()
        let engine = StorageEngine(directory: directory)
        let database = try engine.open(namespace: "ns")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<200 {
                group.addTask {
                    _ = try await database.write(WriteRequest(path: Path(keys: ["c", ChildKey("k\(index)")]), operation: .set(try parsed("1"))))
                }
            }
            try await group.waitForAll()
        }
        let syncs = try #require(engine.stores.all.first).log.syncCount
        #expect(syncs < 200, "group commit: \(syncs) syncs for 200 writes")
        #expect(database.root.child("c").children.count == 200)
        engine.close()
    }

    @Test func aFailedWriteChangesNothingAndWritingResumes() async throws {
        let directory = temporaryDirectory()
        let engine = StorageEngine(directory: directory)
        let database = try engine.open(namespace: "ns")
        _ = try await database.write(WriteRequest(path: Path(keys: ["a"]), operation: .set(try parsed("1"))))
        let log = try #require(engine.stores.all.first).log!
        log.injectWriteFailures(1, errno: ENOSPC)
        await #expect(throws: FileWriteLog.Failure.self) {
            try await database.write(WriteRequest(path: Path(keys: ["b"]), operation: .set(try parsed("2"))))
        }
        #expect(database.root.child("b") == .null)
        #expect(database.snapshot.sequence == 1)
        // The disk "recovers": the next write succeeds with the next sequence number.
        let outcome = try await database.write(WriteRequest(path: Path(keys: ["c"]), operation: .set(try parsed("3"))))
        guard case .written(let sequence, _) = outcome else { Issue.record("write failed"); return }
        #expect(sequence == 2)
        engine.close()
        let reopened = try StorageEngine(directory: directory).open(namespace: "ns")
        #expect(JSONWriter.string(reopened.root) == #"{"a":1,"c":3}"#)
        #expect(reopened.snapshot.sequence == 2)
    }

    /// The same for a write finished without a task (``Database/finish(_:then:)``): the log's
    /// failure reaches the callback (after the recovery, run in a task), and writing resumes.
    @Test func aFailedWriteFinishedByCallbackIsToldAndWritingResumes() async throws {
        let directory = temporaryDirectory()
        let engine = StorageEngine(directory: directory)
        let database = try engine.open(namespace: "ns")
        func write(_ key: String, _ value: String) async throws -> WriteOutcome {
            let submitted = try database.submit(WriteRequest(path: Path(keys: [ChildKey(key)]), operation: .set(try parsed(value))))
            return try await withCheckedThrowingContinuation { continuation in
                database.finish(submitted) { continuation.resume(with: $0) }
            }
        }
        _ = try await write("a", "1")
        let log = try #require(engine.stores.all.first).log!
        log.injectWriteFailures(1, errno: ENOSPC)
        do {
            _ = try await write("b", "2")
            Issue.record("the write succeeded on a full disk")
        } catch {
            // What made the log fail, not only that the record was dropped.
            #expect(StorageIOError.isOutOfSpace(error), "\(error)")
        }
        #expect(database.root.child("b") == .null)
        #expect(database.snapshot.sequence == 1)
        guard case .written(let sequence, _) = try await write("c", "3") else {
            Issue.record("write failed")
            return
        }
        #expect(sequence == 2)
        engine.close()
        let reopened = try StorageEngine(directory: directory).open(namespace: "ns")
        #expect(JSONWriter.string(reopened.root) == #"{"a":1,"c":3}"#)
    }
}

@Suite("Log failures")
struct LogFailureTests {
    @Test func aRecordDroppedByAFailureIsNeverAcknowledgedLater() async throws {
        let directory = temporaryDirectory()
        try FileIO.makeDirectory(directory)
        let log = try FileWriteLog(
            directory: directory, policy: .always, segmentLimit: 1 << 20, lastSequence: 0, openSegment: nil,
            logger: .init(label: "test"))
        let path = Path(keys: ["a"])
        func record(_ sequence: UInt64) -> LogRecord {
            LogRecord(sequence: sequence, change: Change(kind: .set, path: path, mutations: [.set(path, .int(Int64(sequence)))]))
        }
        log.injectWriteFailures(1, errno: EIO)
        let lost = try log.append(record(1), pushTime: 0)
        // Wait until the flusher has failed, without registering as a waiter.
        // (Recovery matches a failure by its epoch; the error it carries is not looked at.)
        while log.recover(from: FileWriteLog.Failure(epoch: 1, underlying: CancellationError())) == nil {
            try await Task.sleep(for: .milliseconds(5))
        }
        // Sequence 1 is reused by a new record, which becomes durable...
        let kept = try log.append(record(1), pushTime: 0)
        try await log.waitUntilDurable(1, ticket: kept)
        // ...but the first writer, who waits only now, must still learn that its record was lost.
        // (What failed: the injected write error.)
        await #expect {
            try await log.waitUntilDurable(1, ticket: lost)
        } throws: { error in
            ((error as? FileWriteLog.Failure)?.underlying as? StorageIOError)?.code == EIO
        }
        log.close()
    }

    @Test func aHalfCreatedNamespaceStartsAfresh() throws {
        let directory = temporaryDirectory()
        try FileIO.makeDirectory(directory + "/ns")
        try FileWriteLog.createSegment(directory + "/ns/" + StorageFormat.segmentName(firstSequence: 1), firstSequence: 1, directory: directory + "/ns")
        try FileIO.writeAtomically([1, 2, 3], to: directory + "/ns/MANIFEST.tmp", directory: directory + "/ns")
        try FileIO.writeAtomically([1, 2, 3], to: directory + "/ns/x.tmp", directory: directory + "/ns")
        let engine = StorageEngine(directory: directory)
        let database = try engine.open(namespace: "ns")
        #expect(database.snapshot.sequence == 0)
        engine.close()
    }

    @Test func aDirectoryWithDataButNoManifestIsRefused() async throws {
        let directory = temporaryDirectory()
        try await writeItems(directory, count: 3)
        try FileIO.remove(directory + "/ns/MANIFEST")
        #expect(throws: RecoveryError.self) { try StorageEngine(directory: directory).open(namespace: "ns") }
    }
}

@Suite("Data directory lock")
struct DirectoryLockTests {
    @Test func aSecondWriterIsRefusedUntilTheFirstCloses() throws {
        let directory = temporaryDirectory()
        let first = StorageEngine(directory: directory)
        _ = try first.open(namespace: "ns")
        let second = StorageEngine(directory: directory)
        #expect(throws: DataDirectoryInUse.self) { try second.open(namespace: "ns") }
        #expect(throws: DataDirectoryInUse.self) { try StorageInspector.repair(directory: directory + "/ns") }
        first.close()
        _ = try second.open(namespace: "ns")
        second.close()
    }
}

import Testing

@testable import HearthStorage

@Suite("Snapshot schedule state machine")
struct SnapshotScheduleStateMachineTests {
    typealias Machine = SnapshotScheduleStateMachine
    typealias Backlog = Machine.Backlog

    func machine(records: Int = 3, bytes: Int = 1000, replayed: Int = 0) -> Machine {
        Machine(recordsThreshold: records, bytesThreshold: bytes, replayedRecords: replayed)
    }

    @Test func idleCountsAppendsUntilAThresholdStartsASnapshot() {
        var schedule = machine()
        do {
            let result = schedule.appended(bytes: 10)
            #expect(!result)
        }
        do {
            let result = schedule.appended(bytes: 10)
            #expect(!result)
        }
        #expect(schedule.state == .idle(Backlog(records: 2, bytes: 20)))
        do {
            let result = schedule.appended(bytes: 10)
            #expect(result)
        }
        #expect(schedule.state == .snapshotting(taken: Backlog(records: 3, bytes: 30), backlog: Backlog()))
        // The bytes threshold alone starts one too.
        var bytes = machine(records: 100, bytes: 50)
        do {
            let result = bytes.appended(bytes: 49)
            #expect(!result)
        }
        do {
            let result = bytes.appended(bytes: 1)
            #expect(result)
        }
        // Records replayed at recovery count.
        var recovered = machine(replayed: 2)
        do {
            let result = recovered.appended(bytes: 1)
            #expect(result)
        }
    }

    @Test func appendsDuringASnapshotCountForTheNextOne() {
        var schedule = machine()
        do {
            let result = schedule.requestSnapshot()
            #expect(result)
        }
        for _ in 0..<5 {
            let started = schedule.appended(bytes: 100)
            #expect(!started)
        }
        #expect(schedule.state == .snapshotting(taken: Backlog(), backlog: Backlog(records: 5, bytes: 500)))
        do {
            let result = schedule.requestSnapshot()
            #expect(!result, "one snapshot at a time")
        }
        do {
            let result = schedule.snapshotFinished(succeeded: true)
            #expect(result == .none)
        }
        #expect(schedule.state == .idle(Backlog(records: 5, bytes: 500)))
        // Past the threshold already: the next append starts the next snapshot.
        do {
            let result = schedule.appended(bytes: 1)
            #expect(result)
        }
    }

    @Test func aFailedSnapshotCountsItsRecordsAgain() {
        var schedule = machine()
        for _ in 0..<2 { _ = schedule.appended(bytes: 10) }
        do {
            let result = schedule.appended(bytes: 10)
            #expect(result)
        }
        _ = schedule.appended(bytes: 5)
        do {
            let result = schedule.snapshotFinished(succeeded: false)
            #expect(result == .none)
        }
        #expect(schedule.state == .idle(Backlog(records: 4, bytes: 35)))
        do {
            let result = schedule.appended(bytes: 1)
            #expect(result, "the next append retries it")
        }
    }

    @Test func closeWhileIdleClosesAtOnceAndNothingStartsAfter() {
        var schedule = machine()
        _ = schedule.appended(bytes: 10)
        do {
            let result = schedule.close()
            #expect(result == .closeNow)
        }
        #expect(schedule.isClosed)
        for _ in 0..<10 {
            let started = schedule.appended(bytes: 1000)
            #expect(!started)
        }
        do {
            let result = schedule.requestSnapshot()
            #expect(!result)
        }
        do {
            let result = schedule.close()
            #expect(result == .closeNow, "closing twice is harmless")
        }
    }

    @Test func closeDuringASnapshotWaitsForIt() {
        for succeeded in [true, false] {
            var schedule = machine()
            do {
                let result = schedule.requestSnapshot()
                #expect(result)
            }
            do {
                let result = schedule.close()
                #expect(result == .waitForSnapshot)
            }
            #expect(!schedule.isClosed)
            do {
                let result = schedule.close()
                #expect(result == .waitForSnapshot, "a second close waits too")
            }
            // Appends still arrive while the log is flushed; they start nothing.
            for _ in 0..<10 {
                let started = schedule.appended(bytes: 1000)
                #expect(!started)
            }
            do {
                let result = schedule.requestSnapshot()
                #expect(!result)
            }
            do {
                let result = schedule.snapshotFinished(succeeded: succeeded)
                #expect(result == .wakeClose)
            }
            #expect(schedule.isClosed)
        }
    }
}

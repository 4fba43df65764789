import Foundation
import Logging
import Testing

@testable import HearthStorage

@Suite("Session journal")
struct SessionJournalTests {
    let logger = Logger(label: "test")

    func journalPath(_ directory: String) -> String { directory + "/" + StorageFormat.sessionJournalFileName }

    @Test func whatIsPutAndNotRemovedIsThereAfterAReopen() throws {
        let directory = temporaryDirectory()
        do {
            let (journal, left) = try SessionJournal.open(directory: directory, logger: logger)
            #expect(left.isEmpty)
            try journal.put("a", [1, 2, 3])
            try journal.put("b", [4])
            try journal.put("a", [5])
            try journal.remove("b")
            try journal.remove("never-there")
            #expect(journal.entries == ["a": [5]])
        }
        let (reopened, left) = try SessionJournal.open(directory: directory, logger: logger)
        #expect(left == ["a": [5]])
        // Opening rewrote the file with the live entries only.
        #expect(try FileIO.read(journalPath(directory)) == SessionJournal.encode(["a": [5]]))
        try reopened.remove("a")
        let (_, empty) = try SessionJournal.open(directory: directory, logger: logger)
        #expect(empty.isEmpty)
    }

    @Test func aTornOrDamagedTailIsCutAway() throws {
        let directory = temporaryDirectory()
        do {
            let (journal, _) = try SessionJournal.open(directory: directory, logger: logger)
            try journal.put("kept", [1])
            try journal.put("torn", [2, 2, 2, 2])
        }
        var bytes = try FileIO.read(journalPath(directory))
        let whole = bytes
        bytes.removeLast(2)
        try FileIO.writeAtomically(bytes, to: journalPath(directory), directory: directory)
        #expect(try SessionJournal.open(directory: directory, logger: logger).left == ["kept": [1]])

        var damaged = whole
        damaged[damaged.count - 1] ^= 0xFF  // the last record's CRC no longer matches
        try FileIO.writeAtomically(damaged, to: journalPath(directory), directory: directory)
        #expect(try SessionJournal.open(directory: directory, logger: logger).left == ["kept": [1]])
    }

    @Test func aFileOfSomethingElseHoldsNothing() throws {
        let directory = temporaryDirectory()
        try FileIO.writeAtomically(Array("not a journal".utf8), to: journalPath(directory), directory: directory)
        #expect(try SessionJournal.open(directory: directory, logger: logger).left.isEmpty)
    }

    @Test func theFileIsRewrittenWhenItGrowsFarPastItsLiveEntries() throws {
        let directory = temporaryDirectory()
        let (journal, _) = try SessionJournal.open(directory: directory, logger: logger)
        let value = [UInt8](repeating: 7, count: 4096)
        for round in 0..<600 {
            try journal.put("session-\(round % 3)", value)
        }
        let size = try FileIO.size(journalPath(directory))
        #expect(size < SessionJournal.compactAfterBytes + 5 * 4200, "compacted, not 600 records long")
        #expect(journal.entries.count == 3)
        let (_, left) = try SessionJournal.open(directory: directory, logger: logger)
        #expect(left == ["session-0": value, "session-1": value, "session-2": value])
    }

    @Test func withoutADirectoryNothingIsKept() throws {
        let (journal, left) = try SessionJournal.open(directory: nil, logger: logger)
        #expect(left.isEmpty)
        try journal.put("a", [1])
        #expect(journal.entries.isEmpty)
    }
}

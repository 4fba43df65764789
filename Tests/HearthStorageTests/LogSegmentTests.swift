import Foundation
import HearthCore
@testable import HearthStorage
import Testing

/// Builds segment bytes from records, and reads them back.
enum SegmentFixture {
    static func entry(_ sequence: UInt64, _ value: Node = .int(1)) -> LogRecordCodec.Entry {
        let path = Path(keys: ["items", ChildKey("k\(sequence)")])
        return LogRecordCodec.Entry(
            record: LogRecord(sequence: sequence, change: Change(kind: .set, path: path, mutations: [.set(path, value)])),
            pushTime: Int64(sequence))
    }

    /// Header plus `count` records starting at sequence 1; also the offset where each record starts.
    static func segment(count: Int) -> (bytes: [UInt8], starts: [Int]) {
        var bytes = LogSegmentReader.header(firstSequence: 1)
        var starts: [Int] = []
        for sequence in 1...UInt64(count) {
            starts.append(bytes.count)
            bytes += LogRecordCodec.frame(entry(sequence, .string("value \(sequence)")))
        }
        return (bytes, starts)
    }

    static func read(_ bytes: [UInt8]) throws -> LogSegmentReader.Result {
        try bytes.withUnsafeBytes { try LogSegmentReader.read($0) }
    }
}

@Suite("Log records and segments")
struct LogSegmentTests {
    @Test func recordsRoundTrip() throws {
        let path = Path(keys: ["a", "b"])
        let value = try JSONParser.parse(Array(#"{"x":1.0,"y":[1,"two",true],"z":{".value":"p",".priority":3}}"#.utf8)).node
        let change = Change(kind: .update, path: path, mutations: [
            .set(path.appending("x"), value), .set(path.appending("gone"), .null), .setPriority(path, .string("p")),
            .setPriority(path.appending("x"), nil),
        ])
        let entry = LogRecordCodec.Entry(record: LogRecord(sequence: 7, change: change), pushTime: 1_700_000_000_123)
        var bytes = LogSegmentReader.header(firstSequence: 7)
        bytes += LogRecordCodec.frame(entry)
        let result = try SegmentFixture.read(bytes)
        #expect(result.entries == [entry])
        #expect(result.ending == .clean)
        // Doubles stay doubles through the log (1.0 is not turned into the integer 1).
        guard case .set(_, let stored) = result.entries[0].record.change.mutations[0],
            case .double = stored.child("x")
        else {
            Issue.record("1.0 did not come back as a double")
            return
        }
    }

    @Test func crc32cKnownAnswers() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([]) == 0)
        #expect(CRC32C.softwareChecksum(Array("123456789".utf8).withUnsafeBytes { UnsafeRawBufferPointer($0) }) == 0xE306_9283)
    }

    @Test func theCPUsInstructionAndTheTablesAgree() {
        var random = SystemRandomNumberGenerator()
        for length in [0, 1, 7, 8, 9, 63, 64, 65, 1000, 4097] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            let seed = UInt32.random(in: 0...UInt32.max, using: &random)
            bytes.withUnsafeBytes { buffer in
                #expect(CRC32C.checksum(buffer, continuing: seed) == CRC32C.softwareChecksum(buffer, continuing: seed), "\(length) bytes")
                // Continuing in two parts is the same as one pass.
                let half = length / 2
                let split = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buffer[half...]),
                    continuing: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buffer[..<half])))
                #expect(split == CRC32C.checksum(buffer))
            }
        }
    }

    @Test func truncatingTheLastRecordAtEveryByteLosesExactlyThatRecord() throws {
        let (bytes, starts) = SegmentFixture.segment(count: 5)
        let lastStart = starts[4]
        for cut in lastStart..<bytes.count {
            let result = try SegmentFixture.read(Array(bytes[..<cut]))
            #expect(result.entries.count == 4, "cut at \(cut)")
            #expect(result.ending == (cut == lastStart ? .clean : .tornTail(offset: lastStart)), "cut at \(cut)")
            #expect(result.goodLength == lastStart)
        }
        #expect(try SegmentFixture.read(bytes).entries.count == 5)
    }

    @Test func aFlippedBitInTheMiddleIsCorruptionNotATornTail() throws {
        let (bytes, starts) = SegmentFixture.segment(count: 5)
        for bit in [0, 3, 7] {
            var damaged = bytes
            damaged[starts[2] + 12] ^= UInt8(1 << bit)
            let result = try SegmentFixture.read(damaged)
            #expect(result.entries.count == 2)
            #expect(result.ending == .corrupt(offset: starts[2], reason: "checksum mismatch"))
        }
        // The same flip in the last record is indistinguishable from a torn write.
        var last = bytes
        last[starts[4] + 12] ^= 1
        #expect(try SegmentFixture.read(last).ending == .tornTail(offset: starts[4]))
    }

    @Test func aZeroedSectorInTheMiddleIsCorruption() throws {
        let (bytes, starts) = SegmentFixture.segment(count: 40)
        var damaged = bytes
        let sector = (starts[20] / 512 + 1) * 512
        for index in sector..<min(sector + 512, damaged.count) { damaged[index] = 0 }
        let result = try SegmentFixture.read(damaged)
        guard case .corrupt(let offset, _) = result.ending else {
            Issue.record("expected corruption, got \(result.ending)")
            return
        }
        // Every record before the damaged sector survives; none after it is read.
        let survivors = starts.filter { $0 < offset }.count
        #expect(result.entries.count == survivors)
        #expect(offset <= sector)
        #expect(starts.contains(offset))
    }

    @Test func zerosAfterTheLastRecordAreATornTail() throws {
        let (bytes, _) = SegmentFixture.segment(count: 3)
        let result = try SegmentFixture.read(bytes + [UInt8](repeating: 0, count: 4096))
        #expect(result.entries.count == 3)
        #expect(result.ending == .tornTail(offset: bytes.count))
    }

    @Test func badHeadersAreRefused() {
        let (bytes, _) = SegmentFixture.segment(count: 1)
        #expect(throws: LogSegmentReader.BadHeader.self) { try SegmentFixture.read(Array(bytes[..<10])) }
        var magic = bytes
        magic[0] = UInt8(ascii: "X")
        #expect(throws: LogSegmentReader.BadHeader.self) { try SegmentFixture.read(magic) }
        var version = bytes
        version[8] = 9
        #expect(throws: LogSegmentReader.BadHeader.self) { try SegmentFixture.read(version) }
    }

    @Test func sequenceGapsAreCorruption() throws {
        var bytes = LogSegmentReader.header(firstSequence: 1)
        bytes += LogRecordCodec.frame(SegmentFixture.entry(1))
        let second = bytes.count
        bytes += LogRecordCodec.frame(SegmentFixture.entry(3))
        let result = try SegmentFixture.read(bytes)
        #expect(result.entries.count == 1)
        #expect(result.ending == .corrupt(offset: second, reason: "sequence 3 where 2 was expected"))
    }
}

@Suite("Damage that looks like a torn tail")
struct DamagedLengthTests {
    @Test func aDamagedLengthInTheMiddleIsCorruption() throws {
        let (bytes, starts) = SegmentFixture.segment(count: 6)
        var damaged = bytes
        damaged[starts[2] + 2] = 0x7F  // the length now runs far past the end of the file
        let result = try SegmentFixture.read(damaged)
        #expect(result.entries.count == 2)
        guard case .corrupt(let offset, _) = result.ending else {
            Issue.record("a damaged length with good records after it must not be taken for a torn tail")
            return
        }
        #expect(offset == starts[2])
        // The same damage in the last record is a torn tail: nothing good follows it.
        var last = bytes
        last[starts[5] + 2] = 0x7F
        #expect(try SegmentFixture.read(last).ending == .tornTail(offset: starts[5]))
    }
}

/// The segment decoded on a thread of its own: every record comes out once, in order, whether
/// the decoder is ahead (the queue full) or behind.
@Suite("Pipelined segment reads")
struct PipelinedSegmentReadTests {
    @Test func recordsComeOutInOrderWhetherTheDecoderIsAheadOrBehind() throws {
        let count = PipelinedSegmentRead.batchSize * (PipelinedSegmentRead.depth + 4) + 17
        let (bytes, _) = SegmentFixture.segment(count: count)
        let reading = PipelinedSegmentRead(bytes)
        var expected: UInt64 = 1
        var batches = 0
        while let batch = reading.next() {
            for entry in batch {
                #expect(entry.record.sequence == expected)
                expected += 1
            }
            batches += 1
            // A slow start lets the decoder fill the queue and wait; afterwards it is behind.
            if batches <= 3 { Thread.sleep(forTimeInterval: 0.05) }
        }
        #expect(expected == UInt64(count) + 1)
        #expect(try reading.result().ending == .clean)
    }
}

// HearthBench: benchmarks that print figures. Never a test; see Docs/PERFORMANCE.md.
//
//   HearthBench generate <file> <bytes>     write the realistic webhook document
//   HearthBench json <file> [seconds]       parse/serialise throughput: Hearth and Foundation
//   HearthBench recovery <dir> <records>    time to recover a log of that many small records
//   HearthBench snapshot <file>             snapshot write throughput for the tree of <file>
//   HearthBench rules - [seconds]           cost of the rules checks of one write and one read
//   HearthBench query <children> [seconds]  limitToLast=50 from an index vs a scan; index upkeep
//   HearthBench fanout <port> <streams> <seconds> <writes/s> [<write port>]   SSE delivery latency (load client)
//
// Output is one JSON object per line so Benchmarks/run.py can collect it.
import Foundation
import HearthCore
import HearthStorage
import HearthTestSupport

@inline(never)
func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }

/// Runs `body` repeatedly for at least `seconds` (after one warm-up) and returns the best
/// per-iteration time, which is the least disturbed by a noisy machine.
func measure(seconds: Double, _ body: () throws -> Void) rethrows -> Double {
    try body()
    var best = Double.infinity
    let clock = ContinuousClock()
    let deadline = clock.now + .milliseconds(Int(seconds * 1000))
    var runs = 0
    while clock.now < deadline || runs < 3 {
        let start = clock.now
        try body()
        let elapsed = clock.now - start
        best = min(best, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        runs += 1
    }
    return best
}

func emit(_ fields: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    FileHandle.standardError.write(Data("usage: HearthBench generate <file> <bytes> | json <file> [seconds]\n".utf8))
    exit(2)
}

switch arguments[1] {
case "generate":
    let bytes = DataGenerator.webhookDocument(bytes: Int(arguments[3]) ?? 10_000_000)
    FileManager.default.createFile(atPath: arguments[2], contents: Data(bytes))
case "profile-parse", "profile-serialize":
    // Runs one Hearth operation in a loop for a profiler (perf record ...).
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: arguments[2])))
    let node = try JSONParser.parse(bytes).node
    var writer = JSONWriter(options: .compact, capacity: bytes.count + 1024)
    for _ in 0..<(arguments.count > 3 ? Int(arguments[3]) ?? 20 : 20) {
        if arguments[1] == "profile-parse" {
            blackHole(try JSONParser.parse(bytes))
        } else {
            writer.output.removeAll()
            writer.write(node)
        }
    }
case "json":
    let seconds = arguments.count > 3 ? Double(arguments[3]) ?? 3 : 3
    let data = try Data(contentsOf: URL(fileURLWithPath: arguments[2]))
    let bytes = [UInt8](data)
    let megabytes = Double(bytes.count) / 1_000_000
    let node = try JSONParser.parse(bytes).node
    var writer = JSONWriter(options: .compact, capacity: bytes.count + 1024)

    let hearthParse = try measure(seconds: seconds) { blackHole(try JSONParser.parse(bytes)) }
    let hearthSerialize = measure(seconds: seconds) {
        writer.output.removeAll()
        writer.write(node)
        blackHole(writer.output.count)
    }
    let object = try JSONSerialization.jsonObject(with: data)
    let foundationParse = try measure(seconds: seconds) { blackHole(try JSONSerialization.jsonObject(with: data)) }
    let foundationSerialize = try measure(seconds: seconds) { blackHole(try JSONSerialization.data(withJSONObject: object)) }
    emit([
        "bytes": bytes.count,
        "hearth_parse_mb_s": megabytes / hearthParse,
        "hearth_serialize_mb_s": megabytes / hearthSerialize,
        "hearth_serialized_bytes": writer.output.count,
        "foundation_parse_mb_s": megabytes / foundationParse,
        "foundation_serialize_mb_s": megabytes / foundationSerialize,
    ])
case "recovery":
    // Build a log of N small records directly (as the server would have written them), then
    // time a cold open: MANIFEST, segment read, CRC checks, decoding and replay.
    // `reuse` as a fourth argument opens a log written by an earlier run (to profile the open
    // alone: `perf record HearthBench recovery <dir> <records> reuse`).
    let directory = arguments[2]
    let records = arguments.count > 3 ? Int(arguments[3]) ?? 1_000_000 : 1_000_000
    let reuse = arguments.count > 4 && arguments[4] == "reuse"
    let options = StorageOptions(fsync: .none, segmentBytes: 1 << 40, snapshotAfterBytes: 1 << 40, snapshotAfterRecords: Int.max)
    var logBytes = 0
    if !reuse {
    try? FileManager.default.removeItem(atPath: directory)
    let creator = StorageEngine(directory: directory, options: options)
    _ = try creator.open(namespace: "bench")
    creator.close()
    let segment = directory + "/bench/" + StorageFormat.segmentName(firstSequence: 1)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: segment))
    try handle.seekToEnd()
    var random = SeededRandom(seed: 1)
    var generator = PushIDGenerator()
    var buffer: [UInt8] = []
    for sequence in 1...UInt64(records) {
        let name = ChildKey(generator.next(now: 1_700_000_000_000 + Int64(sequence / 8), using: &random))
        let path = Path(keys: ["readings", name])
        let value = try JSONParser.parse(Array(#"{"device":"d-\#(sequence % 100)","temp":\#(20 + Int(sequence % 15)),"ok":true}"#.utf8)).node
        let change = Change(kind: .set, path: path, mutations: [.set(path, value)])
        buffer += LogRecordCodec.frame(LogRecordCodec.Entry(record: LogRecord(sequence: sequence, change: change), pushTime: generator.lastTime))
        if buffer.count > 1 << 22 {
            try handle.write(contentsOf: buffer)
            logBytes += buffer.count
            buffer.removeAll(keepingCapacity: true)
        }
    }
    try handle.write(contentsOf: buffer)
    logBytes += buffer.count
    try handle.close()
    } else {
        logBytes = Int((try FileManager.default.attributesOfItem(
            atPath: directory + "/bench/" + StorageFormat.segmentName(firstSequence: 1))[.size] as? NSNumber)?.intValue ?? 0)
    }
    let clock = ContinuousClock()
    let start = clock.now
    let engine = StorageEngine(directory: directory, options: options)
    let database = try engine.open(namespace: "bench")
    let elapsed = clock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    precondition(database.snapshot.sequence == UInt64(records), "recovered \(database.snapshot.sequence) of \(records)")
    engine.close()
    emit(["records": records, "log_bytes": logBytes, "recovery_seconds": seconds, "records_per_second": Double(records) / seconds])
case "snapshot":
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: arguments[2])))
    let root = try JSONParser.parse(bytes).node
    let clock = ContinuousClock()
    let start = clock.now
    let file = try SnapshotFile(sequence: 1, pushTime: 0, root: root).encode()
    let elapsed = clock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    emit(["json_bytes": bytes.count, "snapshot_bytes": file.count, "seconds": seconds, "mb_per_second": Double(bytes.count) / 1e6 / seconds])
case "query":
    try await queryBenchmark(children: Int(arguments[2]) ?? 1_000_000, seconds: arguments.count > 3 ? Double(arguments[3]) ?? 1 : 1)
case "fanout", "fanout-realtime":
    // fanout[-realtime] <port> <streams> <seconds> <writes per second> [<write port>]: SSE streams or
    // realtime listens on <port>; the writes go to <write port> if given (another node).
    try fanOutBenchmark(port: UInt16(arguments[2])!, streams: Int(arguments[3])!, seconds: Double(arguments[4])!,
        rate: Int(arguments[5])!, realtime: arguments[1] == "fanout-realtime",
        writePort: arguments.count > 6 ? UInt16(arguments[6]) : nil)
case "realtime-writes":
    // realtime-writes <port> <connections> <window> <seconds> <record JSON>
    try realtimeWritesBenchmark(
        port: UInt16(arguments[2])!, connections: Int(arguments[3])!, window: Int(arguments[4])!,
        seconds: Double(arguments[5])!, record: arguments[6])
case "rules":
    try await rulesBenchmark(seconds: arguments.count > 3 ? Double(arguments[3]) ?? 1 : 1)
default:
    FileHandle.standardError.write(Data("unknown benchmark \(arguments[1])\n".utf8))
    exit(2)
}

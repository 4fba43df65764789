// HearthBench: benchmarks that print figures. Never a test; see Docs/PERFORMANCE.md.
//
//   HearthBench generate <file> <bytes>     write the realistic webhook document
//   HearthBench json <file> [seconds]       parse/serialise throughput: Hearth and Foundation
//
// Output is one JSON object per line so Benchmarks/run.py can collect it.
import Foundation
import HearthCore
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
default:
    FileHandle.standardError.write(Data("unknown benchmark \(arguments[1])\n".utf8))
    exit(2)
}

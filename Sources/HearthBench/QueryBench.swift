import Foundation
import HearthCore
import HearthTestSupport

/// Times `orderBy="ts"&limitToLast=50` over `children` children answered from the index and
/// by a full scan, building the index, and writes into that location with and without the
/// index; prints one JSON line.
func queryBenchmark(children: Int, seconds: Double) async throws {
    var random = SeededRandom(seed: 11)
    var pushIDs = PushIDGenerator()
    var entries = ContiguousArray<ChildEntry>()
    entries.reserveCapacity(children)
    for index in 0..<children {
        let key = ChildKey(pushIDs.next(now: 1_795_946_000_000 + Int64(index / 4), using: &random))
        let value = Node.object(ChildMap(sortedEntries: [
            ChildEntry(key: "device", value: .string("d-\(random.next() % 500)")),
            ChildEntry(key: "ok", value: .bool(random.next() % 10 != 0)),
            ChildEntry(key: "ts", value: .int(Int64(random.next() % 1_000_000_000))),
        ]))
        entries.append(ChildEntry(key: key, value: value))
    }
    let root = Node.object(ChildMap(sortedEntries: [ChildEntry(key: "items", value: .object(ChildMap(sortedEntries: entries)))]))
    let spec = IndexSpec(location: Path(keys: ["items"]), orderBy: .child(Path(keys: ["ts"])))
    let query = try Query.parse(["orderBy": "\"ts\"", "limitToLast": "50"])!

    let clock = ContinuousClock()
    let buildStart = clock.now
    let indexed = Database(name: "indexed", root: root)
    indexed.declareIndexes([spec])
    let buildSeconds = (clock.now - buildStart).seconds

    // The query timings hold the version they read; let it go before the writes, as a
    // finished request does.
    let (lookup, scan): (Double, Double) = {
        let view = indexed.readView
        let node = view.root.at(spec.location)
        let tree = view.indexes[spec]!
        precondition(query.lookup(node, in: tree).map(\.key) == query.scan(node).map(\.key), "index and scan disagree")
        let lookup = measure(seconds: seconds) {
            for _ in 0..<100 { blackHole(query.lookup(node, in: tree)) }
        } / 100
        return (lookup, measure(seconds: seconds) { blackHole(query.scan(node)) })
    }()

    // Writes into the indexed location: push a new record, as a webhook does.
    func writesPerSecond(_ database: Database) async throws -> Double {
        let record = ParsedNode(node: try JSONParser.parse(Array(#"{"device":"d-1","ok":true,"ts":123456}"#.utf8)).node)
        let count = 20_000
        let start = clock.now
        for _ in 0..<count {
            _ = try await database.write(WriteRequest(path: spec.location, operation: .push(record)))
        }
        return Double(count) / (clock.now - start).seconds
    }
    let plain = Database(name: "plain", root: root)
    // Alternate, so that neither run has the machine to itself.
    var withIndex: [Double] = [], withoutIndex: [Double] = []
    for _ in 0..<3 {
        withoutIndex.append(try await writesPerSecond(plain))
        withIndex.append(try await writesPerSecond(indexed))
    }
    emit([
        "children": children,
        "index_build_seconds": buildSeconds,
        "indexed_query_us": lookup * 1e6,
        "scan_query_us": scan * 1e6,
        "speedup": scan / lookup,
        "writes_per_second_with_index": withIndex.max()!,
        "writes_per_second_without_index": withoutIndex.max()!,
    ])
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

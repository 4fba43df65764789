import HearthCore

/// Generates test data: random trees and realistic webhook records.
public enum DataGenerator {
    /// Keys drawn from a small pool (so random writes collide) mixing integer-like and text keys.
    public static let keyPool: [String] = [
        "0", "1", "2", "3", "10", "-1", "007", "a", "b", "c", "device", "mac", "z", "Å", "é", "日本", "k-1", "k_2",
    ]

    /// A random key from ``keyPool``.
    public static func key(using random: inout some RandomNumberGenerator) -> ChildKey {
        ChildKey(keyPool.randomElement(using: &random)!)
    }

    /// A random leaf value.
    public static func leaf(using random: inout some RandomNumberGenerator) -> Node {
        switch Int.random(in: 0..<6, using: &random) {
        case 0: return .bool(Bool.random(using: &random))
        case 1: return .int(Int64.random(in: -1000...1000, using: &random))
        case 2: return .double(Double(Int.random(in: -100_000...100_000, using: &random)) / 8)
        case 3: return .string(String(repeating: "x", count: Int.random(in: 0...5, using: &random)))
        case 4: return .string(["ünïcödé", "line\nbreak", "quote\"s", "tab\t", "😀"].randomElement(using: &random)!)
        default: return .int(Int64.random(in: Int64.min...Int64.max, using: &random))
        }
    }

    /// A random normalised node up to `depth` levels of objects.
    public static func node(depth: Int, using random: inout some RandomNumberGenerator) -> Node {
        if depth == 0 || Int.random(in: 0..<3, using: &random) == 0 { return leaf(using: &random) }
        var children = ChildMap()
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            children.set(key(using: &random), node(depth: depth - 1, using: &random))
        }
        return .object(children)
    }

    /// A random path of 0...`maxDepth` keys from the pool.
    public static func path(maxDepth: Int, using random: inout some RandomNumberGenerator) -> Path {
        Path(keys: (0..<Int.random(in: 0...maxDepth, using: &random)).map { _ in key(using: &random) })
    }

    /// One JSON webhook record like those factory devices post (about 300 bytes).
    public static func webhookRecordJSON(_ index: Int, using random: inout some RandomNumberGenerator) -> String {
        let mac = (0..<6).map { _ in String(UInt8.random(in: 0...255, using: &random), radix: 16) }.joined()
        let success = Bool.random(using: &random)
        let temperature = Double(Int.random(in: 1500...4500, using: &random)) / 100
        let message = success ? "All tests passed" : #"Check \"wifi\" antenna"#
        let type = ["blessing", "blinkup", "testresult"].randomElement(using: &random)!
        return """
            {"device_id":"dev-\(index)-\(UInt32.random(in: 0...UInt32.max, using: &random))","mac":"\(mac)",\
            "type":"\(type)",\
            "msg":"\(message)","timestamp":\(1_700_000_000_000 + index),\
            "success":\(success),"temperature":\(temperature),"firmware":{"version":"3.\(index % 10).1","build":\(index % 997)},\
            "tags":["line-\(index % 4)","station-\(index % 12)"],"notes":"Ünïcode ✓ \(index)"}
            """
    }

    /// A JSON object of webhook records keyed by push-ID-like keys, about `bytes` long.
    public static func webhookDocument(bytes target: Int, seed: UInt64 = 42) -> [UInt8] {
        var random = SeededRandom(seed: seed)
        var generator = PushIDGenerator()
        var text = "{"
        var index = 0
        while text.utf8.count < target {
            if index > 0 { text += "," }
            let key = generator.next(now: 1_700_000_000_000 + Int64(index / 4), using: &random)
            text += "\"\(key)\":" + webhookRecordJSON(index, using: &random)
            index += 1
        }
        text += "}"
        return Array(text.utf8)
    }
}

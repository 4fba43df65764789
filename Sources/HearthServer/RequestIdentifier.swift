import Synchronization

/// Request ids for answers given without Hummingbird (``InlineAnswerHandler``), in the form
/// of Hummingbird's `RequestID`: a random prefix for the process, then a counter as 16 hex
/// digits. Its prefix differs from Hummingbird's, so the two never give the same id.
enum RequestIdentifier {
    private static let prefix = String(UInt64.random(in: .min ... .max), radix: 16)
    private static let counter = Atomic<UInt64>(UInt64.random(in: .min ... .max))
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// The next id.
    static func next() -> String {
        let value = counter.wrappingAdd(1, ordering: .relaxed).oldValue
        let low = String(unsafeUninitializedCapacity: 16) { buffer in
            for index in 0..<16 {
                buffer[index] = digits[Int((value >> (UInt64(15 - index) * 4)) & 0xF)]
            }
            return 16
        }
        return prefix + low
    }
}

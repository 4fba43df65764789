/// Makes Firebase push IDs: 8 characters of millisecond timestamp and 12 random characters in
/// Firebase's ASCII-ordered base-64 alphabet, so IDs sort by creation time.
///
/// Within one millisecond (or while the clock stands behind the last ID issued, for example
/// after a restart on a machine whose clock went back) the random part of the previous ID is
/// incremented by one instead of drawn again, so every ID is greater than the one before.
public struct PushIDGenerator: Sendable {
    /// Firebase's alphabet: web-safe base 64, in ASCII order.
    public static let alphabet = Array("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz".utf8)

    /// The timestamp of the last ID made (or the floor given at start).
    public private(set) var lastTime: Int64
    private var lastRandom: [UInt8] = Array(repeating: 0, count: 12)
    private var hasRandom = false

    /// A generator whose IDs all sort after any ID made at or before `lastTime` (ms), e.g. the
    /// timestamp of the newest ID already stored, so that IDs keep increasing across restarts.
    public init(after lastTime: Int64 = -1) {
        self.lastTime = lastTime + 1
    }

    /// The next ID for the time `now` (milliseconds since the epoch).
    public mutating func next(now: Int64, using random: inout some RandomNumberGenerator) -> String {
        let time = max(now, lastTime)
        if time == lastTime && hasRandom {
            // Increment the 12-digit base-64 number; on overflow (2^72 IDs in one ms) move on a ms.
            var index = 11
            while index >= 0 && lastRandom[index] == 63 {
                lastRandom[index] = 0
                index -= 1
            }
            if index >= 0 {
                lastRandom[index] += 1
            } else {
                return next(now: time + 1, using: &random)
            }
        } else {
            for index in 0..<12 { lastRandom[index] = UInt8.random(in: 0..<64, using: &random) }
            hasRandom = true
        }
        lastTime = time
        var characters = [UInt8](repeating: 0, count: 20)
        var remaining = time
        for index in stride(from: 7, through: 0, by: -1) {
            characters[index] = PushIDGenerator.alphabet[Int(remaining % 64)]
            remaining /= 64
        }
        for index in 0..<12 { characters[8 + index] = PushIDGenerator.alphabet[Int(lastRandom[index])] }
        return String(decoding: characters, as: UTF8.self)
    }

    /// The next ID, with the system random generator.
    public mutating func next(now: Int64) -> String {
        var random = SystemRandomNumberGenerator()
        return next(now: now, using: &random)
    }

    /// The millisecond timestamp encoded in a push ID, or nil if `id` is not one.
    public static func timestamp(of id: String) -> Int64? {
        let bytes = Array(id.utf8)
        guard bytes.count == 20 else { return nil }
        var time: Int64 = 0
        for byte in bytes[0..<8] {
            guard let digit = alphabet.firstIndex(of: byte) else { return nil }
            time = time * 64 + Int64(digit)
        }
        for byte in bytes[8...] where !alphabet.contains(byte) { return nil }
        return time
    }
}

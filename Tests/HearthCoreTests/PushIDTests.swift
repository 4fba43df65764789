import HearthCore
import HearthTestSupport
import Testing

@Suite("Push IDs")
struct PushIDTests {
    @Test func formatMatchesFirebase() {
        var random = SeededRandom(seed: 1)
        var generator = PushIDGenerator()
        let id = generator.next(now: 1_405_961_581_220, using: &random)
        #expect(id.utf8.count == 20)
        #expect(id.hasPrefix("-JSOpn9Z"))  // Firebase's documented example -JSOpn9ZC54A4P4RoqVa
        #expect(PushIDGenerator.timestamp(of: "-JSOpn9ZC54A4P4RoqVa") == 1_405_961_581_220)
        #expect(PushIDGenerator.timestamp(of: "-INOQPH-aV_psbk3ZXEX") == 1_331_866_477_696)
        #expect(id.utf8.allSatisfy { PushIDGenerator.alphabet.contains($0) })
    }

    @Test func monotonicWithinAMillisecond() {
        var random = SeededRandom(seed: 2)
        var generator = PushIDGenerator()
        var previous = ""
        for index in 0..<10_000 {
            let id = generator.next(now: 1_700_000_000_000 + Int64(index / 1000), using: &random)
            #expect(id > previous, "\(id) after \(previous)")
            previous = id
        }
    }

    @Test func monotonicWhenTheClockGoesBack() {
        var random = SeededRandom(seed: 3)
        var generator = PushIDGenerator()
        let first = generator.next(now: 2_000, using: &random)
        let second = generator.next(now: 1_000, using: &random)
        #expect(second > first)
        // A restart seeded with the newest stored timestamp continues above it.
        var restarted = PushIDGenerator(after: PushIDGenerator.timestamp(of: second)!)
        for _ in 0..<100 {
            var fresh = SeededRandom(seed: UInt64.random(in: 0...UInt64.max))
            var copy = restarted
            #expect(copy.next(now: 500, using: &fresh) > second)
        }
        #expect(restarted.next(now: 500, using: &random) > second)
    }

    @Test func incrementCarries() {
        // Force many IDs in one millisecond: the random suffix must keep increasing with carries.
        var random = SeededRandom(seed: 4)
        var generator = PushIDGenerator()
        var ids: [String] = []
        for _ in 0..<5000 { ids.append(generator.next(now: 7, using: &random)) }
        #expect(ids == ids.sorted())
        #expect(Set(ids).count == ids.count)
    }
}

import HearthCore
import Testing

@Suite("On-disconnect writes")
struct OnDisconnectWritesTests {
    func parsed(_ text: String, time: Int64 = 1000) throws -> ParsedNode {
        try JSONParser.parse(Array(text.utf8), options: .init(serverTime: time))
    }

    func path(_ text: String) throws -> Path { try Path(validating: text) }

    func update(_ text: String) throws -> [UpdateEntry] {
        try Array(text.utf8).withUnsafeBytes { bytes in
            try JSONParser.parseUpdate(bytes, locationDepth: 1, options: .init(serverTime: 0))
        }
    }

    /// The tree after the pending writes fire at `time` on `start`.
    func fired(_ writes: OnDisconnectWrites, on start: String = "null", at time: Int64 = 5000) async throws -> String {
        let database = Database(name: "t", root: try parsed(start).node)
        if let request = writes.request(firingAt: time, access: nil) {
            _ = try await database.write(request)
        }
        return JSONWriter.string(database.root)
    }

    func paths(_ writes: OnDisconnectWrites) -> [String] {
        writes.overwrites.keys.map(\.description).sorted()
    }

    @Test func aSetReplacesWhatIsPendingAtOrBelowIt() async throws {
        var writes = OnDisconnectWrites()
        #expect(writes.request(firingAt: 0, access: nil) == nil)
        writes.set(try path("a/b"), to: try parsed("1"))
        writes.set(try path("a/c"), to: try parsed("2"))
        writes.set(try path("x"), to: try parsed("3"))
        #expect(paths(writes) == ["/a/b", "/a/c", "/x"])
        writes.set(try path("a"), to: try parsed(#"{"d":4}"#))
        #expect(paths(writes) == ["/a", "/x"])
        #expect(try await fired(writes, on: #"{"a":{"b":0,"e":9},"y":1}"#) == #"{"a":{"d":4},"x":3,"y":1}"#)
    }

    @Test func aSetUnderAPendingWriteGoesIntoItsValue() async throws {
        var writes = OnDisconnectWrites()
        writes.set(try path("a"), to: try parsed(#"{"b":1,"c":2}"#))
        writes.set(try path("a/c/d"), to: try parsed("3"))
        writes.set(try path("a/b"), to: try parsed("null"))
        #expect(paths(writes) == ["/a"])
        #expect(try await fired(writes) == #"{"a":{"c":{"d":3}}}"#)
    }

    @Test func anUpdateIsOneSetPerKey() async throws {
        var writes = OnDisconnectWrites()
        let entries = try update(#"{"b":1,"c/d":2}"#)
        try writes.update(try path("a"), with: entries)
        #expect(paths(writes) == ["/a/b", "/a/c/d"])
        #expect(try await fired(writes, on: #"{"a":{"e":5}}"#) == #"{"a":{"b":1,"c":{"d":2},"e":5}}"#)
        let overlapping = try update(#"{"b":1,"b/c":2}"#)
        #expect(throws: DataError.self) { try writes.update(try path("a"), with: overlapping) }
        #expect(paths(writes) == ["/a/b", "/a/c/d"], "a refused update changes nothing")
    }

    @Test func aCancelDropsWhatIsAtOrBelowIt() async throws {
        var writes = OnDisconnectWrites()
        writes.set(try path("a/b"), to: try parsed("1"))
        writes.set(try path("a/c"), to: try parsed("2"))
        writes.set(try path("x"), to: try parsed("3"))
        writes.cancel(try path("a"))
        #expect(paths(writes) == ["/x"])
        writes.cancel(try path("x"))
        #expect(writes.isEmpty)
        writes.cancel(try path("nothing"))
        #expect(writes.isEmpty)
    }

    @Test func aCancelBelowAPendingWriteSplitsItSoSiblingsStillHappen() async throws {
        var writes = OnDisconnectWrites()
        writes.set(try path("a"), to: try parsed(#"{"b":{"c":1,"d":2},"e":3}"#))
        writes.cancel(try path("a/b/c"))
        #expect(paths(writes) == ["/a/b/d", "/a/e"])
        // What is under the cancelled path, and what the split value did not name, stay.
        #expect(try await fired(writes, on: #"{"a":{"b":{"c":7,"z":8},"y":9}}"#) == #"{"a":{"b":{"c":7,"d":2,"z":8},"e":3,"y":9}}"#)
        // A leaf is kept whole.
        var leaf = OnDisconnectWrites()
        leaf.set(try path("a"), to: try parsed("5"))
        leaf.cancel(try path("a/b"))
        #expect(paths(leaf) == ["/a"])
        // A remove has no children to keep: it goes.
        var remove = OnDisconnectWrites()
        remove.set(try path("a"), to: try parsed("null"))
        remove.set(try path("x"), to: try parsed("1"))
        remove.cancel(try path("a/b"))
        #expect(paths(remove) == ["/x"])
    }

    @Test func aSetUnderAPendingServerValueReplacesIt() async throws {
        var writes = OnDisconnectWrites()
        writes.set(try path("a"), to: try parsed(#"{".sv":{"increment":1}}"#))
        writes.set(try path("a/b"), to: try parsed(#""x""#))
        #expect(try await fired(writes, on: #"{"a":41}"#) == #"{"a":{"b":"x"}}"#)
        var deeper = OnDisconnectWrites()
        deeper.set(try path("a"), to: try parsed(#"{"x":{".sv":{"increment":1}},"t":{".sv":"timestamp"}}"#))
        deeper.set(try path("a/x/y"), to: try parsed("2"))
        deeper.set(try path("a/t/u"), to: try parsed("3"))
        #expect(try await fired(deeper, on: #"{"a":{"x":5}}"#, at: 9000) == #"{"a":{"t":{"u":3},"x":{"y":2}}}"#)
    }

    @Test func serverValuesAreResolvedWhenTheWritesFire() async throws {
        var writes = OnDisconnectWrites()
        writes.set(try path("seen"), to: try parsed(#"{"at":{".sv":"timestamp"},"n":{".sv":{"increment":2}}}"#, time: 1000))
        writes.set(try path("seen/again"), to: try parsed(#"{".sv":"timestamp"}"#, time: 1100))
        writes.set(try path("top"), to: try parsed(#"{".sv":"timestamp"}"#, time: 1200))
        #expect(try await fired(writes, on: #"{"seen":{"n":40}}"#, at: 5000) == #"{"seen":{"again":5000,"at":5000,"n":42},"top":5000}"#)
        // Split values keep their server values.
        writes.cancel(try path("seen/again"))
        #expect(paths(writes) == ["/seen/at", "/seen/n", "/top"])
        #expect(try await fired(writes, on: #"{"seen":{"n":1}}"#, at: 7000) == #"{"seen":{"at":7000,"n":3},"top":7000}"#)
    }
}

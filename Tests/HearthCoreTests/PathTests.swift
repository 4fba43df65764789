import HearthCore
import Testing

@Suite("Paths and keys")
struct PathTests {
    @Test func urlPaths() throws {
        #expect(try Path(urlPath: "/users/jack/name/").description == "/users/jack/name")
        #expect(try Path(urlPath: "//a///b").keys == ["a", "b"])
        #expect(try Path(urlPath: "/Devices%20Data/x").keys == ["Devices Data", "x"])
        #expect(try Path(urlPath: "/a+b").keys == ["a+b"])
        #expect(try Path(urlPath: "/%E6%97%A5").keys == ["日"])
        #expect(try Path(urlPath: "/").isRoot)
    }

    @Test("invalid URL paths", arguments: ["/a.b", "/a$", "/a#", "/a[", "/a]", "/a%2Fb", "/%00", "/a%7F", "/a%zz", "/%FF", "/..", "/a%2E"])
    func invalidURLPaths(path: String) {
        let error = #expect(throws: DataError.self) { try Path(urlPath: path) }
        #expect(error?.message == "Invalid path: Invalid token in path")
    }

    @Test func depthLimit() throws {
        let ok = String(repeating: "/a", count: 32)
        #expect(try Path(urlPath: ok).depth == 32)
        #expect(throws: DataError.self) { try Path(urlPath: ok + "/a") }
    }

    @Test func relations() throws {
        let a = try Path(validating: "a")
        let ab = try Path(validating: "a/b")
        #expect(a.contains(ab))
        #expect(!ab.contains(a))
        #expect(a.relative(ab) == Path(keys: ["b"]))
        #expect(Path.root.contains(a))
        #expect(ab.parent == a)
    }
}

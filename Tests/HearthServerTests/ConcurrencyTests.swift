import HearthCore
import HearthServer
import HearthTestSupport
import Testing

@Suite("Concurrent clients over real connections")
struct ConcurrencyTests {
    @Test func concurrentWritersLoseNothing() async throws {
        try await withTestServer(live: true) { client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<16 {
                    group.addTask {
                        for index in 0..<25 {
                            let post = try await client.post("/log.json", #"{"w":\#(writer),"i":\#(index)}"#)
                            #expect(post.status == 200)
                            let bump = try await client.put("/count.json", #"{".sv":{"increment":1}}"#)
                            #expect(bump.status == 200)
                            let patch = try await client.patch("/by/w\(writer).json", #"{"i\#(index)":true}"#)
                            #expect(patch.status == 200)
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await client.get("/count.json").body == "400")
            let log = try #require(try await client.get("/log.json").node)
            #expect(log.children.count == 400)
            let byWriter = try #require(try await client.get("/by.json").node)
            #expect(byWriter.children.count == 16)
            for entry in byWriter.children { #expect(entry.value.children.count == 25) }
        }
    }
}

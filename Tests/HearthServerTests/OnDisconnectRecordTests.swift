import HearthCore
import Testing

@testable import HearthServer

@Suite("On-disconnect records (the session journal's payload)")
struct OnDisconnectRecordTests {
    @Test func aRecordReadsBackAsItWasWritten() throws {
        var writes = OnDisconnectWrites()
        let value = try JSONParser.parse(
            Array(#"{"state":"offline","at":{".sv":"timestamp"},"n":{".sv":{"increment":2}},"p":{".value":1,".priority":"x"}}"#.utf8),
            options: .init(serverTime: 123))
        writes.set(try Path(validating: "status/gus"), to: value)
        writes.set(try Path(validating: "presence/gus"), to: ParsedNode(node: .null))
        writes.set(.root.appending("top"), to: ParsedNode(node: .string("")))
        let auth = try JSONParser.parse(Array(#"{"uid":"gus","token":{"admin":false}}"#.utf8)).node
        let pending = OnDisconnectRegistry.Pending(
            writes: writes, caller: Caller(bypassesRules: false, isAdmin: true, auth: auth))

        let read = try OnDisconnectRecord(decoding: OnDisconnectRecord(namespace: "db-1", pending: pending).encoded())
        #expect(read.namespace == "db-1")
        #expect(read.pending.caller.isAdmin && !read.pending.caller.bypassesRules)
        #expect(read.pending.caller.auth == auth)
        #expect(Set(read.pending.writes.overwrites.keys) == Set(writes.overwrites.keys))
        for (path, original) in writes.overwrites {
            let copy = try #require(read.pending.writes.overwrites[path])
            #expect(copy.node == original.node, "\(path)")
            #expect(copy.timestamps == original.timestamps, "\(path)")
            #expect(copy.increments.map(\.relativePath) == original.increments.map(\.relativePath), "\(path)")
            #expect(copy.increments.map(\.delta) == original.increments.map(\.delta), "\(path)")
        }
        // Made later, the writes take their own time and increments, as the original would.
        let fired = try #require(read.pending.writes.request(firingAt: 999, access: nil))
        let original = try #require(writes.request(firingAt: 999, access: nil))
        guard case .update(let firedEntries) = fired.operation, case .update(let originalEntries) = original.operation else {
            Issue.record("on-disconnect writes are made as one update")
            return
        }
        #expect(firedEntries.map(\.path) == originalEntries.map(\.path))
        #expect(firedEntries.map(\.value.node) == originalEntries.map(\.value.node))
    }

    @Test func somethingElseIsRefused() {
        #expect(throws: (any Error).self) { _ = try OnDisconnectRecord(decoding: Array("[1,2]".utf8)) }
        #expect(throws: (any Error).self) { _ = try OnDisconnectRecord(decoding: Array(#"{"namespace":"x","writes":[{"value":1}]}"#.utf8)) }
    }
}

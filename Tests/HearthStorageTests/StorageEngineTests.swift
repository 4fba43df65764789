import HearthCore
import HearthStorage
import Testing

@Suite("Storage engine seam")
struct StorageEngineTests {
    @Test func opensWorkingNamespaces() async throws {
        let storage = StorageEngine(directory: nil)
        #expect(try storage.existingNamespaces().isEmpty)
        let database = try storage.open(namespace: "factory")
        #expect(database.name == "factory")
        let parsed = try JSONParser.parse(Array(#"{"ok":true}"#.utf8))
        _ = try await database.write(WriteRequest(path: Path(keys: ["a"]), operation: .set(parsed)))
        #expect(JSONWriter.string(database.root) == #"{"a":{"ok":true}}"#)
        #expect(database.snapshot.sequence == 1)
    }
}

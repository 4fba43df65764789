import ArgumentParser
import Foundation
import HearthCore
import HearthPostgres
import HearthStorage

/// `hearth move-namespace`: copies a namespace's data and rules from file storage into
/// PostgreSQL, or back, while no server runs on either.
struct MoveNamespace: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "move-namespace",
        abstract: "Copy a namespace (its data and rules) from one storage to another: file to PostgreSQL, or back.",
        discussion: """
            The target must not hold the namespace's data yet. The data arrives as one write, so \
            sequence numbers (and the event ids streams resume from) start again in the target. \
            The source is left as it is: remove it once the target serves.
            """)

    @Option(name: .customLong("data-dir"), help: "The data directory (file storage, and the lock and files of a node).")
    var dataDirectory = "./hearth-data"

    @Option(help: "The namespace to move.")
    var namespace: String

    @Option(help: "Where it is: file, or postgres://user[:password]@host[:port]/database.")
    var from: String

    @Option(help: "Where it goes: file, or postgres://user[:password]@host[:port]/database.")
    var to: String

    func validate() throws {
        for storage in [from, to] where storage != "file" && PostgresLocation(url: storage) == nil {
            throw ValidationError("--from and --to must be file or a postgres://user[:password]@host[:port]/database URL.")
        }
        guard from != to else { throw ValidationError("--from and --to name the same storage.") }
    }

    func run() async throws {
        let (tree, rules) = try read()
        let target = StorageEngine(
            directory: dataDirectory,
            backend: try PostgresLocation(url: to).map { try PostgresBackend(location: $0, logger: DataDirectoryOptions.logger, exclusive: true) })
        defer { target.close() }
        let database = try target.open(namespace: namespace)
        guard database.snapshot.sequence == 0, database.root == .null else {
            throw ValidationError("\(namespace) already holds data in the target (sequence \(database.snapshot.sequence)); nothing was copied.")
        }
        let parsed = try JSONParser.parse(JSONWriter.serialize(tree, options: .storage), options: .init(maxDepth: Int.max))
        if tree != .null {
            _ = try await database.write(WriteRequest(path: .root, operation: .set(parsed)))
        }
        if let rules { try target.storeRules(rules, namespace: namespace) }
        print("\(namespace): copied \(tree == .null ? "no data" : "its data")\(rules == nil ? "" : " and its rules") to \(describe(to))")
    }

    /// The namespace's tree and rules in the source.
    func read() throws -> (Node, String?) {
        if let location = PostgresLocation(url: from) {
            let inspector = try PostgresInspector(location: location, logger: DataDirectoryOptions.logger)
            defer { inspector.close() }
            guard try inspector.namespaces().contains(namespace) else { throw ValidationError("no namespace \(namespace) in \(location.description)") }
            return (try inspector.load(namespace: namespace).root, try inspector.rules(namespace: namespace))
        }
        let files = StorageEngine(directory: dataDirectory)
        guard try files.existingNamespaces().contains(namespace) else { throw ValidationError("no namespace \(namespace) in \(dataDirectory)") }
        let tree = try StorageInspector.load(directory: NamespaceFiles(dataDirectory: dataDirectory, namespace: namespace).directory)
        return (tree, try files.storedRules(namespace: namespace))
    }

    func describe(_ storage: String) -> String {
        PostgresLocation(url: storage)?.description ?? "the data directory \(dataDirectory)"
    }
}

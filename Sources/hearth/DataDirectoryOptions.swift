import ArgumentParser
import HearthPostgres
import HearthStorage
import Logging

/// Options shared by the offline data tools. These open the files directly; the ones that
/// write take the data directory's lock, so they refuse to run next to a server. With
/// `--storage postgres://…` they work on PostgreSQL instead: reading needs no lock (a running
/// node's committed data can be read), writing takes the node's lock.
struct DataDirectoryOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "The data directory.")
    var dataDirectory = "./hearth-data"

    @Option(help: "The namespace (default: every namespace, where that makes sense).")
    var namespace: String?

    @Option(help: "file (the data directory, the default) or a postgres://user[:password]@host[:port]/database URL.")
    var storage = "file"

    func validate() throws {
        guard storage == "file" || PostgresLocation(url: storage) != nil else {
            throw ValidationError("--storage must be file or a postgres://user[:password]@host[:port]/database URL (its query may give sslmode=disable, prefer, require, verify-ca or verify-full, and sslrootcert=<file>).")
        }
    }

    /// The PostgreSQL database, when the namespaces are there.
    var postgres: PostgresLocation? { PostgresLocation(url: storage) }

    static let logger = Logger(label: "hearth.tools")

    /// A reader of the PostgreSQL database (no lock taken).
    func inspector() throws -> PostgresInspector? {
        try postgres.map { try PostgresInspector(location: $0, logger: DataDirectoryOptions.logger) }
    }

    /// The storage engine to write with (PostgreSQL holding the nodes' lock alone, or the files).
    func engine() throws -> StorageEngine {
        let backend = try postgres.map { try PostgresBackend(location: $0, logger: DataDirectoryOptions.logger, exclusive: true) }
        return StorageEngine(directory: dataDirectory, backend: backend)
    }

    /// The namespaces to work on: the one named, or all that exist.
    func namespaces() throws -> [String] {
        if let namespace { return [namespace] }
        if let inspector = try inspector() {
            defer { inspector.close() }
            return try inspector.namespaces()
        }
        return try StorageEngine(directory: dataDirectory).existingNamespaces()
    }
}

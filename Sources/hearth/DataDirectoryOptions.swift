import ArgumentParser
import HearthStorage

/// Options shared by the offline data tools. These open the files directly; the ones that
/// write take the data directory's lock, so they refuse to run next to a server.
struct DataDirectoryOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "The data directory.")
    var dataDirectory = "./hearth-data"

    @Option(help: "The namespace (default: every namespace, where that makes sense).")
    var namespace: String?

    /// The namespaces to work on: the one named, or all that exist.
    func namespaces() throws -> [String] {
        if let namespace { return [namespace] }
        return try StorageEngine(directory: dataDirectory).existingNamespaces()
    }
}

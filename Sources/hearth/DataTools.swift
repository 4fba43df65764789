import ArgumentParser
import Foundation
import HearthCore
import HearthStorage
import Logging

/// `hearth verify`: reads snapshots and logs and reports, changing nothing.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the snapshot and log of each namespace; report records, last sequence and problems.")

    @OptionGroup var data: DataDirectoryOptions

    func run() throws {
        var problems = 0
        if let inspector = try data.inspector() {
            defer { inspector.close() }
            for namespace in try data.namespaces() {
                do {
                    let report = try inspector.load(namespace: namespace)
                    let snapshot = report.snapshotSequence.map { "at sequence \($0)" } ?? "none"
                    print("\(namespace): snapshot \(snapshot), \(report.replayedRecords) log records replayed, last sequence \(report.lastSequence)")
                } catch {
                    print("\(namespace): \(error)")
                    problems += 1
                }
            }
            if problems > 0 { throw ExitCode(1) }
            print("ok")
            return
        }
        for namespace in try data.namespaces() {
            do {
                let report = try StorageInspector.verify(directory: NamespaceFiles(dataDirectory: data.dataDirectory, namespace: namespace).directory)
                print("\(namespace): snapshot \(report.snapshot ?? "none"), \(report.records) log records replayed, last sequence \(report.lastSequence)")
                for note in report.notes { print("  problem: \(note)") }
                problems += report.notes.count
            } catch {
                print("\(namespace): \(error)")
                problems += 1
            }
        }
        if problems > 0 { throw ExitCode(1) }
        print("ok")
    }
}

/// `hearth repair`: truncates the log after the last good record.
struct Repair: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Truncate a namespace's log after its last good record, keeping .broken copies of what is cut.")

    @OptionGroup var data: DataDirectoryOptions

    func run() throws {
        guard data.postgres == nil else {
            throw ValidationError("repair works on a data directory: PostgreSQL keeps its own pages whole (hearth verify reports gaps in the log).")
        }
        for namespace in try data.namespaces() {
            let report = try StorageInspector.repair(directory: NamespaceFiles(dataDirectory: data.dataDirectory, namespace: namespace).directory)
            print("\(namespace): last sequence \(report.lastSequence)")
            for note in report.notes { print("  \(note)") }
            if report.notes.isEmpty { print("  nothing to repair") }
        }
    }
}

/// `hearth compact`: writes a snapshot now and retires the log it covers.
struct Compact: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a snapshot of each namespace now and remove the log segments it replaces.")

    @OptionGroup var data: DataDirectoryOptions

    func run() throws {
        let storage = try data.engine()
        let existing = try storage.existingNamespaces()
        for namespace in try data.namespaces() {
            guard existing.contains(namespace) else { throw ValidationError("no namespace \(namespace) in \(data.postgres?.description ?? data.dataDirectory)") }
            let database = try storage.open(namespace: namespace)
            print("\(namespace): snapshot at sequence \(database.snapshot.sequence)")
        }
        try storage.compactAll()
        storage.close()
    }
}

/// `hearth export`: the data of a namespace (or a path in it) as JSON, streamed.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a namespace's data (or a path in it) as JSON, or its children as CSV (--csv).")

    @OptionGroup var data: DataDirectoryOptions

    @Option(help: "The path to export.")
    var path = "/"

    @Option(help: "firebase (plain JSON) or export (with priorities, as format=export).")
    var format = "firebase"

    @Option(help: "The output file (default: standard output).")
    var output: String?

    @Flag(help: "Write the children of the path as CSV (one row per child; see Docs/API.md#csv).")
    var csv = false

    func validate() throws {
        guard format == "firebase" || format == "export" else { throw ValidationError("--format must be firebase or export.") }
    }

    func run() throws {
        let namespace = data.namespace ?? "default"
        let tree: Node
        if let inspector = try data.inspector() {
            defer { inspector.close() }
            guard try inspector.namespaces().contains(namespace) else {
                throw ValidationError("no namespace \(namespace) in \(data.postgres?.description ?? data.storage)")
            }
            tree = try inspector.load(namespace: namespace).root
        } else {
            guard try StorageEngine(directory: data.dataDirectory).existingNamespaces().contains(namespace) else {
                throw ValidationError("no namespace \(namespace) in \(data.dataDirectory)")
            }
            tree = try StorageInspector.load(directory: NamespaceFiles(dataDirectory: data.dataDirectory, namespace: namespace).directory)
        }
        let node = tree.at(try Path(urlPath: path))
        let handle: FileHandle
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: nil) else {
                throw ValidationError("cannot create \(output)")
            }
            handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        } else {
            handle = FileHandle.standardOutput
        }
        if csv {
            try CSVWriter.write(node.children) { chunk in try handle.write(contentsOf: Data(chunk)) }
        } else {
            try JSONWriter.stream(node, options: JSONWriter.Options(export: format == "export")) { bytes in
                try handle.write(contentsOf: Data(bytes))
            }
            try handle.write(contentsOf: Data("\n".utf8))
        }
        if output != nil { try handle.close() }
    }
}

/// `hearth import`: a JSON file written at a path, as one atomic write.
struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a JSON file at a path of a namespace, atomically (one log record).")

    @OptionGroup var data: DataDirectoryOptions

    @Option(help: "The path to write at (its current data is replaced).")
    var path = "/"

    @Argument(help: "The JSON file.")
    var file: String

    func run() async throws {
        let target = try Path(urlPath: path)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
        let parsed: ParsedNode
        do {
            parsed = try JSONParser.parse(bytes, options: .init(maxDepth: Path.maxDepth - target.depth, serverTime: Database.systemMilliseconds()))
        } catch {
            throw ValidationError("\(file): \(error)")
        }
        let storage = try data.engine()
        let database = try storage.open(namespace: data.namespace ?? "default")
        let outcome = try await database.write(WriteRequest(path: target, operation: .set(parsed)))
        storage.close()
        if case .written(let sequence, _) = outcome {
            print("imported \(file) at \(target) (sequence \(sequence))")
        }
    }
}

import HearthCore
import Logging

/// Offline access to a namespace directory for the command-line tools.
public enum StorageInspector {
    public struct Report: Sendable {
        public var snapshot: String?
        public var records: Int
        public var lastSequence: UInt64
        public var notes: [String]

        init(_ result: Recovery.Result) {
            snapshot = result.manifest.snapshot
            records = result.replayedRecords
            lastSequence = result.lastSequence
            notes = result.notes
        }
    }

    /// Reads everything and reports; changes nothing.
    public static func verify(directory: String) throws -> Report {
        let result = try Recovery.recover(directory: directory, logger: Logger(label: "hearth.verify"), mode: .verify)
        return Report(result)
    }

    /// Truncates after the last good record, keeping `.broken` copies.
    public static func repair(directory: String) throws -> Report {
        // Refuse while a server (or another tool) has the data directory open.
        let lock = try DirectoryLock(directory: FileIO.parentDirectory(of: directory))
        defer { withExtendedLifetime(lock) {} }
        let result = try Recovery.recover(directory: directory, logger: Logger(label: "hearth.repair"), mode: .repair)
        return Report(result)
    }

    /// The tree as recovery would see it, without changing any file.
    public static func load(directory: String) throws -> Node {
        try Recovery.recover(directory: directory, logger: Logger(label: "hearth.export"), mode: .verify).root
    }
}

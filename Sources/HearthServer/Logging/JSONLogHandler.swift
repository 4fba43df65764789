import Foundation
import HearthCore
import Logging
import Synchronization

/// A swift-log handler that writes one JSON object per line (`--log-format json`), for log
/// shippers: `time`, `level`, `label`, `message`, `source`, then the metadata (such as
/// `hb.request.id`), all as strings.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let output: @Sendable ([UInt8]) -> Void

    /// A handler writing to standard error.
    public init(label: String) {
        self.init(label: label) { line in
            // One write per line, so lines from concurrent requests do not interleave (short
            // writes and EINTR are resumed).
            line.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                    if written > 0 {
                        offset += written
                    } else if written < 0 && errno == EINTR {
                        continue
                    } else {
                        return
                    }
                }
            }
        }
    }

    /// A handler writing each line to `output` (tests).
    public init(label: String, output: @escaping @Sendable ([UInt8]) -> Void) {
        self.label = label
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("time", Date.now.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))),
            ("level", event.level.rawValue),
            ("label", label),
            ("message", event.message.description),
            ("source", event.source),
        ]
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        // Metadata never shadows the fixed fields: a colliding key gets a `meta.` prefix.
        let fixed = Set(fields.map(\.0))
        for key in merged.keys.sorted() {
            fields.append((fixed.contains(key) ? "meta." + key : key, merged[key]!.description))
        }
        var line = "{"
        for (index, (key, value)) in fields.enumerated() {
            if index > 0 { line += "," }
            line += JSONWriter.string(.string(key)) + ":" + JSONWriter.string(.string(value))
        }
        line += "}\n"
        output(Array(line.utf8))
    }
}

import Logging

/// swift-log's text lines on standard error (``StreamLogHandler``), with the handler's own
/// metadata merged into each line only when a line is written.
///
/// `StreamLogHandler` formats its whole metadata every time one key is set; Hummingbird sets
/// `hb.request.id` on a copy of the logger for every request, so that formatting ran on every
/// request even when nothing was logged (3% of a `GET /.health` in a profile).
public struct TextLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }
    private var inner: StreamLogHandler

    /// A handler writing to standard error.
    public init(label: String) {
        inner = StreamLogHandler.standardError(label: label)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var event = event
        if !metadata.isEmpty {
            event.metadata = metadata.merging(event.metadata ?? [:]) { _, new in new }
        }
        inner.log(event: event)
    }
}

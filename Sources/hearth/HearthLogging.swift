import HearthServer
import Logging

/// Sets up swift-log for `hearth serve`: text lines (swift-log's stream handler, through ``TextLogHandler``) or one JSON
/// object per line, on standard error, at the configured level.
enum HearthLogging {
    static func bootstrap(level: String, format: String) -> Logger {
        let logLevel = Logger.Level(rawValue: level) ?? .info
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = format == "json" ? JSONLogHandler(label: label) : TextLogHandler(label: label)
            handler.logLevel = logLevel
            return handler
        }
        var logger = Logger(label: "hearth")
        logger.logLevel = logLevel
        return logger
    }
}

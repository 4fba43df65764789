import HearthCore

/// What a request URL names: a reserved endpoint, or data at a path.
enum RESTTarget: Equatable {
    case health
    /// `/.ready`: the server has opened (recovered) every namespace and serves requests.
    case ready
    /// `/.metrics`: Prometheus' text format.
    case metrics
    case inspectDatabases
    case inspectStreams
    /// The web console (`/.console/`).
    case console
    /// `/` from a browser: sent to the console.
    case consoleRedirect
    /// `/.lp`: the realtime protocol by long polling (the browser SDK's fallback).
    case longPoll
    case settings(name: String)
    /// Data at `path`; `priority` when the URL ended in `/.priority.json`; `csv` for `.csv`.
    case data(path: Path, priority: Bool, csv: Bool)

    /// Parses the raw (still percent-encoded) URL path.
    static func parse(rawPath: String) throws(RESTTargetError) -> RESTTarget {
        switch rawPath {
        case "/.health", "/.health.json": return .health
        case "/.ready", "/.ready.json": return .ready
        case "/.metrics": return .metrics
        case "/.inspect/databases.json": return .inspectDatabases
        case "/.inspect/streams.json": return .inspectStreams
        case "/.console", "/.console/", "/.console/index.html": return .console
        case LongPollEndpoint.path: return .longPoll
        default: break
        }
        if rawPath.hasPrefix("/.settings/") {
            let rest = rawPath.dropFirst("/.settings/".count)
            guard rest.hasSuffix(".json") else { throw .notFound }
            return .settings(name: String(rest.dropLast(5)))
        }
        let csv = rawPath.hasSuffix(".csv")
        guard rawPath.hasSuffix(".json") || csv else { throw .missingJSONSuffix }
        var segments = rawPath.dropLast(csv ? 4 : 5).split(separator: "/", omittingEmptySubsequences: true)
        var priority = false
        if segments.last == ".priority" {
            guard !csv else { throw .notFound }
            priority = true
            segments.removeLast()
        }
        do {
            let path = try Path(urlSegments: segments)
            return .data(path: path, priority: priority, csv: csv)
        } catch {
            throw .invalid(error)
        }
    }
}

enum RESTTargetError: Error, Equatable {
    case missingJSONSuffix
    case notFound
    case invalid(DataError)
}

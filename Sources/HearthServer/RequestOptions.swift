import HearthCore

/// The query parameters of a REST request, decoded and checked.
///
/// Firebase refuses parameters it does not know with 400, so Hearth does too; the
/// undocumented ones that real tools send (`auth_variable_override`, `disableTriggers`,
/// `dryRun`, `format=strict`, `ac`, `ns`) are accepted.
public struct RequestOptions: Sendable {
    public enum PrintMode: Sendable { case normal, pretty, silent }

    public var print = PrintMode.normal
    public var shallow = false
    /// `format=export`: include priorities.
    public var export = false
    /// `format=strict`: rules as strict JSON.
    public var strict = false
    public var callback: String?
    public var download: String?
    public var namespace: String?
    public var auth: String?
    public var accessToken: String?
    public var authVariableOverride: String?
    public var dryRun = false
    public var methodOverride: String?
    /// `timeout=`, in milliseconds.
    public var timeoutMilliseconds: Int?
    /// Query parameters (`orderBy`, `limitToFirst`, ...), kept for the query engine.
    public var query: [String: String] = [:]

    /// Parameters accepted and ignored: they change nothing Hearth does.
    static let ignored: Set<String> = ["disableTriggers", "ac"]
    /// Query parameters.
    static let queryNames: Set<String> = [
        "orderBy", "startAt", "endAt", "equalTo", "startAfter", "endBefore", "limitToFirst", "limitToLast",
    ]
    static let writeSizeLimits: Set<String> = ["tiny", "small", "medium", "large", "unlimited"]

    public init() {}

    /// Decodes a raw query string (`a=1&b=%22x%22`); `+` is a space, as in HTML forms.
    public init(queryString: String?) throws(DataError) {
        for (name, value) in try RequestOptions.pairs(queryString ?? "") { try set(name, value) }
    }

    /// The decoded `name=value` pairs of a raw query string, in order; `+` is a space.
    static func pairs(_ queryString: String) throws(DataError) -> [(name: String, value: String)] {
        var pairs: [(name: String, value: String)] = []
        for pair in queryString.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = PercentDecoding.decode(parts[0], plusAsSpace: true),
                let value = PercentDecoding.decode(parts.count > 1 ? parts[1] : "", plusAsSpace: true)
            else { throw DataError("Invalid query string: malformed percent-encoding.") }
            pairs.append((name, value))
        }
        return pairs
    }

    mutating func set(_ name: String, _ value: String) throws(DataError) {
        switch name {
        case "print":
            switch value {
            case "pretty": print = .pretty
            case "silent": print = .silent
            default: throw DataError("Invalid print parameter: must be \"pretty\" or \"silent\".")
            }
        case "shallow":
            switch value {
            case "true": shallow = true
            case "false": shallow = false
            default: throw DataError("Invalid shallow parameter: must be \"true\" or \"false\".")
            }
        case "format":
            switch value {
            case "export": export = true
            case "strict": strict = true
            default: throw DataError("Invalid format parameter: must be \"export\" or \"strict\".")
            }
        case "callback":
            guard RequestOptions.isValidCallback(value) else {
                throw DataError("Invalid callback parameter: must be a JavaScript identifier.")
            }
            callback = value
        case "download":
            guard !value.isEmpty else { throw DataError("Invalid download parameter: a file name is required.") }
            download = value
        case "ns":
            namespace = value
        case "auth":
            auth = value
        case "access_token":
            accessToken = value
        case "auth_variable_override":
            authVariableOverride = value
        case "dryRun":
            // Only rules writes take it (a data write with dryRun=true is refused).
            switch value {
            case "true": dryRun = true
            case "false": dryRun = false
            default: throw DataError("Invalid dryRun parameter: must be \"true\" or \"false\".")
            }
        case "x-http-method-override":
            methodOverride = value.uppercased()
        case "timeout":
            timeoutMilliseconds = try RequestOptions.parseTimeout(value)
        case "writeSizeLimit":
            guard RequestOptions.writeSizeLimits.contains(value) else {
                throw DataError("Invalid writeSizeLimit parameter: must be tiny, small, medium, large or unlimited.")
            }
        case _ where RequestOptions.ignored.contains(name):
            break
        case _ where RequestOptions.queryNames.contains(name):
            query[name] = value
        default:
            throw DataError("The request does not support the query parameter \"\(name)\".")
        }
    }

    /// `timeout=<n><ms|s|min>`: positive and at most 15 minutes.
    static func parseTimeout(_ value: String) throws(DataError) -> Int {
        let error = DataError("Invalid timeout parameter: use a positive number with ms, s or min, at most 15min.")
        let units: [(String, Int)] = [("ms", 1), ("min", 60_000), ("s", 1000)]
        for (suffix, scale) in units where value.hasSuffix(suffix) {
            guard let number = Int(value.dropLast(suffix.count)), number > 0 else { throw error }
            let (milliseconds, overflow) = number.multipliedReportingOverflow(by: scale)
            guard !overflow, milliseconds <= 15 * 60_000 else { throw error }
            return milliseconds
        }
        throw error
    }

    /// JSONP callbacks: a dotted JavaScript identifier, nothing that could inject script.
    static func isValidCallback(_ value: String) -> Bool {
        guard !value.isEmpty, value.utf8.count <= 128 else { return false }
        return value.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "$") || byte == UInt8(ascii: ".")
        }
    }
}

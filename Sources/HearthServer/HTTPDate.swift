import HTTPTypes

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `Date` header (RFC 9110's IMF-fixdate), worked out once a second.
struct HTTPDate {
    private var second = -1
    private var field = HTTPField(name: .date, value: "")

    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// The field for the current time, for example `Date: Mon, 07 Dec 2026 17:46:55 GMT`.
    mutating func now() -> HTTPField {
        var now = time(nil)
        if now != second {
            second = now
            field = HTTPField(name: .date, value: HTTPDate.format(&now))
        }
        return field
    }

    static func format(_ seconds: inout time_t) -> String {
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}

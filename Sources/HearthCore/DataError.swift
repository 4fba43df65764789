/// Why a request's data, path or parameters were refused. Every case maps to a 400 response
/// whose `error` text is ``message``, worded as Firebase words it where Firebase's text is known.
public struct DataError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The text for the `{"error": ...}` body.
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }

    /// Data that could not be parsed or is not valid Firebase data.
    public static func invalidData(_ message: String) -> DataError { DataError(message) }

    /// Firebase's generic parse failure.
    public static let unparseable = DataError("Invalid data; couldn't parse JSON object, array, or value.")

    /// A path that contains a forbidden character or is too long or deep.
    public static func invalidPath(_ detail: String = "Invalid token in path") -> DataError {
        DataError("Invalid path: \(detail)")
    }
}

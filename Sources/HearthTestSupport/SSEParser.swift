/// One event of a `text/event-stream` body, as ``SSEParser`` dispatches it.
public struct SSEEvent: Equatable, Sendable, CustomStringConvertible {
    /// The event's type: its `event:` field, or `message` when it has none (as a browser's
    /// `EventSource` names it).
    public var event: String
    /// The event's `data:` lines, joined with `\n` (without a final `\n`).
    public var data: String
    /// The `id:` field of this event, if it had one. (The id a client would send back as
    /// `Last-Event-ID`, which carries over from earlier events, is ``SSEParser/lastEventID``.)
    public var id: String?

    public init(event: String = "message", data: String, id: String? = nil) {
        self.event = event
        self.data = data
        self.id = id
    }

    /// The `id` as a number: Hearth's sequence number of the change; nil without an `id`.
    public var sequence: UInt64? { id.flatMap { UInt64($0) } }

    /// The event as it would be written, for test failure messages.
    public var description: String {
        var text = "event: \(event)\n"
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) { text += "data: \(line)\n" }
        if let id { text += "id: \(id)\n" }
        return text
    }
}

/// An incremental parser of the `text/event-stream` format (server-sent events), as the
/// [HTML standard](https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation)
/// describes it.
///
/// Feed it the bytes of a response body in chunks of any size, split anywhere (inside a line,
/// a multi-byte character or a CRLF); each ``feed(_:)`` returns the events that the chunk
/// completed.
///
/// - Lines end with CRLF, LF or CR.
/// - A line starting with `:` is a comment and is ignored.
/// - `field: value` (one space after the colon is dropped); a line with no colon is a field
///   with an empty value. `event`, `data`, `id` and `retry` are understood; other fields are
///   ignored.
/// - `data` lines accumulate, joined with `\n`.
/// - A blank line ends the event. As in a browser, an event with no `data` line is not
///   dispatched (its `id`, if any, still becomes ``lastEventID``).
/// - An `id` containing NUL is ignored. A leading byte order mark is skipped.
/// - An event the stream ends in the middle of is never returned.
public struct SSEParser: Sendable {
    /// The bytes of the line being read.
    private var line: [UInt8] = []
    /// The previous byte ended a line with CR: an LF right after it belongs to the same line end.
    private var afterCR = false
    /// No line has ended yet (a byte order mark may start the first one).
    private var atStart = true
    /// The event being read.
    private var eventType = ""
    private var dataLines: [String] = []
    private var idField: String?

    /// The last `id` received (empty before any), which a client reconnecting sends as
    /// `Last-Event-ID`.
    public private(set) var lastEventID = ""
    /// The last valid `retry:` (milliseconds), if any.
    public private(set) var retry: Int?

    public init() {}

    /// Reads the next chunk of the stream; returns the events it completed, in order.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [SSEEvent] {
        var events: [SSEEvent] = []
        for byte in bytes {
            if afterCR {
                afterCR = false
                if byte == UInt8(ascii: "\n") { continue }
            }
            switch byte {
            case UInt8(ascii: "\r"):
                afterCR = true
                if let event = endLine() { events.append(event) }
            case UInt8(ascii: "\n"):
                if let event = endLine() { events.append(event) }
            default:
                line.append(byte)
            }
        }
        return events
    }

    /// Processes the line just ended; returns the event it completed, if any.
    private mutating func endLine() -> SSEEvent? {
        var text = String(decoding: line, as: UTF8.self)
        line.removeAll(keepingCapacity: true)
        if atStart {
            atStart = false
            if text.unicodeScalars.first == "\u{FEFF}" { text.unicodeScalars.removeFirst() }
        }
        if text.isEmpty { return dispatch() }
        if text.hasPrefix(":") { return nil }
        let field: Substring
        var value: Substring
        if let colon = text.firstIndex(of: ":") {
            field = text[..<colon]
            value = text[text.index(after: colon)...]
            if value.first == " " { value = value.dropFirst() }
        } else {
            field = text[...]
            value = ""
        }
        switch field {
        case "event":
            eventType = String(value)
        case "data":
            dataLines.append(String(value))
        case "id":
            if !value.unicodeScalars.contains("\0") {
                idField = String(value)
                lastEventID = String(value)
            }
        case "retry":
            if !value.isEmpty, value.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) {
                retry = Int(value)
            }
        default:
            break
        }
        return nil
    }

    /// A blank line: the event read so far, if it has data; the buffers start again.
    private mutating func dispatch() -> SSEEvent? {
        defer {
            eventType = ""
            dataLines.removeAll()
            idField = nil
        }
        guard !dataLines.isEmpty else { return nil }
        return SSEEvent(event: eventType.isEmpty ? "message" : eventType, data: dataLines.joined(separator: "\n"), id: idField)
    }
}

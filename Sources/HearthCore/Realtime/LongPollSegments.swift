import Foundation

/// Joins the segments a long-polling client sends back into its messages.
///
/// The browser SDK JSON-encodes a message, base64-encodes its UTF-8 with the web-safe alphabet
/// (`-`, `_`, and `.` for padding), cuts that into chunks of at most 1,840 characters and
/// numbers the chunks consecutively per connection from 0. Each poll carries some of them as
/// `seg<i>` (the chunk's number), `ts<i>` (how many chunks the message has) and `d<i>` (the
/// chunk). Two polls may be outstanding, so chunks can arrive out of order; a message is
/// complete when all its chunks, from the next expected number on, have arrived.
public struct LongPollSegments: Sendable {
    /// One chunk as a poll carries it.
    public struct Segment: Equatable, Sendable {
        public var number: Int
        public var total: Int
        public var data: Substring

        public init(number: Int, total: Int, data: Substring) {
            self.number = number
            self.total = total
            self.data = data
        }
    }

    /// The largest message accepted, in bytes once decoded.
    public let maxMessageBytes: Int
    /// The chunk expected next: every chunk before it has been joined into a message.
    public private(set) var next = 0
    var waiting: [Int: Segment] = [:]
    var waitingCharacters = 0

    public init(maxMessageBytes: Int) {
        self.maxMessageBytes = maxMessageBytes
    }

    /// The chunks in a poll's parameters (`seg0`, `ts0`, `d0`, `seg1`, ...), in index order.
    /// Throws when a triple is incomplete or a number is not one.
    public static func segments(in parameters: [String: String]) throws(DataError) -> [Segment] {
        var segments: [Segment] = []
        var index = 0
        while let number = parameters["seg\(index)"] {
            guard let total = parameters["ts\(index)"], let data = parameters["d\(index)"] else {
                throw DataError("Long poll segment \(index) is missing its ts or d parameter.")
            }
            guard let number = Int(number), number >= 0, let total = Int(total), total >= 1 else {
                throw DataError("Long poll segment \(index) has a malformed number.")
            }
            segments.append(Segment(number: number, total: total, data: Substring(data)))
            index += 1
        }
        return segments
    }

    /// Takes a poll's chunks; returns the messages they complete, in order. A chunk already
    /// joined is ignored (a poll sent twice). Throws when the chunks cannot belong to a message
    /// the server accepts: a message longer than ``maxMessageBytes``, chunks numbered too far
    /// ahead, counts that disagree, or text that is not web-safe base64 of UTF-8 JSON.
    public mutating func receive(_ segments: [Segment]) throws(DataError) -> [[UInt8]] {
        // Base64 is 4 characters for 3 bytes; a chunk is at most 1,840 characters.
        let maxCharacters = (maxMessageBytes + 2) / 3 * 4
        let maxChunks = maxCharacters / LongPollSegments.minimumChunkCharacters + 1
        for segment in segments {
            guard segment.number >= next else { continue }
            guard segment.total <= maxChunks else { throw tooLarge() }
            guard segment.number - next < 2 * maxChunks else {
                throw DataError("Long poll segment \(segment.number) is too far ahead of \(next).")
            }
            if let previous = waiting.updateValue(segment, forKey: segment.number) {
                waitingCharacters -= previous.data.count
            }
            waitingCharacters += segment.data.count
            // Beyond one whole message, only what two outstanding polls can carry waits.
            guard waitingCharacters <= maxCharacters + 8192, waiting.count <= maxChunks + 8 else { throw tooLarge() }
        }
        var messages: [[UInt8]] = []
        while let first = waiting[next] {
            let numbers = next..<(next + first.total)
            guard numbers.allSatisfy({ waiting[$0] != nil }) else { break }
            var text = ""
            for number in numbers {
                let chunk = waiting.removeValue(forKey: number)!
                guard chunk.total == first.total else {
                    throw DataError("Long poll segments \(next) and \(number) disagree on their message's length.")
                }
                waitingCharacters -= chunk.data.count
                text += chunk.data
            }
            guard text.count <= maxCharacters else { throw tooLarge() }
            messages.append(try LongPollSegments.decode(text))
            next = numbers.upperBound
        }
        return messages
    }

    /// The bytes of web-safe base64 text (`-` `_`, `.` as padding; standard `+` `/` `=` too).
    public static func decode(_ text: String) throws(DataError) -> [UInt8] {
        var standard = ""
        standard.reserveCapacity(text.utf8.count + 3)
        for character in text.unicodeScalars {
            switch character {
            case "-": standard.unicodeScalars.append("+")
            case "_": standard.unicodeScalars.append("/")
            case ".": standard.unicodeScalars.append("=")
            default: standard.unicodeScalars.append(character)
            }
        }
        // The SDK pads; padding is added here for a client that does not.
        let remainder = standard.utf8.count % 4
        if remainder == 2 || remainder == 3 { standard += String(repeating: "=", count: 4 - remainder) }
        guard let data = Data(base64Encoded: standard) else {
            throw DataError("Long poll data is not web-safe base64.")
        }
        return Array(data)
    }

    /// The shortest chunk counted when bounding how many chunks a message may have (the SDK
    /// cuts at 1,840 characters; a client cutting finer is allowed this much).
    static let minimumChunkCharacters = 64

    func tooLarge() -> DataError {
        DataError("Message too large: the server accepts messages of at most \(maxMessageBytes) bytes.")
    }
}

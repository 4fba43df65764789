/// The realtime protocol's framing on top of WebSocket text messages.
///
/// A message longer than 16,384 characters travels as a frame holding only the number of
/// slices (`"3"`), then the slices; a shorter one as a single frame. The SDKs send the frame
/// `"0"` as a keep-alive after 45 s of silence.
public enum WireFrames {
    /// The SDKs' slice size, in characters.
    public static let sliceSize = 16_384

    /// The frames that carry `message` (UTF-8): the message itself when it fits one slice, else
    /// a count frame and slices of at most ``sliceSize`` bytes each, cut between characters (so
    /// each is valid UTF-8 text, and no longer in UTF-16 units than the SDKs' own slices).
    public static func split(_ message: [UInt8]) -> [ArraySlice<UInt8>] {
        guard message.count > sliceSize else { return [message[...]] }
        var slices: [ArraySlice<UInt8>] = []
        var start = 0
        while start < message.count {
            var end = min(start + sliceSize, message.count)
            // Back off continuation bytes (10xxxxxx) so a character is never cut.
            while end < message.count, end > start, message[end] & 0xC0 == 0x80 { end -= 1 }
            slices.append(message[start..<end])
            start = end
        }
        return [Array(String(slices.count).utf8)[...]] + slices
    }
}

/// Joins a client's frames back into messages, per connection: a frame of one to six digits
/// announces how many frames the next message has (`"0"` alone is the SDKs' keep-alive);
/// any other frame is a whole message.
public struct WireFrameAssembler: Sendable {
    /// The largest message accepted, in bytes, once joined.
    public let maxMessageBytes: Int
    var expected = 0
    var received = 0
    var buffer: [UInt8] = []

    public init(maxMessageBytes: Int) {
        self.maxMessageBytes = maxMessageBytes
    }

    /// What one frame amounts to.
    public enum Outcome: Equatable, Sendable {
        /// A whole message.
        case message([UInt8])
        /// Part of a message, or a keep-alive: nothing to do yet.
        case pending
    }

    /// Takes the next frame's text. Throws when a message grows past ``maxMessageBytes``.
    public mutating func receive(_ frame: [UInt8]) throws(DataError) -> Outcome {
        if expected > 0 {
            guard buffer.count + frame.count <= maxMessageBytes else { throw tooLarge() }
            buffer.append(contentsOf: frame)
            received += 1
            guard received == expected else { return .pending }
            defer {
                expected = 0
                received = 0
                buffer = []
            }
            return .message(buffer)
        }
        if !frame.isEmpty, frame.count <= 6, frame.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            let count = frame.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            // `0` is a keep-alive; `1` announces a message of one frame, which is harmless.
            if count > 0 {
                expected = count
                received = 0
                buffer = []
            }
            return .pending
        }
        guard frame.count <= maxMessageBytes else { throw tooLarge() }
        return .message(frame)
    }

    /// True while a split message is being received.
    public var isJoining: Bool { expected > 0 }

    func tooLarge() -> DataError {
        DataError("Message too large: the server accepts messages of at most \(maxMessageBytes) bytes.")
    }
}

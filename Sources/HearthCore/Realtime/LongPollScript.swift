/// What the server answers a long-polling browser: JavaScript, which the SDK loads as
/// `<script>` tags inside a hidden iframe (JSONP).
///
/// The start response defines `pLPCommand` and `pRTLPCB` in the iframe; they forward to the
/// page's `pLPCommand<cb>` and `pRTLPCB<cb>`, where `<cb>` is the number the client sent as
/// `cb`. Every later response calls them: `pRTLPCB(<n>, [messages])` delivers messages
/// (the client puts responses back in order by `n`, which counts from 0 and must not skip),
/// and `pLPCommand('close', <n>)` ends the session once response `n` has been handled.
public enum LongPollScript {
    /// The start response: the two forwarding functions, `start` with the poll id and
    /// password, and the hello as response 0.
    public static func start(callback: Int, id: String, password: String, hello: [UInt8]) -> [UInt8] {
        let script = """
            function pLPCommand(c, a1, a2, a3, a4) {
            parent.window["pLPCommand\(callback)"] && parent.window["pLPCommand\(callback)"](c, a1, a2, a3, a4);
            }
            function pRTLPCB(pN, data) {
            parent.window["pRTLPCB\(callback)"] && parent.window["pRTLPCB\(callback)"](pN, data);
            }
            pLPCommand('start','\(id)','\(password)');

            """
        var bytes = Array(script.utf8)
        append(number: 0, messages: [hello], to: &bytes)
        return bytes
    }

    /// `pRTLPCB(<number>,[<message>,...]);`, with `close` after it when `closing`.
    public static func messages<Bytes: Collection<UInt8>>(number: Int, _ messages: [Bytes], closing: Bool = false) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(messages.reduce(32) { $0 + $1.count + 1 })
        append(number: number, messages: messages, to: &bytes)
        if closing { bytes += close(after: number) }
        return bytes
    }

    /// `pLPCommand('close',<number>);`: the client ends the session once it has handled
    /// response `number` (at once when it already has), or at once with no number.
    public static func close(after number: Int?) -> [UInt8] {
        guard let number else { return Array("pLPCommand('close');\n".utf8) }
        return Array("pLPCommand('close',\(number));\n".utf8)
    }

    static func append<Bytes: Collection<UInt8>>(number: Int, messages: [Bytes], to bytes: inout [UInt8]) {
        bytes += "pRTLPCB(\(number),[".utf8
        for (index, message) in messages.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            appendEscapingLineSeparators(message, to: &bytes)
        }
        bytes += "]);\n".utf8
    }

    /// JSON is JavaScript but for U+2028 and U+2029 in strings, which older engines take as
    /// line ends: they are written as `\u2028` and `\u2029` (JSON puts them only in strings).
    static func appendEscapingLineSeparators<Bytes: Collection<UInt8>>(_ message: Bytes, to bytes: inout [UInt8]) {
        var previous: (UInt8, UInt8) = (0, 0)
        for byte in message {
            if previous == (0xE2, 0x80), byte == 0xA8 || byte == 0xA9 {
                bytes.removeLast(2)
                bytes += (byte == 0xA8 ? "\\u2028" : "\\u2029").utf8
                previous = (0, 0)
                continue
            }
            bytes.append(byte)
            previous = (previous.1, byte)
        }
    }
}

/// The messages a server of Firebase's realtime protocol sends, as compact JSON text: the
/// hello, pongs, replies to requests, and pushes (`d` data, `m` merge, `c` listen revoked,
/// `ac` auth revoked). Values are in export format (priorities included: the SDKs' transaction
/// hash depends on them); paths are written without a leading slash, as Firebase writes them.
public enum WireEncoding {
    /// What a reply carries as its `d`.
    public enum ReplyData: Sendable {
        /// `""`: what Firebase answers to writes.
        case empty
        /// `{}`: a listen's `ok` (Android requires an object).
        case emptyObject
        /// `{"w":["no_index"]}`: a listen on an ordering the rules do not index.
        case warnings([String])
        /// A value (a `get`).
        case value(Node)
        /// An error's text (every non-`ok` status carries a string).
        case message(String)
        /// Auth's answer: the `auth` variable and when the credential expires (seconds).
        case auth(Node, expires: Int64?)
    }

    /// `{"t":"c","d":{"t":"h","d":{"ts":...,"v":"5","h":...,"s":...}}}`.
    public static func hello(time: Int64, host: String, session: String) -> [UInt8] {
        var output = OutputBuffer(capacity: 128)
        output.append("{\"t\":\"c\",\"d\":{\"t\":\"h\",\"d\":{\"ts\":")
        output.append(integer: time)
        output.append(",\"v\":\"5\",\"h\":")
        JSONWriter.writeString(host, to: &output)
        output.append(",\"s\":")
        JSONWriter.writeString(session, to: &output)
        output.append("}}}")
        return output.bytes
    }

    /// A control message with an empty object: `o` (pong), `n` (end of transmission), `a`
    /// (switch acknowledged).
    public static func control(_ command: StaticString) -> [UInt8] {
        var output = OutputBuffer(capacity: 64)
        output.append("{\"t\":\"c\",\"d\":{\"t\":\"")
        output.append(command)
        output.append("\",\"d\":{}}}")
        return output.bytes
    }

    /// `r`: reset. On an upgrading WebSocket the client gives up the upgrade and goes on with
    /// long polling; otherwise it reconnects, to `host`.
    public static func reset(host: String) -> [UInt8] {
        control("r", text: host)
    }

    /// `s`: the server shuts this client out for good (the SDKs stop reconnecting), for fatal
    /// errors only.
    public static func shutdown(reason: String) -> [UInt8] {
        control("s", text: reason)
    }

    /// A control message carrying a string.
    static func control(_ command: StaticString, text: String) -> [UInt8] {
        var output = OutputBuffer(capacity: 64 + text.utf8.count)
        output.append("{\"t\":\"c\",\"d\":{\"t\":\"")
        output.append(command)
        output.append("\",\"d\":")
        JSONWriter.writeString(text, to: &output)
        output.append("}}")
        return output.bytes
    }

    /// `{"t":"d","d":{"r":<number>,"b":{"s":<status>,"d":<data>}}}`.
    public static func reply(_ number: Int64, status: String, data: ReplyData) -> [UInt8] {
        var writer = JSONWriter(options: WireEncoding.valueOptions, capacity: 96)
        writer.output.append("{\"t\":\"d\",\"d\":{\"r\":")
        writer.output.append(integer: number)
        writer.output.append(",\"b\":{\"s\":")
        JSONWriter.writeString(status, to: &writer.output)
        writer.output.append(",\"d\":")
        switch data {
        case .empty: writer.output.append("\"\"")
        case .emptyObject: writer.output.append("{}")
        case .warnings(let warnings):
            writer.output.append("{\"w\":[")
            for (index, warning) in warnings.enumerated() {
                if index > 0 { writer.output.append(",") }
                JSONWriter.writeString(warning, to: &writer.output)
            }
            writer.output.append("]}")
        case .value(let node): writer.writeValue(node)
        case .message(let text): JSONWriter.writeString(text, to: &writer.output)
        case .auth(let auth, let expires):
            writer.output.append("{\"auth\":")
            writer.writeValue(auth)
            writer.output.append(",\"expires\":")
            if let expires { writer.output.append(integer: expires) } else { writer.output.appendNull() }
            writer.output.append("}")
        }
        writer.output.append("}}}")
        return writer.output.bytes
    }

    /// Values go out in export format, so priorities reach the client.
    static let valueOptions = JSONWriter.Options(export: true)

    /// `d`: the data at `path` is now `value` (null: deleted).
    public static func dataPush(path: Path, value: Node, tag: Int64?) -> [UInt8] {
        var writer = JSONWriter(options: WireEncoding.valueOptions, capacity: 128)
        writer.output.append("{\"t\":\"d\",\"d\":{\"a\":\"d\",\"b\":{\"p\":")
        writePath(path, to: &writer.output)
        writer.output.append(",\"d\":")
        writer.writeValue(value)
        writeTag(tag, to: &writer.output)
        writer.output.append("}}}")
        return writer.output.bytes
    }

    /// `m`: each relative path below `path` is now its value (null: deleted); others stay.
    public static func mergePush(path: Path, children: [(key: String, value: Node)], tag: Int64?) -> [UInt8] {
        var writer = JSONWriter(options: WireEncoding.valueOptions, capacity: 128)
        writer.output.append("{\"t\":\"d\",\"d\":{\"a\":\"m\",\"b\":{\"p\":")
        writePath(path, to: &writer.output)
        writer.output.append(",\"d\":")
        writer.write(members: children)
        writeTag(tag, to: &writer.output)
        writer.output.append("}}}")
        return writer.output.bytes
    }

    /// `c`: the listen at `path` (the query the client sent, if it was one) may no longer read.
    public static func listenRevoked(path: Path, queryText: String?) -> [UInt8] {
        var output = OutputBuffer(capacity: 96)
        output.append("{\"t\":\"d\",\"d\":{\"a\":\"c\",\"b\":{\"p\":")
        writePath(path, to: &output)
        if let queryText {
            output.append(",\"q\":[")
            output.append(queryText)
            output.append("]")
        }
        output.append("}}}")
        return output.bytes
    }

    /// `ac`: the connection's credential is no longer valid (`expired_token`, ...).
    public static func authRevoked(status: String, reason: String) -> [UInt8] {
        var output = OutputBuffer(capacity: 96)
        output.append("{\"t\":\"d\",\"d\":{\"a\":\"ac\",\"b\":{\"s\":")
        JSONWriter.writeString(status, to: &output)
        output.append(",\"d\":")
        JSONWriter.writeString(reason, to: &output)
        output.append("}}}")
        return output.bytes
    }

    /// `a/b` (no leading slash; the root is `""`).
    static func writePath(_ path: Path, to output: inout OutputBuffer) {
        JSONWriter.writeString(path.relativeText, to: &output)
    }

    static func writeTag(_ tag: Int64?, to output: inout OutputBuffer) {
        guard let tag else { return }
        output.append(",\"t\":")
        output.append(integer: tag)
    }
}

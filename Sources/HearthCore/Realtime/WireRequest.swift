/// One message from a client of Firebase's realtime protocol (the SDKs' WebSocket and long
/// polling transports), decoded: a control message (`{"t":"c",...}`) or a request
/// (`{"t":"d","d":{"r":1,"a":"p","b":{...}}}`).
///
/// A message whose envelope is broken throws (the connection is closed: there is no request
/// number to answer); a request whose body is wrong decodes to its number and the error, so the
/// client gets an error reply for it.
public enum WireMessage: Sendable {
    /// A control message: `p` (ping), `n` and `a` (transport upgrade), or another command.
    case control(String)
    /// A data request: its number and what it asks, or why it cannot be done.
    case request(number: Int64, action: Result<WireAction, DataError>)

    /// Decodes one whole message (frames already joined). `now` is the server time that
    /// `{".sv":"timestamp"}` placeholders take.
    public static func decode(_ bytes: UnsafeRawBufferPointer, now: Int64) throws(DataError) -> WireMessage {
        let envelope = try JSONMembers(bytes, range: 0..<bytes.count)
        guard let typeRange = envelope["t"], let dataRange = envelope["d"] else {
            throw DataError("Malformed message: an envelope needs \"t\" and \"d\".")
        }
        let inner = try JSONMembers(bytes, range: dataRange)
        switch try JSONMembers.string(bytes, range: typeRange) {
        case "c":
            guard let command = inner["t"] else { throw DataError("Malformed message: a control message needs \"t\".") }
            return .control(try JSONMembers.string(bytes, range: command))
        case "d":
            guard let numberRange = inner["r"], case .int(let number) = try JSONMembers.primitive(bytes, range: numberRange)
            else { throw DataError("Malformed message: a request needs an integer \"r\".") }
            guard let actionRange = inner["a"] else { return .request(number: number, action: .failure(DataError("The request has no action."))) }
            do throws(DataError) {
                let name = try JSONMembers.string(bytes, range: actionRange)
                let body = try inner["b"].map { range throws(DataError) in try WireBody(bytes, range: range) } ?? WireBody.empty
                return .request(number: number, action: .success(try WireAction(name, body: body, bytes: bytes, now: now)))
            } catch {
                return .request(number: number, action: .failure(error))
            }
        default:
            throw DataError("Malformed message: unknown envelope type.")
        }
    }
}

/// A request's body: the members of `b`.
struct WireBody {
    var members: JSONMembers?

    static let empty = WireBody(members: nil)

    init(members: JSONMembers?) { self.members = members }

    init(_ bytes: UnsafeRawBufferPointer, range: Range<Int>) throws(DataError) {
        guard JSONMembers.isObject(bytes, range: range) else {
            // `{}` bodies are sometimes written as other values by old clients; only an object
            // has fields.
            try JSONMembers.validate(bytes, range: range)
            members = nil
            return
        }
        members = try JSONMembers(bytes, range: range)
    }

    subscript(key: String) -> Range<Int>? { members?[key] }
}

/// What a realtime request asks for (the `a` of the protocol and its body).
public enum WireAction: Sendable {
    /// `s`: the SDK's usage counters (answered `ok`, not kept).
    case stats
    /// `auth` (a JWT) or `gauth` (another credential: the admin token, `owner` in emulator
    /// mode), with the admin's `authvar` override or `noauth`.
    case auth(credential: String, override: AuthOverride)
    /// `unauth`: back to anonymous.
    case unauth
    /// `appcheck` (a token) or `unappcheck` / `unappeck`.
    case appCheck(token: String?)
    /// `q`: listen to a location or a query.
    case listen(WireListen)
    /// `n`: stop listening.
    case unlisten(WireListen)
    /// `g`: read once.
    case get(path: Path, query: Query?)
    /// `p`: set a value (a transaction when `hash` is given); `priorityOnly` for a path that
    /// ended in `/.priority`.
    case put(path: Path, value: ParsedNode, hash: String?, priorityOnly: Bool)
    /// `m`: update several relative paths.
    case merge(path: Path, entries: [UpdateEntry])
    /// `o`: on disconnect, set (`null` removes).
    case onDisconnectPut(path: Path, value: ParsedNode)
    /// `om`: on disconnect, update.
    case onDisconnectMerge(path: Path, entries: [UpdateEntry])
    /// `oc`: cancel what is pending at and below a path.
    case onDisconnectCancel(path: Path)
    /// An action this server does not know.
    case unknown(String)

    /// An admin credential's override of the `auth` variable.
    public enum AuthOverride: Sendable, Equatable {
        case none
        /// `authvar`: the rules run with this `auth`.
        case authVariable(Node)
        /// `noauth`: the rules run as anonymous.
        case anonymous
    }

    init(_ name: String, body: WireBody, bytes: UnsafeRawBufferPointer, now: Int64) throws(DataError) {
        func path() throws(DataError) -> Path {
            guard let range = body["p"] else { throw DataError("The request has no path (\"p\").") }
            return try Path(validating: try JSONMembers.string(bytes, range: range))
        }
        func optionalString(_ key: String) throws(DataError) -> String? {
            guard let range = body[key] else { return nil }
            if case .null = try JSONMembers.primitive(bytes, range: range) { return nil }
            return try JSONMembers.string(bytes, range: range)
        }
        func data(depth: Int) throws(DataError) -> ParsedNode {
            guard let range = body["d"] else { return ParsedNode(node: .null) }
            let options = JSONParser.Options(maxDepth: Path.maxDepth - depth, serverTime: now)
            return try JSONParser.parse(UnsafeRawBufferPointer(rebasing: bytes[range]), options: options)
        }
        func updates(at path: Path) throws(DataError) -> [UpdateEntry] {
            guard let range = body["d"] else { throw DataError("An update needs data (\"d\").") }
            return try JSONParser.parseUpdate(
                UnsafeRawBufferPointer(rebasing: bytes[range]), locationDepth: path.depth, options: JSONParser.Options(serverTime: now))
        }
        /// A path that may end in `/.priority` (a `setPriority`).
        func writePath() throws(DataError) -> (Path, priorityOnly: Bool) {
            guard let range = body["p"] else { throw DataError("The request has no path (\"p\").") }
            let text = try JSONMembers.string(bytes, range: range)
            var segments = text.split(separator: "/", omittingEmptySubsequences: true)
            let priorityOnly = segments.last == ".priority"
            if priorityOnly { segments.removeLast() }
            return (try Path(validating: segments.joined(separator: "/")), priorityOnly)
        }

        switch name {
        case "s":
            self = .stats
        case "auth", "gauth":
            guard let credential = try optionalString("cred") else { throw DataError("An auth request needs a credential (\"cred\").") }
            var override = AuthOverride.none
            if let range = body["noauth"], case .bool(true) = try JSONMembers.primitive(bytes, range: range) {
                override = .anonymous
            } else if let range = body["authvar"] {
                let node = try JSONParser.parse(UnsafeRawBufferPointer(rebasing: bytes[range])).node.withoutPriority
                switch node {
                case .null: override = .anonymous
                case .object: override = .authVariable(node)
                default: throw DataError("authvar must be an object or null.")
                }
            }
            self = .auth(credential: credential, override: override)
        case "unauth":
            self = .unauth
        case "appcheck":
            self = .appCheck(token: try optionalString("token"))
        case "unappcheck", "unappeck":
            self = .appCheck(token: nil)
        case "q", "l":
            self = .listen(try WireListen(body: body, path: try path(), bytes: bytes))
        case "n", "u":
            self = .unlisten(try WireListen(body: body, path: try path(), bytes: bytes))
        case "g":
            let listen = try WireListen(body: body, path: try path(), bytes: bytes)
            self = .get(path: listen.path, query: listen.query)
        case "p":
            let (path, priorityOnly) = try writePath()
            self = .put(path: path, value: try data(depth: path.depth), hash: try optionalString("h"), priorityOnly: priorityOnly)
        case "m":
            let path = try path()
            self = .merge(path: path, entries: try updates(at: path))
        case "o":
            let path = try path()
            self = .onDisconnectPut(path: path, value: try data(depth: path.depth))
        case "om":
            let path = try path()
            self = .onDisconnectMerge(path: path, entries: try updates(at: path))
        case "oc":
            self = .onDisconnectCancel(path: try path())
        default:
            self = .unknown(name)
        }
    }
}

/// A listen's location and query, as `q`, `n` and `g` carry them.
public struct WireListen: Sendable {
    public var path: Path
    /// The query, if the client sent one that filters (a query object with only an ordering
    /// is the location itself).
    public var query: Query?
    /// The client's tag for a filtered listen; every push for it carries the tag.
    public var tag: Int64?
    /// The query object exactly as the client sent it (a revocation names it back).
    public var queryText: String?
    /// The hash of what the client already holds (`h`); `""` for nothing.
    public var hash: String?

    public init(path: Path, query: Query? = nil, tag: Int64? = nil, queryText: String? = nil, hash: String? = nil) {
        self.path = path
        self.query = query
        self.tag = tag
        self.queryText = queryText
        self.hash = hash
    }

    init(body: WireBody, path: Path, bytes: UnsafeRawBufferPointer) throws(DataError) {
        self.path = path
        if let range = body["t"] {
            switch try JSONMembers.primitive(bytes, range: range) {
            case .int(let tag): self.tag = tag
            case .null: break
            default: throw DataError("A listen's tag (\"t\") must be an integer.")
            }
        }
        if let range = body["h"], case .string(let hash) = try JSONMembers.primitive(bytes, range: range) { self.hash = hash }
        if let range = body["q"], JSONMembers.isObject(bytes, range: range) {
            let members = try JSONMembers(bytes, range: range)
            query = try Query(wire: members, bytes: bytes)
            queryText = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
        } else if let range = body["q"] {
            try JSONMembers.validate(bytes, range: range)
        }
    }

    /// The listen's identity within a connection: its path and its tag (the SDKs tag every
    /// filtered listen, and send untagged listens only for whole locations).
    public var identity: Identity { Identity(path: path, tag: tag) }

    public struct Identity: Hashable, Sendable {
        public var path: Path
        public var tag: Int64?
    }
}

import HTTPTypes
import HearthCore
import Hummingbird
import Logging
import NIOCore

/// `GET` and `PUT /.settings/rules.json`: read or replace a namespace's security rules.
/// Both need an admin credential.
struct RulesRequestHandler {
    let request: Request
    let method: String
    let options: RequestOptions
    let caller: Caller
    let namespace: String
    let configuration: ServerConfiguration
    let namespaces: NamespaceRegistry
    let rules: RulesRegistry
    let streams: StreamRegistry
    let logger: Logger

    /// Rules documents are small; Firebase's limit is 256 KB.
    static let maxRulesBytes = 256 * 1024

    func handle() async throws -> Response {
        guard caller.isAdmin else {
            throw PermissionDenied(reason: "the rules can only be read or changed with an admin credential")
        }
        switch method {
        case "GET": return read()
        case "PUT": return try await replace()
        default: throw ServiceError.methodNotAllowed(method)
        }
    }

    /// The document as uploaded (comments and all), or strict JSON with `format=strict`.
    func read() -> Response {
        let current = rules.rules(for: namespace)
        let text = options.strict ? current.strictJSON : current.source
        return Array(text.utf8).withUnsafeBytes { ResponseFactory.json($0) }
    }

    /// Compiles the new document; on success stores it and puts it in force (unless
    /// `dryRun=true`). A document with an error changes nothing.
    func replace() async throws -> Response {
        let buffer: ByteBuffer
        do {
            buffer = try await RequestBody.read(request, limit: RulesRequestHandler.maxRulesBytes)
        } catch let failure as ServiceError where failure.code == .tooLarge {
            throw ServiceError(.tooLarge, "The rules document is larger than 256 KB.")
        }
        guard let text = buffer.getString(at: buffer.readerIndex, length: buffer.readableBytes),
            text.utf8.elementsEqual(buffer.readableBytesView)
        else {
            throw DataError("The rules document is not valid UTF-8.")
        }
        let compiled: RuleSet
        do {
            compiled = try RuleSet.parse(text)
        } catch {
            throw DataError(error.description)
        }
        if !options.dryRun {
            try rules.replace(namespace, with: compiled, namespaces: namespaces)
            logger.notice("security rules replaced", metadata: ["namespace": "\(namespace)"])
            await streams.rulesChanged(namespace: namespace, rules: compiled)
        }
        let ok: StaticString = #"{"status":"ok"}"#
        return ResponseFactory.json(UnsafeRawBufferPointer(start: ok.utf8Start, count: ok.utf8CodeUnitCount))
    }
}

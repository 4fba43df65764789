import HTTPTypes
import HearthCore
import Hummingbird
import NIOCore

/// `GET` and `PUT /.settings/rules.json`: read or replace a namespace's security rules through
/// the ``DatabaseService`` (both need an admin credential).
struct RulesRequestHandler {
    let service: DatabaseService
    let request: Request
    let method: String
    let options: RequestOptions
    let caller: Caller
    let namespace: String

    /// Rules documents are small; Firebase's limit is 256 KB.
    static let maxRulesBytes = 256 * 1024

    func handle() async throws -> Response {
        switch method {
        case "GET":
            // The document as uploaded (comments and all), or strict JSON with `format=strict`.
            let text = try service.rulesDocument(namespace, strict: options.strict, as: caller)
            return Array(text.utf8).withUnsafeBytes { ResponseFactory.json($0) }.response
        case "PUT":
            try service.requireAdmin(caller)
            try await service.replaceRules(namespace, with: try await document(), dryRun: options.dryRun, as: caller)
            let ok: StaticString = #"{"status":"ok"}"#
            return ResponseFactory.json(UnsafeRawBufferPointer(start: ok.utf8Start, count: ok.utf8CodeUnitCount)).response
        default:
            try service.requireAdmin(caller)
            throw ServiceError.methodNotAllowed(method)
        }
    }

    /// The uploaded document: at most 256 KB of UTF-8.
    func document() async throws -> String {
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
        return text
    }
}

import HTTPTypes
import HearthStorage
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// Sends a REST write to the node that holds its namespace's write lease (nodes sharing
/// PostgreSQL; see Docs/CLUSTER.md) and answers with that node's answer, so that a namespace's
/// writes are normally made by one node and do not race at the fence. The realtime protocol's
/// writes are not forwarded (the fence keeps them correct wherever they are made).
///
/// A request that was forwarded already is never forwarded again; a holder that cannot be
/// reached makes this node write the namespace itself (the holder is likely dead: its lease
/// expires and this node takes it).
struct WriteForwarder: Sendable {
    /// Marks a forwarded request.
    static let forwardedHeader = HTTPField.Name("X-Hearth-Forwarded")!
    let storage: StorageEngine
    let maxBodyBytes: Int
    /// The forwarding header this server believes from its trusted proxies: the client's
    /// address is added to it, so that a holder that trusts this node counts the client's
    /// writes (`write-rate-limit`) against the client, not against this node.
    let forwardedHeader: ForwardedHeader
    let metrics: ServerMetrics
    let logger: Logger

    enum Route {
        /// The holder's answer.
        case answered(Response)
        /// Write here: the request, its body read (and kept for the handler).
        case here(Request)
    }

    /// Whether a write may be sent elsewhere: only with storage other nodes share (a data
    /// directory is this node's alone).
    var mayForward: Bool { storage.backend != nil }

    /// Where a write to `namespace` is made.
    func route(_ request: Request, namespace: String, client: ClientAddress) async throws -> Route {
        guard request.headers[Self.forwardedHeader] == nil, case .node(let address) = storage.writeOwner(of: namespace),
            let target = ForwardTarget(address)
        else { return .here(request) }
        let body = try await RequestBody.collect(request, limit: maxBodyBytes)
        var kept = request
        kept.body = Hummingbird.RequestBody(buffer: body)
        do {
            let answer = try await ForwardingClient.send(
                to: target, head: head(of: request, bodyBytes: body.readableBytes, client: client), body: body)
            metrics.forwardedWrites.increment()
            return .answered(response(from: answer))
        } catch ForwardingClient.Failure.unreachable(let reason) {
            logger.warning("the namespace's write lease holder cannot be reached; writing here",
                           metadata: ["namespace": "\(namespace)", "holder": "\(address)", "reason": "\(reason)"])
            storage.ownerUnreachable(namespace, address: address)
            return .here(kept)
        } catch {
            throw ServiceError(.unavailable,
                "Service unavailable: the node that writes this namespace (\(address)) did not answer (\(error)); the write may or may not have been made.")
        }
    }

    /// Hop-by-hop headers, not passed on.
    static let hopByHop: Set<String> = ["connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer"]

    func head(of request: Request, bodyBytes: Int, client: ClientAddress) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        for field in request.headers where !Self.hopByHop.contains(field.name.canonicalName) {
            headers.add(name: field.name.rawName, value: field.value)
        }
        if let address = client.address {
            // Appended last: what this node saw, after whatever the client or proxies wrote.
            switch forwardedHeader {
            case .xForwardedFor:
                let earlier = headers["x-forwarded-for"].joined(separator: ", ")
                headers.replaceOrAdd(name: "X-Forwarded-For", value: earlier.isEmpty ? "\(address)" : "\(earlier), \(address)")
            case .forwarded:
                let node = address.isIPv4 ? "\(address)" : "\"[\(address)]\""
                let earlier = headers["forwarded"].joined(separator: ", ")
                headers.replaceOrAdd(name: "Forwarded", value: earlier.isEmpty ? "for=\(node)" : "\(earlier), for=\(node)")
            }
        }
        if headers["host"].isEmpty, let authority = request.head.authority { headers.add(name: "Host", value: authority) }
        headers.add(name: "Content-Length", value: String(bodyBytes))
        headers.add(name: Self.forwardedHeader.rawName, value: "1")
        return HTTPRequestHead(
            version: .http1_1, method: HTTPMethod(rawValue: request.method.rawValue), uri: request.uri.description, headers: headers)
    }

    func response(from answer: ForwardingClient.Answer) -> Response {
        var headers = HTTPFields()
        for (name, value) in answer.head.headers where !Self.hopByHop.contains(name.lowercased()) {
            if let field = HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
        }
        return Response(
            status: HTTPResponse.Status(code: Int(answer.head.status.code)), headers: headers,
            body: ResponseBody(byteBuffer: answer.body))
    }
}

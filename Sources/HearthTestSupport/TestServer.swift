import HTTPTypes
import HearthCore
import HearthServer
import HearthStorage
import Hummingbird
import HummingbirdTesting
import NIOCore

/// A response as tests look at it.
public struct HTTPResult: Sendable {
    public let status: Int
    public let headers: HTTPFields
    public let body: String

    /// The body parsed as Firebase data (nil if it is not JSON).
    public var node: Node? {
        try? JSONParser.parse(Array(body.utf8)).node
    }

    /// The value of a header.
    public func header(_ name: String) -> String? {
        HTTPField.Name(name).flatMap { headers[$0] }
    }
}

/// A client for a test server that reads like the REST API: `try await client.put("/a.json", "1")`.
public struct HearthTestClient: Sendable {
    let client: any TestClientProtocol

    /// The port of a live test server (`withTestServer(live: true)`), for clients of its own
    /// such as ``SSEStream``; nil when requests go to the responder directly.
    public var port: Int? { client.port }

    public func request(
        _ method: HTTPRequest.Method, _ uri: String, body: String? = nil, headers: [String: String] = [:]
    ) async throws -> HTTPResult {
        var fields = HTTPFields()
        for (name, value) in headers { fields[HTTPField.Name(name)!] = value }
        let buffer = body.map { ByteBuffer(string: $0) }
        let response = try await client.executeRequest(uri: uri, method: method, headers: fields, body: buffer)
        return HTTPResult(status: Int(response.status.code), headers: response.headers, body: String(buffer: response.body))
    }

    public func get(_ uri: String, headers: [String: String] = [:]) async throws -> HTTPResult {
        try await request(.get, uri, headers: headers)
    }

    public func put(_ uri: String, _ body: String, headers: [String: String] = [:]) async throws -> HTTPResult {
        try await request(.put, uri, body: body, headers: headers)
    }

    public func post(_ uri: String, _ body: String, headers: [String: String] = [:]) async throws -> HTTPResult {
        try await request(.post, uri, body: body, headers: headers)
    }

    public func patch(_ uri: String, _ body: String, headers: [String: String] = [:]) async throws -> HTTPResult {
        try await request(.patch, uri, body: body, headers: headers)
    }

    public func delete(_ uri: String, headers: [String: String] = [:]) async throws -> HTTPResult {
        try await request(.delete, uri, headers: headers)
    }
}

extension ServerConfiguration {
    /// A test server's settings: an ephemeral port, rules that allow everything and namespaces
    /// that anyone may create, so tests of the data API need no credentials. Tests of rules,
    /// auth and namespace creation set their own.
    public static func openForTests(maxBodyBytes: Int = 256 * 1024 * 1024) -> ServerConfiguration {
        var configuration = ServerConfiguration(port: 0, maxBodyBytes: maxBodyBytes, rules: .allowAll, adminToken: testAdminToken)
        configuration.createNamespaces = true
        return configuration
    }

    /// The admin token of ``openForTests(maxBodyBytes:)``.
    public static let testAdminToken = "hearth-test-admin-token"
}

extension HearthTestClient {
    /// `Authorization: Bearer <admin token>` for servers made with ``ServerConfiguration/openForTests(maxBodyBytes:)``.
    public static let admin = ["Authorization": "Bearer \(ServerConfiguration.testAdminToken)"]
}

/// Runs `body` against a fresh in-memory Hearth server.
///
/// - Parameter live: true to run a real server on a loopback port (needed for concurrency and
///   connection-level tests); false to call the responder directly (fast).
public func withTestServer<Value: Sendable>(
    configuration: ServerConfiguration = .openForTests(),
    live: Bool = false,
    _ body: @Sendable (HearthTestClient) async throws -> Value
) async throws -> Value {
    let application = try HearthApplication.make(configuration: configuration, storage: StorageEngine(directory: nil))
    return try await application.test(live ? .live : .router) { client in
        try await body(HearthTestClient(client: client))
    }
}

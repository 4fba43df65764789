import HTTPTypes
import HearthCore
import Hummingbird

/// Who is making a request, as far as the rules are concerned.
public struct Caller: Sendable {
    /// The rules are not consulted (admin without `auth_variable_override`).
    public let bypassesRules: Bool
    /// The credential is an admin credential (needed for `/.settings/rules.json`), even when
    /// `auth_variable_override` makes the rules apply.
    public let isAdmin: Bool
    /// The `auth` variable: `.null` when anonymous.
    public let auth: Node
    /// When the credential expires (seconds since the epoch); streams end with
    /// `auth_revoked` then.
    public var expiresAt: Double?

    public static let anonymous = Caller(bypassesRules: false, isAdmin: false, auth: .null)
    public static let admin = Caller(bypassesRules: true, isAdmin: true, auth: .null)

    /// An admin acting as `auth` (`auth_variable_override`, the SDKs' `authvar`; null for
    /// anonymous): the rules apply to it. Anyone else keeps their own identity: the override
    /// is an admin's tool. Nil keeps the caller as it is.
    func overridden(by auth: Node?) -> Caller {
        guard isAdmin, let auth else { return self }
        return Caller(bypassesRules: false, isAdmin: true, auth: auth, expiresAt: expiresAt)
    }
}

/// Works out the caller of a request from its credential: `Authorization: Bearer <token>`,
/// `?auth=<token>` or `?access_token=<token>` (in that order of preference).
struct CallerResolver: Sendable {
    let adminToken: String?
    let emulator: Bool
    let verifier: TokenVerifier

    func resolve(_ request: Request, options: RequestOptions) async throws -> Caller {
        guard let token = try credential(of: request, options: options) else { return .anonymous }
        let caller: Caller
        do {
            caller = try await self.caller(credential: token)
        } catch {
            throw ServiceError(.unauthenticated, error.message)
        }
        return try caller.overridden(by: options.authVariableOverride.map(CallerResolver.parseOverride))
    }

    /// The caller when no signature has to be checked (no credential, the admin token, or
    /// `owner` in emulator mode); nil when a token has to be verified.
    func resolveWithoutWaiting(_ request: Request, options: RequestOptions) throws -> Caller? {
        guard let token = try credential(of: request, options: options) else { return .anonymous }
        guard isAdminCredential(token) else { return nil }
        return try Caller.admin.overridden(by: options.authVariableOverride.map(CallerResolver.parseOverride))
    }

    /// The request's credential, nil (or empty) when it has none.
    func credential(of request: Request, options: RequestOptions) throws -> String? {
        var token: String?
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                throw ServiceError(.unauthenticated, "Unsupported Authorization header; use 'Authorization: Bearer <token>'.")
            }
            token = parts[1].trimmingCharacters(in: .whitespaces)
        }
        token = token ?? options.auth ?? options.accessToken
        guard let token, !token.isEmpty else { return nil }
        return token
    }

    /// The admin token, or `owner` in emulator mode.
    func isAdminCredential(_ token: String) -> Bool {
        (adminToken.map { AdminToken.matches(token, $0) } ?? false) || (emulator && token == "owner")
    }

    /// The caller a credential proves: the admin (the admin token; `owner` in emulator mode; a
    /// legacy token with `admin: true`) or the identity of a verified token.
    func caller(credential token: String) async throws(TokenError) -> Caller {
        if isAdminCredential(token) { return .admin }
        let identity = try await verifier.verify(token)
        if identity.isAdmin { return Caller(bypassesRules: true, isAdmin: true, auth: .null, expiresAt: identity.expiresAt) }
        return Caller(bypassesRules: false, isAdmin: false, auth: identity.auth, expiresAt: identity.expiresAt)
    }

    /// `auth_variable_override=<json>`: an object, or `null` for anonymous.
    static func parseOverride(_ text: String) throws -> Node {
        let trimmed = text.drop { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard trimmed.hasPrefix("{") || trimmed.hasPrefix("null") else {
            throw DataError("Invalid auth_variable_override: it must be a JSON object or null.")
        }
        let node: Node
        do {
            node = try JSONParser.parse(Array(text.utf8)).node
        } catch {
            throw DataError("Invalid auth_variable_override: \(error.message)")
        }
        switch node.withoutPriority {
        case .null, .object: return node.withoutPriority
        default: throw DataError("Invalid auth_variable_override: it must be a JSON object or null.")
        }
    }
}

import Foundation
import HearthCore
import JWTKit

/// Why a token was refused (401).
public struct TokenError: Error, Sendable, CustomStringConvertible {
    public let message: String
    /// The token was valid once and has expired (the realtime protocol says `expired_token`).
    public var expired = false
    init(_ message: String, expired: Bool = false) {
        self.message = message
        self.expired = expired
    }
    public var description: String { message }
}

/// An identity proven by a token: the `auth` object rules see, or admin (a legacy token with
/// `admin: true`).
public struct VerifiedIdentity: Sendable {
    public let auth: Node
    public let isAdmin: Bool
    /// When the token expires (seconds since the epoch), if it does.
    public var expiresAt: Double?

    public init(auth: Node, isAdmin: Bool, expiresAt: Double? = nil) {
        self.auth = auth
        self.isAdmin = isAdmin
        self.expiresAt = expiresAt
    }
}

/// Verifies user JWTs without any network access: HS256 with configured secrets, RS256 and
/// ES256 with configured public keys (PEM keys or certificates) or a JWKS file.
///
/// The algorithm in the token's header must match the key that verifies it (an HS256 token is
/// never checked against an RSA key's bytes), and `alg: none` is accepted only when
/// ``Options/acceptUnsigned`` is set (emulator mode, for Firebase's mock tokens).
public struct TokenVerifier: Sendable {
    /// Key material and checks.
    public struct Options: Sendable {
        /// HS256 secrets (Firebase's legacy database secrets, or your own).
        public var hmacSecrets: [[UInt8]] = []
        /// PEM public keys or X.509 certificates: RSA keys verify RS256, P-256 keys ES256.
        public var publicKeysPEM: [String] = []
        /// A JWKS document; tokens must name one of its keys with `kid`.
        public var jwksJSON: String?
        /// Required `iss`, if set.
        public var issuer: String?
        /// Required `aud` (or one of them), if set.
        public var audience: String?
        /// Seconds of clock skew tolerated for `exp` and `nbf`.
        public var leewaySeconds: Int = 60
        /// Accept unsigned (`alg: none`) tokens, as Firebase's emulator does.
        public var acceptUnsigned = false

        public init() {}
    }

    struct Key: Sendable {
        let algorithm: String
        let keys: JWTKeyCollection
    }

    let options: Options
    let keys: [Key]
    let jwks: JWTKeyCollection?
    /// The `kid`s of the JWKS keys (the collection would fall back to a default key for an
    /// unknown `kid`; Hearth refuses such a token instead).
    let jwksKids: Set<String>

    /// Loads the keys; throws with a message that names the key that could not be read.
    public init(options: Options) async throws {
        self.options = options
        var keys: [Key] = []
        for secret in options.hmacSecrets {
            try TokenVerifier.checkSecret(secret)
            keys.append(Key(algorithm: "HS256", keys: await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)))
        }
        for (index, pem) in options.publicKeysPEM.enumerated() {
            keys.append(try await TokenVerifier.publicKey(pem, number: index + 1))
        }
        self.keys = keys
        if let jwksJSON = options.jwksJSON {
            do {
                jwks = try await JWTKeyCollection().add(jwksJSON: jwksJSON)
            } catch {
                throw TokenError("The JWKS document could not be read: \(error)")
            }
            var kids: Set<String> = []
            let document = (try? JSONParser.parse(Array(jwksJSON.utf8)).node) ?? .null
            for entry in document.child("keys").children {
                if case .string(let kid) = entry.value.child("kid") { kids.insert(kid) }
            }
            guard !kids.isEmpty else { throw TokenError("The JWKS document has no keys with a kid.") }
            jwksKids = kids
        } else {
            jwks = nil
            jwksKids = []
        }
    }

    /// HS256 secrets must have at least 256 bits (RFC 7518 §3.2); a Firebase legacy database
    /// secret has 40 characters.
    public static func checkSecret(_ secret: [UInt8]) throws(TokenError) {
        guard secret.count >= 32 else {
            throw TokenError("An HS256 secret must be at least 32 bytes long (this one has \(secret.count)).")
        }
    }

    /// A verifier with no keys: only unsigned tokens (if accepted) and admin tokens work.
    public init() {
        options = Options()
        keys = []
        jwks = nil
        jwksKids = []
    }

    static func publicKey(_ pem: String, number: Int) async throws -> Key {
        let isCertificate = pem.contains("BEGIN CERTIFICATE")
        if let rsa = try? (isCertificate ? Insecure.RSA.PublicKey(certificatePEM: pem) : Insecure.RSA.PublicKey(pem: pem)) {
            return Key(algorithm: "RS256", keys: await JWTKeyCollection().add(rsa: rsa, digestAlgorithm: .sha256))
        }
        if let ecdsa = try? (isCertificate ? ES256PublicKey(certificate: pem) : ES256PublicKey(pem: pem)) {
            return Key(algorithm: "ES256", keys: await JWTKeyCollection().add(ecdsa: ecdsa))
        }
        throw TokenError("Public key \(number) is neither an RSA (RS256) nor a P-256 (ES256) PEM key or certificate.")
    }

    /// True if any key is configured (so JWTs can be verified at all).
    public var hasKeys: Bool { !keys.isEmpty || jwks != nil || options.acceptUnsigned }

    /// Verifies `token` and returns the identity it proves.
    public func verify(_ token: String, now: Date = Date()) async throws(TokenError) -> VerifiedIdentity {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = TokenVerifier.base64URLDecode(parts[0]),
            let payloadBytes = TokenVerifier.base64URLDecode(parts[1]),
            let header = try? JSONParser.parse(headerBytes).node, case .object = header
        else {
            throw TokenError("Could not parse auth token.")
        }
        guard case .string(let algorithm) = header.child("alg") else { throw TokenError("Could not parse auth token: no alg in its header.") }
        var kid: String?
        if case .string(let value) = header.child("kid") { kid = value }

        if algorithm == "none" {
            guard options.acceptUnsigned else {
                throw TokenError("Unsigned auth tokens (alg none) are only accepted in emulator mode.")
            }
        } else {
            try await verifySignature(token, algorithm: algorithm, kid: kid)
        }
        guard let payload = try? JSONParser.parse(payloadBytes).node, case .object = payload else {
            throw TokenError("Could not parse auth token: its payload is not a JSON object.")
        }
        // The emulator's mock tokens are long expired by design (iat 0); Firebase's emulator
        // accepts them, so unsigned tokens skip the time checks.
        if algorithm != "none" { try checkClaims(payload, now: now) }
        var identity = try TokenVerifier.identity(from: payload, legacyAllowed: algorithm == "HS256")
        // A session (a stream, a realtime connection) ends at `exp` itself: the leeway lets a
        // token from an issuer whose clock runs a little ahead be accepted, not an expired one
        // keep a session open for longer.
        if algorithm != "none", let expires = TokenVerifier.number(payload.child("exp")) {
            identity.expiresAt = expires
        }
        return identity
    }

    func verifySignature(_ token: String, algorithm: String, kid: String?) async throws(TokenError) {
        var candidates: [JWTKeyCollection] = []
        if let kid, let jwks, jwksKids.contains(kid), ["RS256", "ES256"].contains(algorithm) {
            candidates.append(jwks)
        }
        candidates += keys.filter { $0.algorithm == algorithm }.map(\.keys)
        guard !candidates.isEmpty else {
            if ["HS256", "RS256", "ES256"].contains(algorithm) {
                let known = kid.map { " (kid \(TokenVerifier.printable($0)))" } ?? ""
                throw TokenError("Auth token signed with \(algorithm), but no \(algorithm) key\(known) is configured.")
            }
            throw TokenError("Unsupported auth token algorithm \(TokenVerifier.printable(algorithm)); use HS256, RS256 or ES256.")
        }
        for keys in candidates {
            if (try? await keys.verify(token, as: SignatureOnly.self)) != nil { return }
        }
        throw TokenError("Auth token signature is invalid.")
    }

    func checkClaims(_ payload: Node, now: Date) throws(TokenError) {
        let seconds = now.timeIntervalSince1970
        let leeway = Double(options.leewaySeconds)
        for claim in ["exp", "nbf", "iat"] where !payload.child(ChildKey(claim)).isNull {
            guard TokenVerifier.number(payload.child(ChildKey(claim))) != nil else {
                throw TokenError("Auth token has an invalid \(claim) claim (it must be a number).")
            }
        }
        if let expires = TokenVerifier.number(payload.child("exp")) {
            guard seconds <= expires + leeway else { throw TokenError("Auth token is expired.", expired: true) }
        }
        if let notBefore = TokenVerifier.number(payload.child("nbf")), seconds + leeway < notBefore {
            throw TokenError("Auth token is not valid yet (nbf is in the future).")
        }
        if let issuer = options.issuer {
            guard case .string(let actual) = payload.child("iss"), actual == issuer else {
                throw TokenError("Auth token has the wrong issuer; expected \(issuer).")
            }
        }
        if let audience = options.audience {
            var audiences: [String] = []
            switch payload.child("aud").withoutPriority {
            case .string(let single): audiences = [single]
            case .object(let list):
                for entry in list { if case .string(let value) = entry.value { audiences.append(value) } }
            default: break
            }
            guard audiences.contains(audience) else { throw TokenError("Auth token has the wrong audience; expected \(audience).") }
        }
    }

    /// The `auth` variable for a verified payload: a legacy custom token's `d` claim, or
    /// `{uid, provider, token: <all claims>}` for ID tokens and other JWTs.
    ///
    /// Legacy tokens (`v` and `d` claims, and `admin: true` for an admin) are recognised only
    /// when signed with an HS256 secret, as Firebase's legacy tokens were signed with the
    /// database secret. An RS256, ES256 or JWKS token is always an ID token: a `d` or `admin`
    /// claim in it is just a claim, never a way to change the uid or to become an admin.
    static func identity(from payload: Node, legacyAllowed: Bool) throws(TokenError) -> VerifiedIdentity {
        if legacyAllowed, case .object = payload.child("d").withoutPriority, number(payload.child("v")) != nil {
            let isAdmin: Bool
            if case .bool(true) = payload.child("admin") { isAdmin = true } else { isAdmin = false }
            return VerifiedIdentity(auth: payload.child("d"), isAdmin: isAdmin)
        }
        var uid: String?
        for claim in ["uid", "user_id", "sub"] {
            if case .string(let value) = payload.child(ChildKey(claim)), !value.isEmpty {
                uid = value
                break
            }
        }
        guard let uid else { throw TokenError("Auth token has no uid, user_id or sub claim.") }
        var provider = "custom"
        if case .string(let value) = payload.child("firebase").child("sign_in_provider") {
            // Firebase reports `google.com` sign-ins as auth.provider "google", and so on.
            provider = value.hasSuffix(".com") ? String(value.dropLast(4)) : value
        }
        let auth = Node.object(ChildMap(sortedEntries: [
            ChildEntry(key: "provider", value: .string(provider)),
            ChildEntry(key: "token", value: payload),
            ChildEntry(key: "uid", value: .string(uid)),
        ]))
        return VerifiedIdentity(auth: auth, isAdmin: false)
    }

    /// A header value fit for a message or a log line: printable ASCII, at most 40 characters.
    static func printable(_ text: String) -> String {
        String(text.unicodeScalars.prefix(40).map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? Character($0) : "?" })
    }

    static func number(_ node: Node) -> Double? {
        switch node.withoutPriority {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    static func base64URLDecode(_ text: Substring) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map(Array.init)
    }
}

/// A payload type that decodes nothing: jwt-kit checks the signature, Hearth reads the claims.
struct SignatureOnly: JWTPayload {
    init() {}
    init(from decoder: any Decoder) throws {}
    func encode(to encoder: any Encoder) throws {}
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

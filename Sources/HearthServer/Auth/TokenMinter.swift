import Foundation
import HearthCore
import JWTKit

/// Mints HS256 JWTs for tests and tooling (`hearth token`).
public enum TokenMinter {
    /// A token for `uid` with `claims` (added at the top level, as Firebase custom claims
    /// are), signed with `secret`, valid from now for `lifetime` seconds.
    public static func hs256(
        uid: String, claims: [String: Node] = [:], secret: [UInt8], lifetime: Int = 3600, issuer: String? = nil,
        audience: String? = nil, now: Date = Date()
    ) async throws -> String {
        let issuedAt = Int64(now.timeIntervalSince1970)
        var all = claims
        all["uid"] = .string(uid)
        all["sub"] = .string(uid)
        all["iat"] = .int(issuedAt)
        all["exp"] = .int(issuedAt + Int64(lifetime))
        if let issuer { all["iss"] = .string(issuer) }
        if let audience { all["aud"] = .string(audience) }
        try TokenVerifier.checkSecret(secret)
        let keys = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await keys.sign(ClaimsPayload(claims: all))
    }
}

/// A payload of arbitrary JSON claims.
struct ClaimsPayload: JWTPayload {
    let claims: [String: Node]

    init(claims: [String: Node]) { self.claims = claims }

    init(from decoder: any Decoder) throws {
        throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "ClaimsPayload is encode-only"))
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: ClaimKey.self)
        for (name, value) in claims.sorted(by: { $0.key < $1.key }) {
            try container.encode(EncodableNode(value), forKey: ClaimKey(name))
        }
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

struct ClaimKey: CodingKey {
    let stringValue: String
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    var intValue: Int? { nil }
    init?(intValue: Int) { nil }
}

/// Encodes a tree node as the JSON value it stands for.
struct EncodableNode: Encodable {
    let node: Node
    init(_ node: Node) { self.node = node }

    func encode(to encoder: any Encoder) throws {
        switch node.withoutPriority {
        case .null:
            var container = encoder.singleValueContainer()
            try container.encodeNil()
        case .bool(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .int(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .double(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .string(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .object(let children):
            if let length = JSONWriter.arrayLength(children) {
                var container = encoder.unkeyedContainer()
                for index in 0..<length { try container.encode(EncodableNode(children[ChildKey(String(index))] ?? .null)) }
                return
            }
            var container = encoder.container(keyedBy: ClaimKey.self)
            for entry in children { try container.encode(EncodableNode(entry.value), forKey: ClaimKey(entry.key.string)) }
        case .prioritized:
            break
        }
    }
}

import ArgumentParser
import Foundation
import HearthCore
import HearthServer

/// `hearth token`: mints an HS256 JWT for testing rules.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print an HS256 JWT for a user, signed with a secret that 'hearth serve --jwt-secret-file' trusts.",
        discussion: """
            For a long-lived credential such as the one in factory webhook URLs:
              hearth token --uid webhooks --secret-file jwt-secret --expires-in 365d
            """)

    @Option(help: "The user id (uid and sub claims; auth.uid in rules).")
    var uid: String

    @Option(name: .customLong("claim"), help: "An extra claim key=value (repeatable); the value is JSON if it parses, else a string.")
    var claims: [String] = []

    @Option(name: .customLong("secret-file"), help: "File holding the HS256 secret (a trailing newline is ignored).")
    var secretFile: String

    @Option(name: .customLong("expires-in"), help: "Time until the token expires: seconds, or a number with s, m, h or d (90d) (default 3600).")
    var expiresIn = "3600"

    @Option(help: "The iss claim.")
    var issuer: String?

    @Option(help: "The aud claim.")
    var audience: String?

    func validate() throws {
        guard !uid.isEmpty else { throw ValidationError("--uid must not be empty.") }
        guard let lifetime = TokenCommand.seconds(expiresIn), lifetime > 0 else {
            throw ValidationError("--expires-in must be a positive number of seconds, or of minutes, hours or days (30m, 12h, 365d).")
        }
        // JWT times are seconds since 1970; keep the expiry a representable, sane number.
        guard lifetime <= 100 * 365 * 86_400 else { throw ValidationError("--expires-in must be at most 100 years.") }
    }

    func run() async throws {
        var parsed: [String: Node] = [:]
        for claim in claims {
            guard let equals = claim.firstIndex(of: "="), equals != claim.startIndex else {
                throw ValidationError("--claim \(claim): use key=value.")
            }
            let key = String(claim[..<equals])
            let text = String(claim[claim.index(after: equals)...])
            parsed[key] = (try? JSONParser.parse(Array(text.utf8)).node) ?? .string(text)
        }
        let secret = try SecretFile.read(secretFile)
        print(try await TokenMinter.hs256(
            uid: uid, claims: parsed, secret: secret, lifetime: TokenCommand.seconds(expiresIn)!, issuer: issuer,
            audience: audience))
    }

    /// `3600`, `3600s`, `30m`, `12h` or `365d` in seconds; nil if it is none of these.
    static func seconds(_ text: String) -> Int? {
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        var digits = Substring(text)
        var unit = 1
        if let last = digits.last, let scale = units[last] {
            unit = scale
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let value = Int(digits), value <= Int.max / unit else { return nil }
        return value * unit
    }
}

/// Reads secret files: the bytes, without a trailing newline.
enum SecretFile {
    static func read(_ path: String) throws -> [UInt8] {
        guard var bytes = FileManager.default.contents(atPath: path).map(Array.init) else {
            throw ValidationError("Cannot read \(path).")
        }
        while let last = bytes.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { bytes.removeLast() }
        guard !bytes.isEmpty else { throw ValidationError("\(path) is empty.") }
        return bytes
    }
}

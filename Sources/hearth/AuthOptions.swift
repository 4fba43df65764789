import ArgumentParser
import Configuration
import Foundation
import HearthCore
import HearthServer
import Logging

/// `hearth serve`'s rules and credential flags.
struct AuthOptions: ParsableArguments {
    @Option(name: .customLong("rules"), help: "Rules file (database.rules.json syntax) for namespaces without uploaded rules.")
    var rulesFile: String?

    @Option(name: .customLong("admin-token"), help: "The admin token (prefer --admin-token-file: arguments show in ps).")
    var adminToken: String?

    @Option(name: .customLong("admin-token-file"), help: "File holding the admin token. Default: <data-dir>/admin-token, generated (0600) on first start.")
    var adminTokenFile: String?

    @Option(name: .customLong("jwt-secret-file"), help: "File holding an HS256 secret for user JWTs (repeatable).")
    var jwtSecretFiles: [String] = []

    @Option(name: .customLong("jwt-public-key"), help: "PEM public key or certificate for RS256/ES256 user JWTs (repeatable).")
    var jwtPublicKeys: [String] = []

    @Option(name: .customLong("jwks-file"), help: "JWKS file with keys for RS256/ES256 user JWTs (tokens name a key with kid).")
    var jwksFile: String?

    @Option(name: .customLong("jwt-issuer"), help: "Require this iss claim in user JWTs.")
    var jwtIssuer: String?

    @Option(name: .customLong("jwt-audience"), help: "Require this aud claim in user JWTs.")
    var jwtAudience: String?

    @Option(name: .customLong("jwt-leeway"), help: "Seconds of clock skew allowed for exp and nbf (default 60).")
    var jwtLeeway: Int?

    /// The flags given, by setting name.
    func flagValues(into flags: inout [String: ConfigContent]) {
        flags["rules"] = rulesFile.map { .string($0) }
        flags["admin-token"] = adminToken.map { .string($0) }
        flags["admin-token-file"] = adminTokenFile.map { .string($0) }
        if !jwtSecretFiles.isEmpty { flags["jwt-secret-file"] = .stringArray(jwtSecretFiles) }
        if !jwtPublicKeys.isEmpty { flags["jwt-public-key"] = .stringArray(jwtPublicKeys) }
        flags["jwks-file"] = jwksFile.map { .string($0) }
        flags["jwt-issuer"] = jwtIssuer.map { .string($0) }
        flags["jwt-audience"] = jwtAudience.map { .string($0) }
        flags["jwt-leeway"] = jwtLeeway.map { .int($0) }
    }

    /// What the flags resolve to.
    struct Loaded {
        let rules: RuleSet?
        let rulesFile: String?
        let adminToken: String
        /// Where the admin token lives, and whether it was created just now.
        let adminTokenSource: String
        let adminTokenCreated: Bool
        let verifier: TokenVerifier

        /// Says which rules are in force and where the admin token is; prints a new token once.
        func announce(logger: Logger, emulator: Bool) {
            if let rulesFile {
                logger.info("security rules from \(rulesFile) apply to namespaces without uploaded rules")
            } else if emulator {
                logger.info("no --rules: namespaces without uploaded rules allow every read and write (emulator mode)")
            } else {
                logger.notice("no --rules: namespaces without uploaded rules deny every read and write except the admin's")
            }
            if adminTokenCreated && isatty(STDOUT_FILENO) == 1 {
                // Shown once, on a terminal only: never in a log file or a service's journal.
                let notice = "Generated an admin token in \(adminTokenSource):\n  \(adminToken)\n"
                FileHandle.standardOutput.write(Data(notice.utf8))
            } else if adminTokenCreated {
                logger.notice("generated an admin token in \(adminTokenSource)")
            } else {
                logger.info("admin token: \(adminTokenSource)")
            }
        }
    }

    /// Reads the rules, the admin token and the JWT keys the settings name.
    static func load(_ settings: ServeSettings) async throws -> Loaded {
        let dataDirectory = settings.inMemory ? nil : settings.dataDir
        let emulator = settings.emulator
        let rulesFile = settings.rules
        let adminToken = settings.adminToken
        let adminTokenFile = settings.adminTokenFile
        var rules: RuleSet?
        if let rulesFile {
            guard let data = FileManager.default.contents(atPath: rulesFile), let text = String(data: data, encoding: .utf8) else {
                throw ValidationError("Cannot read the rules file \(rulesFile).")
            }
            do {
                rules = try RuleSet.parse(text)
            } catch {
                throw ValidationError("Invalid rules in \(rulesFile): \(error)")
            }
        }
        let token: String
        let source: String
        var created = false
        if let adminToken {
            token = adminToken
            source = "the admin-token setting"
        } else if let adminTokenFile {
            token = try AdminToken.read(adminTokenFile)
            source = adminTokenFile
        } else if let dataDirectory {
            (token, created) = try AdminToken.loadOrCreate(in: dataDirectory)
            source = dataDirectory + "/" + AdminToken.fileName + " (mode 0600)"
        } else {
            token = AdminToken.generate()
            created = true
            source = "memory only (an in-memory server makes a new one at every start)"
        }
        var options = TokenVerifier.Options()
        options.hmacSecrets = try settings.jwtSecretFile.map(SecretFile.read)
        options.publicKeysPEM = try settings.jwtPublicKey.map { path in
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("Cannot read \(path).") }
            return text
        }
        if let jwksFile = settings.jwksFile {
            guard let text = try? String(contentsOfFile: jwksFile, encoding: .utf8) else { throw ValidationError("Cannot read \(jwksFile).") }
            options.jwksJSON = text
        }
        options.issuer = settings.jwtIssuer
        options.audience = settings.jwtAudience
        options.leewaySeconds = settings.jwtLeeway
        options.acceptUnsigned = emulator
        let verifier = try await TokenVerifier(options: options)
        return Loaded(
            rules: rules, rulesFile: rulesFile, adminToken: token, adminTokenSource: source, adminTokenCreated: created,
            verifier: verifier)
    }
}

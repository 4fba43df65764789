import Foundation
import HearthStorage

/// The admin credential: whoever presents it bypasses the rules and may change them.
public enum AdminToken {
    /// The file in the data directory that holds a generated token.
    public static let fileName = "admin-token"

    /// Reads `<dataDirectory>/admin-token`, or creates it (32 random bytes, hex, mode 0600)
    /// if it does not exist. Returns the token and whether it was just created.
    public static func loadOrCreate(in dataDirectory: String) throws -> (token: String, created: Bool) {
        let path = dataDirectory + "/" + fileName
        if FileManager.default.fileExists(atPath: path) {
            return (try read(path), false)
        }
        let token = generate()
        // Created 0600 from the first instant (never readable by others, even empty), and
        // durable before it is printed, so a token that was shown is never lost.
        do {
            try AtomicFile.write(Array((token + "\n").utf8), to: path)
        } catch {
            throw TokenError("Could not create \(path): \(error).")
        }
        return (token, true)
    }

    /// A new token: 32 random bytes from the system's generator, as 64 hex digits.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// A token from a file: its first line, trimmed. Refuses an empty file.
    public static func read(_ path: String) throws -> String {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let token = text.split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard token.count >= 16 else { throw TokenError("The admin token in \(path) must be at least 16 characters.") }
        return token
    }

    /// Compares without stopping at the first difference, so timing reveals nothing.
    static func matches(_ candidate: String, _ token: String) -> Bool {
        let a = Array(candidate.utf8), b = Array(token.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

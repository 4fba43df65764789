import PostgresNIO

/// The reads of Hearth's tables that the writer's backend, a follower and the tools share.
extension BlockingConnection {
    /// Every namespace, by name.
    func namespaceNames() throws -> [String] {
        try query("SELECT name FROM hearth_namespaces ORDER BY name").map { try $0.decode(String.self) }
    }

    /// The rules document stored for `namespace`, if any.
    func storedRules(namespace: String) throws -> String? {
        try query("SELECT source FROM hearth_rules WHERE namespace = \(namespace)").first?.decode(String.self)
    }

    /// When each namespace's rules were last stored (as text, compared only for equality).
    func rulesStamps() throws -> [String: String] {
        let rows = try query("SELECT namespace, stored_at::text FROM hearth_rules").map { try $0.decode((String, String).self) }
        return Dictionary(rows, uniquingKeysWith: { $1 })
    }
}

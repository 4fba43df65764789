import HearthCore
import HearthStorage
import NIOCore
import PostgresNIO

/// The reads of Hearth's tables that the nodes' backends, a follower and the tools share.
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

    /// The most log rows read for one namespace at a time (a node far behind catches up over
    /// several reads, each within the statement timeout).
    static let recordBatchLimit = 10_000

    /// The namespace's records committed after `sequence`, in order (at most
    /// ``recordBatchLimit``); when a snapshot has trimmed some of them, the snapshot first, as
    /// a change that sets the whole tree. One statement: one view of the tables.
    func records(of namespace: String, after sequence: UInt64) throws -> [LogRecord] {
        let rows = try query("""
            (SELECT sequence, record, NULL::bytea FROM hearth_log WHERE namespace = \(namespace) AND sequence > \(Int64(sequence))
             ORDER BY sequence LIMIT \(BlockingConnection.recordBatchLimit))
            UNION ALL
            SELECT sequence, NULL::bytea, data FROM hearth_snapshots WHERE namespace = \(namespace) AND sequence > \(Int64(sequence))
            ORDER BY 1
            """)
        var log: [LogRecord] = []
        var snapshot: SnapshotFile?
        for row in rows {
            let (_, record, data) = try row.decode((Int64, ByteBuffer?, ByteBuffer?).self)
            if let record {
                log.append(try record.readableBytesView.withUnsafeBytes { try LogRecordCodec.decodePayload($0) }.record)
            } else if let data {
                snapshot = try SnapshotFile.decode(Array(buffer: data))
            }
        }
        if let first = log.first, first.sequence == sequence + 1 { return log }
        guard let snapshot else {
            if let first = log.first {
                throw PostgresNamespace.LoadError(namespace: namespace, reason: "log row \(first.sequence) follows \(sequence)")
            }
            return []
        }
        let whole = LogRecord(
            sequence: snapshot.sequence, change: Change(kind: .set, path: .root, mutations: [.set(.root, snapshot.root)]))
        return [whole] + log.filter { $0.sequence > snapshot.sequence }
    }
}

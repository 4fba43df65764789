/// Where open realtime sessions' on-disconnect writes are kept until they are made: the data
/// directory's ``SessionJournal``, or PostgreSQL for nodes that share it (so that another node
/// makes the writes of a node that died). Keys are opaque (one per session and namespace);
/// `put` and `remove` are durable when they return.
public protocol SessionStore: Sendable {
    func put(_ key: String, _ value: [UInt8]) throws
    func remove(_ key: String) throws
}

extension SessionJournal: SessionStore {}

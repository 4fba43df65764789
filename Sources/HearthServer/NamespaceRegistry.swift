import HearthCore
import Synchronization

/// The namespaces a server holds, each an independent ``Database``, created on first write.
public final class NamespaceRegistry: Sendable {
    /// Makes the database for a new namespace (in memory, or recovered from storage).
    public typealias Factory = @Sendable (String) throws -> Database

    let factory: Factory
    /// Held only to look a namespace up or add one, never while one opens: reads (some on
    /// event loops) must not wait for a recovery or a PostgreSQL query.
    let databases = Mutex<[String: Database]>([:])
    /// Held while a namespace opens, so that it opens once.
    let opening = Mutex<Void>(())

    public init(factory: @escaping Factory = { Database(name: $0) }) {
        self.factory = factory
    }

    /// The namespace's database if it exists.
    public func existing(_ name: String) -> Database? {
        databases.withLock { $0[name] }
    }

    /// The namespace's database, created if needed.
    public func database(_ name: String) throws -> Database {
        if let database = existing(name) { return database }
        return try opening.withLock { _ in
            if let database = existing(name) { return database }
            let database = try factory(name)
            databases.withLock { $0[name] = database }
            return database
        }
    }

    /// The names of every namespace, sorted.
    public var names: [String] {
        databases.withLock { Array($0.keys) }.sorted()
    }

    /// True if `name` may name a namespace: 1-63 characters of `a-z 0-9 - _`.
    public static func isValidName(_ name: some StringProtocol) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 63 else { return false }
        return name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
    }
}

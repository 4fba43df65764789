import HearthCore
import HearthStorage
import Synchronization

/// The security rules of every namespace: the ones uploaded to it (stored in its data
/// directory), else the server's default (`--rules`, or deny-all; allow-all in emulator mode).
public final class RulesRegistry: Sendable {
    /// Rules for namespaces that have none of their own.
    public let fallback: RuleSet
    let storage: StorageEngine
    let uploaded = Mutex<[String: RuleSet]>([:])

    public init(fallback: RuleSet, storage: StorageEngine) {
        self.fallback = fallback
        self.storage = storage
    }

    /// The rules in force for `namespace`.
    public func rules(for namespace: String) -> RuleSet {
        uploaded.withLock { $0[namespace] } ?? fallback
    }

    /// Loads the rules stored with an existing namespace (at start-up). A stored document that
    /// no longer compiles stops start-up: serving with other rules than the owner set would
    /// be worse.
    public func loadStored(namespace: String) throws {
        guard let text = try storage.storedRules(namespace: namespace) else { return }
        do {
            let rules = try RuleSet.parse(text)
            uploaded.withLock { $0[namespace] = rules }
        } catch {
            throw RulesLoadError(namespace: namespace, error: error)
        }
    }

    /// Makes `rules` the namespace's rules, durably first. `namespaces` opens (or creates) the
    /// namespace so its directory exists.
    public func replace(_ namespace: String, with rules: RuleSet, namespaces: NamespaceRegistry) throws {
        let database = try namespaces.database(namespace)
        try storage.storeRules(rules.source, namespace: namespace)
        uploaded.withLock { $0[namespace] = rules }
        database.declareIndexes(rules.concreteIndexes)
    }
}

/// A namespace's stored rules could not be compiled.
public struct RulesLoadError: Error, CustomStringConvertible {
    public let namespace: String
    public let error: RuleError
    public var description: String { "the stored rules of namespace \"\(namespace)\" are invalid: \(error)" }
}

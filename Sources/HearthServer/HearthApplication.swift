import HearthCore
import HearthStorage
import Hummingbird
import Logging

/// Builds the Hummingbird application for a configuration.
public enum HearthApplication {
    /// The application, with every namespace already in the data directory opened and its
    /// stored rules loaded.
    public static func make(
        configuration: ServerConfiguration, storage: StorageEngine, logger: Logger = Logger(label: "hearth")
    ) throws -> some ApplicationProtocol {
        try storage.lockDirectory()
        let namespaces = NamespaceRegistry { name in try storage.open(namespace: name) }
        let rules = RulesRegistry(fallback: configuration.fallbackRules, storage: storage)
        for name in try storage.existingNamespaces() {
            namespaces.register(try storage.open(namespace: name))
            try rules.loadStored(namespace: name)
        }
        let responder = HearthResponder(configuration: configuration, namespaces: namespaces, rules: rules, logger: logger)
        return Application(
            responder: responder,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Hearth"),
            logger: logger
        )
    }
}

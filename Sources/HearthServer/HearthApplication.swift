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
        let rules = RulesRegistry(fallback: configuration.fallbackRules, storage: storage)
        // A namespace keeps the indexes its rules declare from the moment it opens.
        let namespaces = NamespaceRegistry { name in
            let database = try storage.open(namespace: name)
            database.declareIndexes(rules.rules(for: name).concreteIndexes)
            return database
        }
        for name in try storage.existingNamespaces() {
            try rules.loadStored(namespace: name)
            _ = try namespaces.database(name)
        }
        let streams = StreamRegistry(options: configuration.streams)
        let responder = HearthResponder(
            configuration: configuration, namespaces: namespaces, rules: rules, streams: streams, logger: logger)
        return Application(
            responder: responder,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Hearth"),
            logger: logger
        )
    }
}

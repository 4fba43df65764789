import ArgumentParser

/// The `hearth` command line.
@main
struct Hearth: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hearth",
        abstract: "A self-hosted realtime JSON database that speaks Firebase's REST protocol.",
        subcommands: [
            Serve.self, Export.self, Import.self, Verify.self, Repair.self, Compact.self, MoveNamespace.self, TokenCommand.self,
            RulesCommand.self,
        ]
    )
}

import ArgumentParser
import Foundation
import HearthCore

/// `hearth rules ...`: work with security rules files.
struct RulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules", abstract: "Work with security rules files.", subcommands: [Check.self])

    /// `hearth rules check FILE`: compiles a rules file as the server would.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a rules file (Firebase's database.rules.json syntax); print the first error with its line and column.")

        @Argument(help: "The rules file.")
        var file: String

        func run() throws {
            guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
                throw ValidationError("Cannot read \(file) as UTF-8 text.")
            }
            do {
                let rules = try RuleSet.parse(text)
                print("OK: \(file) (\(RulesCommand.count(rules.root)) rules)")
            } catch {
                print("\(file): \(error)")
                throw ExitCode(1)
            }
        }
    }

    /// The number of `.read`, `.write`, `.validate` and `.indexOn` rules in a tree.
    static func count(_ node: RuleNode) -> Int {
        var total = [node.read != nil, node.write != nil, node.validate != nil, !node.indexOn.isEmpty].filter { $0 }.count
        for child in node.children.values { total += count(child) }
        if let wildcard = node.wildcard { total += count(wildcard) }
        return total
    }
}

import Configuration
import Foundation
import HearthCore
import SystemPackage

/// Where a setting's effective value came from.
enum SettingSource: String, Sendable {
    case defaultValue = "default"
    case file
    case environment
    case flag
}

/// The effective settings of one `hearth serve`, with the source of each.
struct ResolvedSettings: Sendable {
    var settings = ServeSettings()
    var sources: [String: SettingSource] = [:]
    /// Things the operator should hear about but that do not stop the server.
    var warnings: [String] = []

    /// Layers the configuration file, the environment and the flags over the defaults.
    ///
    /// A value of the wrong type, an unknown key in the file or an unreadable file is an error,
    /// never silently replaced by the default. Unknown `HEARTH_*` variables are warnings.
    static func resolve(
        flags: [String: ConfigContent], environment: [String: String], configFile: String?
    ) async throws(SettingsError) -> ResolvedSettings {
        var resolved = ResolvedSettings()
        for field in ServeSettings.fields { resolved.sources[field.name] = .defaultValue }
        if let configFile {
            try checkKeys(ofFile: configFile)
            let file: FileProvider<JSONSnapshot>
            do {
                file = try await FileProvider<JSONSnapshot>(filePath: FilePath(configFile))
            } catch {
                throw SettingsError("cannot read the configuration file \(configFile): \(error)")
            }
            try resolved.layer(file, source: .file) { name in "\(name) in \(configFile)" }
        }
        let environmentProvider = EnvironmentVariablesProvider(environmentVariables: environment)
        try resolved.layer(environmentProvider, source: .environment, keyPrefix: ["hearth"]) { name in
            ServeSettings.environmentName(name)
        }
        let known = Set(ServeSettings.fields.map { ServeSettings.environmentName($0.name) } + ["HEARTH_CONFIG"])
        for name in environment.keys.sorted() where name.hasPrefix("HEARTH_") && !known.contains(name) {
            resolved.warnings.append("ignoring the unknown environment variable \(name)")
        }
        for field in ServeSettings.fields {
            guard let value = flags[field.name] else { continue }
            field.write(&resolved.settings, value)
            resolved.sources[field.name] = .flag
        }
        resolved.settleAdminToken()
        try resolved.settings.validate()
        return resolved
    }

    /// `admin-token` and `admin-token-file` name the same thing: when they come from different
    /// layers, the stronger layer's wins (same layer: an error, in `validate`).
    private mutating func settleAdminToken() {
        guard settings.adminToken != nil, settings.adminTokenFile != nil else { return }
        let rank: [SettingSource: Int] = [.defaultValue: 0, .file: 1, .environment: 2, .flag: 3]
        let token = rank[sources["admin-token"] ?? .defaultValue]!
        let file = rank[sources["admin-token-file"] ?? .defaultValue]!
        if token > file {
            settings.adminTokenFile = nil
            sources["admin-token-file"] = .defaultValue
        } else if file > token {
            settings.adminToken = nil
            sources["admin-token"] = .defaultValue
        }
    }

    /// Reads every setting the provider has, as its field's type.
    private mutating func layer(
        _ provider: some ConfigProvider, source: SettingSource, keyPrefix: [String] = [],
        describe: (String) -> String
    ) throws(SettingsError) {
        for field in ServeSettings.fields {
            let key = AbsoluteConfigKey(keyPrefix + [field.name])
            var value: ConfigValue?
            do {
                value = try provider.value(forKey: key, type: field.type).value
            } catch {
                // A whole number is a fine value for a setting in seconds.
                if field.type == .double, let int = try? provider.value(forKey: key, type: .int).value {
                    value = int
                } else {
                    throw SettingsError("\(describe(field.name)) must be \(ResolvedSettings.describe(field.type)).")
                }
            }
            guard let value else { continue }
            field.write(&settings, value.content)
            sources[field.name] = source
        }
    }

    /// The file must be a JSON object whose keys are setting names: a typo is an error, not a
    /// setting quietly left at its default.
    private static func checkKeys(ofFile path: String) throws(SettingsError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SettingsError("cannot read the configuration file \(path).")
        }
        let root: Node
        do {
            root = try JSONParser.parse(Array(data)).node
        } catch {
            throw SettingsError("the configuration file \(path) is not valid JSON: \(error)")
        }
        // (The tree keeps arrays as objects keyed 0, 1, …: look at the text for the brace.)
        let opening = data.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        guard opening == UInt8(ascii: "{") else {
            throw SettingsError("the configuration file \(path) must hold a JSON object of settings.")
        }
        // `{}` (or only nulls) reads as null: no settings.
        guard case .object(let children) = root else { return }
        let names = Set(ServeSettings.fields.map(\.name))
        for entry in children where !names.contains(entry.key.string) {
            throw SettingsError("unknown setting \"\(entry.key.string)\" in \(path) (see hearth serve --help).")
        }
    }

    private static func describe(_ type: ConfigType) -> String {
        switch type {
        case .int: "a whole number"
        case .double: "a number"
        case .bool: "true or false"
        case .stringArray: "a list of strings (in the environment: comma-separated)"
        default: "a string"
        }
    }

    /// The effective configuration as `--print-config` shows it: one line per setting with its
    /// value and where it came from; secrets masked.
    func printable() -> String {
        let width = ServeSettings.fields.map(\.name.count).max() ?? 0
        var lines = ["# hearth serve: effective configuration (flag > environment > configuration file > default)"]
        for field in ServeSettings.fields {
            let shown: String
            switch field.read(settings) {
            case nil: shown = "(not set)"
            case .some where field.secret: shown = "\"********\""
            case .some(let value): shown = ResolvedSettings.render(value)
            }
            let source = sources[field.name] ?? .defaultValue
            let origin = source == .environment ? "environment \(ServeSettings.environmentName(field.name))" : source.rawValue
            let padded = field.name.padding(toLength: width, withPad: " ", startingAt: 0)
            lines.append("\(padded) = \(shown)  # \(origin)")
        }
        lines += warnings.map { "# warning: \($0)" }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func render(_ value: ConfigContent) -> String {
        func quoted(_ string: String) -> String { JSONWriter.string(.string(string)) }
        switch value {
        case .string(let string): return quoted(string)
        case .int(let int): return String(int)
        case .double(let double): return String(double)
        case .bool(let bool): return String(bool)
        case .stringArray(let strings): return "[" + strings.map(quoted).joined(separator: ", ") + "]"
        default: return "\(value)"
        }
    }
}

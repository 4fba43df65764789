/// The web console: one self-contained page served at `/.console/` (inline CSS and script,
/// nothing loaded from elsewhere). Everything it shows or changes goes through the public
/// REST and streaming API with the admin token the user types in; see Docs/CONSOLE.md.
///
/// The page is `console.html` beside this file, embedded in the binary when it is built
/// (a resource of the package), so serving it needs no file at run time and no build step.
enum ConsolePage {
    static let html = String(decoding: PackageResources.console_html, as: UTF8.self)
}

/// The web console: one self-contained page served at `/.console/`.
enum ConsolePage {
    static let html: String = #"""
    <!doctype html><title>Hearth console</title><p>The console is being written.</p>
    """#
}

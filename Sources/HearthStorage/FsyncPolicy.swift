/// When the log calls `fdatasync`, and so what a crash can lose. See Docs/DURABILITY.md.
public enum FsyncPolicy: Sendable, Equatable, CustomStringConvertible {
    /// A write is acknowledged only after its record is on stable storage. Concurrent writers
    /// share one `fdatasync` (group commit). Loses nothing acknowledged.
    case always
    /// A write is acknowledged once its record is written to the file (so it survives a crash of
    /// the process); `fdatasync` runs at least every `milliseconds`. A power failure or kernel
    /// crash loses at most the writes acknowledged in the last interval.
    case interval(milliseconds: Int)
    /// Acknowledged once written to the file; the operating system decides when it reaches the
    /// disk. Survives a crash of the process; a power failure may lose tens of seconds.
    case none

    /// Parses `always`, `none`, `interval` (1 s) or `interval:<ms>`.
    public init?(_ text: String) {
        switch text {
        case "always": self = .always
        case "none": self = .none
        case "interval": self = .interval(milliseconds: 1000)
        default:
            guard text.hasPrefix("interval:"), let milliseconds = Int(text.dropFirst("interval:".count)),
                milliseconds > 0
            else { return nil }
            self = .interval(milliseconds: milliseconds)
        }
    }

    public var description: String {
        switch self {
        case .always: return "always"
        case .interval(let milliseconds): return "interval:\(milliseconds)"
        case .none: return "none"
        }
    }
}

import Synchronization

/// What the storage layer reports as it works, for the server's metrics: the duration of each
/// `fdatasync` of a log.
public final class StorageObserver: Sendable {
    /// Boxed: a bare closure in a `Mutex` would grow a chain of thunks with every read.
    private struct Handler: Sendable {
        let call: @Sendable (Duration) -> Void
    }
    private let onSync = Mutex<Handler?>(nil)
    /// For tests: runs on the flusher thread just before each `fdatasync` of a log (it may
    /// block, holding the sync back).
    private struct Hook: Sendable {
        let call: @Sendable () -> Void
    }
    private let beforeSync = Mutex<Hook?>(nil)

    public init() {}

    /// For tests: calls `hook` on the flusher thread just before each log sync.
    func holdSyncs(_ hook: @escaping @Sendable () -> Void) {
        beforeSync.withLock { $0 = Hook(call: hook) }
    }

    func willSync() {
        let hook = beforeSync.withLock { $0 }
        hook?.call()
    }

    /// Calls `handler` with the duration of every log sync from now on (one handler; a later
    /// call replaces it).
    public func observeSyncs(_ handler: @escaping @Sendable (Duration) -> Void) {
        onSync.withLock { $0 = Handler(call: handler) }
    }

    public func recordSync(_ duration: Duration) {
        let handler = onSync.withLock { $0 }
        handler?.call(duration)
    }
}

/// Bytes on disk, summed over a data directory's namespaces.
public struct StorageDiskUsage: Sendable, Equatable {
    /// Log segments (`*.hlog`).
    public var logBytes = 0
    /// Snapshots (`*.hsnap`).
    public var snapshotBytes = 0

    public init(logBytes: Int = 0, snapshotBytes: Int = 0) {
        self.logBytes = logBytes
        self.snapshotBytes = snapshotBytes
    }
}

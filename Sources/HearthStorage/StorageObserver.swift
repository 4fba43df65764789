import Dispatch
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

    /// For tests: holds every log sync from now on, on the flusher thread, until the returned
    /// hold is released.
    func holdSyncs() -> HeldSyncs {
        let held = HeldSyncs(observer: self)
        holdSyncs { held.reached() }
        return held
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

/// For tests: log syncs held back before their `fdatasync` (``StorageObserver/holdSyncs()``).
final class HeldSyncs: Sendable {
    private let observer: StorageObserver
    private let count = Atomic<Int>(0)
    private let released = Atomic<Bool>(false)
    private let gate = DispatchSemaphore(value: 0)

    init(observer: StorageObserver) {
        self.observer = observer
    }

    /// On the flusher thread: counts the sync and waits for the release.
    fileprivate func reached() {
        count.add(1, ordering: .relaxed)
        guard !released.load(ordering: .relaxed) else { return }
        gate.wait()
        gate.signal()  // (and lets any other waiter go)
    }

    /// How many syncs were held, once one was (or `deadline` passed).
    func waitForSync(deadline: Duration = .seconds(60)) async throws -> Int {
        let end = ContinuousClock.now + deadline
        while count.load(ordering: .relaxed) == 0 && ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(5)) }
        return count.load(ordering: .relaxed)
    }

    /// Lets held syncs go, and no longer holds any. (Calling it again does nothing more.)
    func release() {
        observer.holdSyncs {}
        guard !released.exchange(true, ordering: .relaxed) else { return }
        gate.signal()
    }
}

/// When a namespace takes a snapshot, and what closing it waits for, as a state machine (in
/// swift-nio's style: events return what the shell must do; no locks, no threads, no files).
///
/// ```
///            appended (below the thresholds)        snapshotFinished
///              ┌──────┐                           ┌───────────────────┐
///              ▼      │   appended (past them),   │                   │
///  ─────────▶ idle ───┴─ requestSnapshot ───▶ snapshotting ◀─────────┘
///              │                                   │    ▲ appended (counted for the next one)
///       close  │                            close  │    └──────┘
///              ▼                                   ▼
///           closed ◀──── snapshotFinished ──── closing  (close waits; nothing new starts)
/// ```
///
/// `NamespaceStore` is the shell: it starts the snapshot thread, writes the files, and waits
/// on its condition while the machine says `closing`.
struct SnapshotScheduleStateMachine: Equatable {
    /// Appended records and bytes not yet in a snapshot.
    struct Backlog: Equatable {
        var records = 0
        var bytes = 0
    }

    enum State: Equatable {
        /// No snapshot under way.
        case idle(Backlog)
        /// A snapshot is being written; `taken` is what it covers (given back if it fails),
        /// `backlog` what was appended since it began.
        case snapshotting(taken: Backlog, backlog: Backlog)
        /// `close` waits for the snapshot under way; nothing new starts.
        case closing(taken: Backlog, backlog: Backlog)
        /// Closed: no snapshot starts again.
        case closed
    }

    let recordsThreshold: Int
    let bytesThreshold: Int
    private(set) var state: State

    /// A namespace just recovered, with `replayedRecords` in its log after the last snapshot.
    init(recordsThreshold: Int, bytesThreshold: Int, replayedRecords: Int = 0) {
        self.recordsThreshold = recordsThreshold
        self.bytesThreshold = bytesThreshold
        state = .idle(Backlog(records: replayedRecords, bytes: 0))
    }

    /// A record of `bytes` was appended. Returns true if a snapshot should start now (on a
    /// thread of its own); the machine then counts it as under way.
    mutating func appended(bytes: Int) -> Bool {
        switch state {
        case .idle(var backlog):
            backlog.records += 1
            backlog.bytes += bytes
            guard backlog.records >= recordsThreshold || backlog.bytes >= bytesThreshold else {
                state = .idle(backlog)
                return false
            }
            state = .snapshotting(taken: backlog, backlog: Backlog())
            return true
        case .snapshotting(let taken, var backlog):
            backlog.records += 1
            backlog.bytes += bytes
            state = .snapshotting(taken: taken, backlog: backlog)
            return false
        case .closing(let taken, var backlog):
            backlog.records += 1
            backlog.bytes += bytes
            state = .closing(taken: taken, backlog: backlog)
            return false
        case .closed:
            return false
        }
    }

    /// A snapshot asked for now (`hearth compact`, tests). Returns false if one is under way
    /// or the namespace is closing or closed.
    mutating func requestSnapshot() -> Bool {
        guard case .idle(let backlog) = state else { return false }
        state = .snapshotting(taken: backlog, backlog: Backlog())
        return true
    }

    /// What `snapshotFinished` asks of the shell.
    enum FinishAction: Equatable {
        case none
        /// `close` is waiting for this snapshot: wake it.
        case wakeClose
    }

    /// The snapshot under way ended. If it failed, what it covered counts again, so the next
    /// append starts another.
    mutating func snapshotFinished(succeeded: Bool) -> FinishAction {
        switch state {
        case .snapshotting(let taken, var backlog):
            if !succeeded {
                backlog.records += taken.records
                backlog.bytes += taken.bytes
            }
            state = .idle(backlog)
            return .none
        case .closing:
            state = .closed
            return .wakeClose
        case .idle, .closed:
            preconditionFailure("no snapshot is under way")
        }
    }

    /// What `close` must do.
    enum CloseAction: Equatable {
        /// Nothing is under way: close the log now.
        case closeNow
        /// Wait until the snapshot under way finishes (``FinishAction/wakeClose``), then close.
        case waitForSnapshot
    }

    mutating func close() -> CloseAction {
        switch state {
        case .idle:
            state = .closed
            return .closeNow
        case .snapshotting(let taken, let backlog):
            state = .closing(taken: taken, backlog: backlog)
            return .waitForSnapshot
        case .closing:
            return .waitForSnapshot
        case .closed:
            return .closeNow
        }
    }

    /// Close has nothing more to wait for.
    var isClosed: Bool { state == .closed }
}

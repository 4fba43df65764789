import Synchronization

/// One namespace: a tree, its single serial writer, and its log.
///
/// Readers take ``root``, an immutable snapshot, in O(1) and never wait for the writer. Writers
/// are serialised: each computes the new tree from the latest one, appends its change to the
/// log, and is acknowledged once the log says the record is durable. Readers see a change only
/// once it is durable, so nothing a reader saw can be lost by a crash.
public final class Database: Sendable {
    /// The namespace's name.
    public let name: String
    let log: any WriteLog
    let clock: @Sendable () -> Int64

    struct WriterState {
        var root: Node
        var sequence: UInt64
        var pushIDs: PushIDGenerator
        /// Versions written but not yet durable, oldest first.
        var pending: [Version] = []
        /// Writes a recovery applied again, by the sequence and ticket they had, until their
        /// ``Database/finish(_:)`` takes them: the new submission, or why there is none.
        var reapplied: [WriteKey: Result<SubmittedWrite, any Error>] = [:]

        /// Takes `records`, committed elsewhere, as the next versions (to be published as
        /// durable); those at or before the current sequence are skipped.
        mutating func take(_ records: [LogRecord]) {
            for record in records where record.sequence > sequence {
                record.change.apply(to: &root)
                sequence = record.sequence
                pending.append(Version(sequence: record.sequence, root: root, change: record.change))
            }
        }
    }

    /// A version of the tree written but not yet durable, with the mutations that made it
    /// (the indexes catch up with them when it is published), and the write of this node that
    /// made it (none for a record taken from elsewhere).
    struct Version {
        var sequence: UInt64
        var root: Node
        var change: Change
        var write: PendingWrite? = nil
    }

    /// A write of this node whose record is not durable yet.
    struct PendingWrite {
        let request: WriteRequest
        let ticket: UInt64
        /// How many times it has been applied.
        let attempts: Int
        /// Its client was told it failed: it must not be applied again.
        var abandoned = false
    }

    /// A record appended to the log: its sequence and the log's ticket.
    struct WriteKey: Hashable {
        let sequence: UInt64
        let ticket: UInt64
    }

    /// What readers see. The indexes always match the root: they are brought up to date, in
    /// place, when a version is published.
    struct CommittedState {
        var root: Node
        var indexes = QueryIndexes()
        var sequence: UInt64
    }

    let writer: Mutex<WriterState>
    let committed: Mutex<CommittedState>
    /// Told about every change as it becomes visible to readers, in sequence order.
    /// Boxed in a struct: a bare closure read out of a `Mutex` (`withLock { $0 }`) is
    /// re-abstracted and written back on every read, growing a chain of thunks that makes each
    /// call slower and finally overflows the stack (seen after ~50,000 publications).
    let observer = Mutex<ChangeObserver?>(nil)

    /// - Parameters:
    ///   - root: the recovered tree.
    ///   - sequence: the sequence number of the last record in that tree.
    ///   - lastPushTime: the newest push-ID timestamp already issued (ms), so IDs keep increasing.
    ///   - clock: milliseconds since the epoch; injectable for tests.
    public init(
        name: String, root: Node = .null, sequence: UInt64 = 0, log: any WriteLog = MemoryWriteLog(),
        lastPushTime: Int64 = -1, clock: @escaping @Sendable () -> Int64 = Database.systemMilliseconds
    ) {
        self.name = name
        self.log = log
        self.clock = clock
        writer = Mutex(WriterState(root: root, sequence: sequence, pushIDs: PushIDGenerator(after: lastPushTime)))
        committed = Mutex(CommittedState(root: root, sequence: sequence))
    }

    /// The current durable tree. O(1).
    public var root: Node { committed.withLock { $0.root } }

    /// The current durable tree and the sequence number of its last change.
    public var snapshot: (root: Node, sequence: UInt64) {
        committed.withLock { ($0.root, $0.sequence) }
    }

    /// What a reader needs: the current durable tree, its sequence number and its indexes,
    /// all of one version. O(1).
    public var readView: ReadView {
        committed.withLock { ReadView(root: $0.root, sequence: $0.sequence, indexes: $0.indexes) }
    }

    /// Starts telling `observer` about every change from now on, in sequence order, each as
    /// it becomes visible to readers; returns the tree and sequence it starts after. Calls
    /// happen while the namespace's writer waits: `observer` must only hand them on.
    public func observe(_ observer: @escaping @Sendable ([PublishedChange]) -> Void) -> (root: Node, sequence: UInt64) {
        writer.withLock { _ in
            self.observer.withLock { $0 = ChangeObserver(call: observer) }
            return committed.withLock { ($0.root, $0.sequence) }
        }
    }

    /// Keeps exactly the query indexes `specs` (built now where missing) from now on. Called
    /// when rules load or change.
    public func declareIndexes(_ specs: Set<IndexSpec>) {
        buildIndexes { indexes, root in indexes.keep(specs, root: root) }
    }

    /// Adds the index `spec` (built now) if it is not kept yet: for indexes declared under a
    /// `$wildcard`, made when a query first needs them.
    public func ensureIndex(_ spec: IndexSpec) {
        guard committed.withLock({ $0.indexes[spec] == nil }) else { return }
        buildIndexes { indexes, root in indexes.add(spec, root: root) }
    }

    /// Changes the indexes by `build` on the current tree. Holding the writer lock freezes
    /// the committed version (nothing is published meanwhile) while the build runs outside the
    /// readers' lock, so reads go on; writes wait for the build.
    func buildIndexes(_ build: (inout QueryIndexes, Node) -> Void) {
        writer.withLock { _ in
            var (indexes, root) = committed.withLock { ($0.indexes, $0.root) }
            build(&indexes, root)
            committed.withLock { $0.indexes = indexes }
        }
    }

    /// The number of indexes kept.
    public var indexCount: Int { committed.withLock { $0.indexes.specs.count } }

    /// The newest push-ID timestamp issued (ms), for snapshots.
    public var lastPushTime: Int64 { writer.withLock { $0.pushIDs.lastTime } }

    /// Performs one write atomically; returns once it is durable (or refused).
    public func write(_ request: WriteRequest) async throws -> WriteOutcome {
        try await finish(try submit(request))
    }

    /// A write applied in the namespace's order and appended to the log, not yet durable:
    /// ``finish(_:)`` waits for that. A connection that pipelines writes submits each in turn
    /// (so they apply in its order) and finishes them in the same order.
    public struct SubmittedWrite: Sendable {
        let outcome: WriteOutcome
        let pending: (sequence: UInt64, ticket: UInt64)?
    }

    /// How many times a write whose record was refused because another node committed first
    /// is applied in all, before its failure is reported.
    static let maximumAttempts = 32

    /// Applies `request` (judging its rules and condition) and appends it to the log; does not
    /// wait. Throws if it is refused or the log refuses the append.
    public func submit(_ request: WriteRequest) throws -> SubmittedWrite {
        var attempt = 1
        while true {
            do {
                return try writer.withLock { state throws -> SubmittedWrite in try apply(request, to: &state) }
            } catch let refused as AppendRefused {
                // The log failed earlier (perhaps with no writer waiting): let it recover so
                // that this and later writes can succeed. Nothing was appended, so the write
                // is tried again: after a recovery (which first applies again, in order, the
                // writes it dropped), and once in any case (another writer may have just
                // recovered the log).
                let recovered = rollBack(after: refused.underlying)
                guard recovered || attempt == 1, attempt < Database.maximumAttempts else { throw refused.underlying }
                attempt += 1
            }
        }
    }

    /// The log refused to append a write's record (``WriteLog/append(_:pushTime:)`` threw
    /// `underlying`): nothing was written.
    struct AppendRefused: Error {
        let underlying: any Error
    }

    /// Waits until a submitted write is durable (and visible to readers); returns its outcome.
    ///
    /// When the log fails, it recovers (asking its storage what is durable); a record that was
    /// durable after all is answered as written. On a log other nodes write too, a record
    /// refused because another node committed first was applied again by the recovery, to the
    /// newer state (rules and condition judged again, in the namespace's order), and this waits
    /// for that one; so a write is committed at most once, never on a state other than the one
    /// it was judged against, and a connection's writes stay in its order.
    public func finish(_ submitted: SubmittedWrite) async throws -> WriteOutcome {
        try await finish(submitted, after: nil)
    }

    /// ``finish(_:)`` without a task: calls `then` once the write is durable (and visible to
    /// readers), on the thread that learns it (the log's flusher, or this one if it is durable
    /// already); `then` must only hand the outcome on. When the log failed, the recovery runs in
    /// a task, as in ``finish(_:)``, and `then` is called from there.
    public func finish(_ submitted: SubmittedWrite, then: @escaping @Sendable (Result<WriteOutcome, any Error>) -> Void) {
        guard let (sequence, ticket) = submitted.pending else {
            then(.success(submitted.outcome))
            return
        }
        log.whenDurable(sequence, ticket: ticket) { [self] result in
            switch result {
            case .success(let durable):
                // Publishes the log's whole batch at once (the later waiters of the batch find
                // it published).
                markDurable(through: max(sequence, durable))
                then(.success(submitted.outcome))
            case .failure(let error):
                Task {
                    do {
                        then(.success(try await self.finish(submitted, after: error)))
                    } catch {
                        then(.failure(error))
                    }
                }
            }
        }
    }

    /// ``finish(_:)``, or its rest once waiting for the write failed with `failure`: after a
    /// failure the log recovers, and the write is answered as the recovery left it.
    func finish(_ submitted: SubmittedWrite, after failure: (any Error)?) async throws -> WriteOutcome {
        var submitted = submitted
        var failure = failure
        while let (sequence, ticket) = submitted.pending {
            // After the recovery, the log knows whether the record is durable.
            if let failure { rollBack(after: failure) }
            do {
                try await log.waitUntilDurable(sequence, ticket: ticket)
                markDurable(through: sequence)
                return submitted.outcome
            } catch {
                guard let failed = failure else {
                    failure = error
                    continue
                }
                let key = WriteKey(sequence: sequence, ticket: ticket)
                let next: Result<SubmittedWrite, any Error>? = writer.withLock { state in
                    if let again = state.reapplied.removeValue(forKey: key) { return again }
                    // Its client is told it failed: no later recovery may apply it again.
                    if let index = state.pending.firstIndex(where: { $0.sequence == sequence && $0.write?.ticket == ticket }) {
                        state.pending[index].write?.abandoned = true
                    }
                    return nil
                }
                // Lost: the client hears what made the log fail (a full disk, say), not only
                // that the record was dropped.
                guard let next else { throw failed }
                // Applied again by the recovery: waited for as the first was.
                submitted = try next.get()
                failure = nil
            }
        }
        return submitted.outcome
    }

    /// After the log failed: forgets every write it did not make durable, so the tree, the
    /// sequence and the log agree again and later writes can succeed; on a log other nodes
    /// write too, takes the records they committed meanwhile, then applies this node's
    /// dropped writes again, in their order (``finish(_:)`` picks them up). Returns whether
    /// the log recovered.
    @discardableResult
    func rollBack(after failure: any Error) -> Bool {
        let published: UInt64? = writer.withLock { state in
            // A log ahead of the writer (it holds records someone else wrote) cannot be caught
            // up here: nothing changes, and the log keeps refusing appends.
            guard let durable = log.recover(from: failure), state.sequence >= durable else { return nil }
            let dropped = state.pending.filter { $0.sequence > durable }
            state.pending.removeAll { $0.sequence > durable }
            state.root = state.pending.last?.root ?? committed.withLock { $0.root }
            state.sequence = durable
            guard log.isShared else { return durable }
            // What other nodes committed after it. If they cannot be read now, the writes
            // applied again below are refused by the fence and come back here.
            state.take((try? log.recordsWrittenElsewhere(after: durable)) ?? [])
            let caughtUp = state.sequence
            for version in dropped {
                guard let write = version.write, !write.abandoned else { continue }
                let key = WriteKey(sequence: version.sequence, ticket: write.ticket)
                guard write.attempts < Database.maximumAttempts else {
                    state.reapplied[key] = .failure(failure)
                    continue
                }
                do {
                    state.reapplied[key] = .success(try apply(write.request, to: &state, attempts: write.attempts + 1))
                } catch let refused as AppendRefused {
                    state.reapplied[key] = .failure(refused.underlying)
                } catch {
                    state.reapplied[key] = .failure(error)
                }
            }
            return caughtUp
        }
        // Also when nothing is dropped: a commit whose answer was lost may have made every
        // pending write durable after all.
        if let published { markDurable(through: published) }
        return published != nil
    }

    /// For a node that follows a log written elsewhere (a PostgreSQL follower): makes
    /// `records`, already durable there, the database's next versions and publishes them in
    /// order, to readers and streams, as its own writes would be. A record may jump ahead (a
    /// snapshot the writer took, as a change that sets the whole tree); records at or before
    /// the current sequence are skipped. Returns false, changing nothing, while writes made
    /// here are pending (a follower takes none).
    public func applyFollowed(_ records: [LogRecord]) -> Bool {
        let last: UInt64? = writer.withLock { state in
            guard state.pending.isEmpty else { return nil }
            state.take(records)
            return state.sequence
        }
        guard let last else { return false }
        markDurable(through: last)
        return true
    }

    /// Makes every write up to `sequence` visible to readers.
    func markDurable(through sequence: UInt64) {
        // Published already (every pending version is newer than the committed one): the
        // writer lock, which the namespace's writes contend for, is not needed.
        if committed.withLock({ $0.sequence >= sequence }) { return }
        // Publish under the writer lock, so that a rollback (which reads the committed root
        // under the same lock) never sees a durable write missing from both places.
        // Versions that stop being reachable are freed after the locks are released, so the
        // writer never waits while pages of old trees and indexes are deallocated.
        var retired: [Version] = []
        writer.withLock { state in
            // Pending roots are in sequence order: drop the durable prefix in one step.
            let durable = state.pending.prefix { $0.sequence <= sequence }.count
            guard durable > 0 else { return }
            let latest = state.pending[durable - 1]
            retired = Array(state.pending[..<durable])
            state.pending.removeFirst(durable)
            committed.withLock { committed in
                guard latest.sequence > committed.sequence else { return }
                if !committed.indexes.isEmpty {
                    // Bring the indexes up to date version by version. Nobody else holds them
                    // (readers copy them only for the moment of a query), so they change in place.
                    var indexes = committed.indexes
                    committed.indexes = QueryIndexes()
                    var previous = committed.root
                    for version in retired where version.sequence > committed.sequence {
                        indexes.apply(version.change.mutations, old: previous, new: version.root)
                        previous = version.root
                    }
                    committed.indexes = indexes
                }
                if let observer = observer.withLock({ $0 }) {
                    // Tell subscribers, in sequence order (this runs under the writer lock).
                    observer.call(retired.filter { $0.sequence > committed.sequence }.map {
                        PublishedChange(sequence: $0.sequence, change: $0.change, root: $0.root)
                    })
                }
                retired.append(Version(sequence: committed.sequence, root: committed.root, change: Change(kind: .set, path: .root, mutations: [])))
                committed.root = latest.root
                committed.sequence = latest.sequence
            }
        }
        withExtendedLifetime(retired) {}
    }

    /// Runs inside the writer lock: builds the change, checks the rules and conditions, logs it.
    func apply(_ request: WriteRequest, to state: inout WriterState, attempts: Int = 1) throws -> SubmittedWrite {
        let current = state.root
        let now = clock()
        let (change, result) = try request.change(from: current) { ChildKey(state.pushIDs.next(now: now)) }
        let newRoot = change.applied(to: current)
        try request.authorize(change, oldRoot: current, newRoot: newRoot)
        if let condition = request.condition {
            // A write to `/.priority` is conditional on the priority, the value it replaces.
            var existing = current.at(request.path)
            if case .setPriority = request.operation { existing = existing.priority?.node ?? .null }
            guard condition.holds(for: existing) else {
                return SubmittedWrite(outcome: .conditionFailed(current: existing), pending: nil)
            }
        }
        let sequence = state.sequence + 1
        let ticket: UInt64
        do {
            ticket = try log.append(LogRecord(sequence: sequence, change: change), pushTime: state.pushIDs.lastTime)
        } catch {
            throw AppendRefused(underlying: error)
        }
        state.sequence = sequence
        state.root = newRoot
        state.pending.append(Version(
            sequence: sequence, root: newRoot, change: change,
            write: PendingWrite(request: request, ticket: ticket, attempts: attempts)))
        return SubmittedWrite(outcome: .written(sequence: sequence, result: result), pending: (sequence, ticket))
    }

    /// Milliseconds since the epoch from the system clock.
    @Sendable
    public static func systemMilliseconds() -> Int64 {
        return Int64(SystemClockReader.millisecondsSinceEpoch())
    }
}

/// The change feed's subscriber (see ``Database/observe(_:)``).
struct ChangeObserver: Sendable {
    let call: @Sendable ([PublishedChange]) -> Void
}

/// A change as it became visible to readers: its sequence number, what it did, and the tree
/// after it.
public struct PublishedChange: Sendable {
    public let sequence: UInt64
    public let change: Change
    public let root: Node
}

/// One consistent version of a namespace for readers.
public struct ReadView: Sendable {
    public let root: Node
    public let sequence: UInt64
    public let indexes: QueryIndexes
}

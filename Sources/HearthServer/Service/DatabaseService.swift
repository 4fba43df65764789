import HearthCore
import HearthStorage
import Logging

/// The database as every transport sees it: read (with a query), write (set, update, push,
/// delete; conditional on an ETag or on the SDKs' hash of the value), listen (a location or a live query, from a sequence
/// number), on-disconnect writes (register, cancel, and make them when a session ends; see
/// `DatabaseService+OnDisconnect.swift`), and the rules (read, replace, dry-run). Each operation takes the caller and the
/// namespace and answers with a typed result or a ``ServiceError``; a transport only parses
/// its request, calls the service and encodes the answer.
///
/// The service owns what must come out the same whichever transport asked: the rules checks,
/// the namespace creation policy, the write rate limit, and the metrics of data operations.
public final class DatabaseService: Sendable {
    let configuration: ServerConfiguration
    public let namespaces: NamespaceRegistry
    public let rules: RulesRegistry
    public let streams: StreamRegistry
    /// Writes per client; nil when unlimited.
    let writeLimiter: WriteRateLimiter?
    /// What each realtime session asked to be written when it ends.
    let onDisconnectWrites: OnDisconnectRegistry
    let logger: Logger

    public init(
        configuration: ServerConfiguration, namespaces: NamespaceRegistry, rules: RulesRegistry, streams: StreamRegistry,
        sessionJournal: any SessionStore = SessionJournal.memoryOnly(), logger: Logger
    ) {
        self.configuration = configuration
        self.namespaces = namespaces
        self.rules = rules
        self.streams = streams
        self.logger = logger
        writeLimiter = configuration.writeRateLimit.map(WriteRateLimiter.init)
        onDisconnectWrites = OnDisconnectRegistry(journal: sessionJournal)
    }

    var metrics: ServerMetrics { streams.metrics }

    // MARK: Namespaces and limits

    /// A namespace comes into being when it is first named; only the admin may do that,
    /// unless the server allows anyone to (`create-namespaces`, or emulator mode). The default
    /// namespace always exists. Every operation checks it; a transport may check it earlier,
    /// to answer `404` before it validates the rest of the request (as REST does).
    public func checkNamespaceExists(_ namespace: String, caller: Caller) throws {
        guard !caller.isAdmin, !configuration.anyoneCreatesNamespaces, namespace != configuration.defaultNamespace,
            namespaces.existing(namespace) == nil
        else { return }
        throw ServiceError(
            .notFound,
            "Database not found: there is no database \"\(namespace)\" on this server. Creating one needs the admin "
                + "token (or the server's create-namespaces setting).")
    }

    /// Takes one write from the allowance of the client (`clientKey`, see
    /// ``ClientAddress/limitKey``), or refuses it with the seconds to wait. The admin is not
    /// limited.
    public func admitWrite(from clientKey: @autoclosure () -> String, caller: Caller) throws {
        guard let writeLimiter, !caller.isAdmin, let wait = writeLimiter.admit(clientKey()) else { return }
        metrics.countRefusal(.writeRate)
        let seconds = WriteRateLimiter.retryAfterSeconds(wait)
        throw ServiceError(
            .tooManyRequests(retryAfterSeconds: seconds),
            "Too many writes: this client may write \(writeLimiter.limit.perSecondText) times per second (bursts of "
                + "\(writeLimiter.limit.burst)); retry in \(seconds) s.")
    }

    /// The rules `caller` obeys in `namespace`: nil for the admin (who bypasses them).
    func access(_ namespace: String, caller: Caller, now: Int64) -> WriteAccess? {
        caller.bypassesRules ? nil : WriteAccess(rules: rules.rules(for: namespace), auth: caller.auth, now: now)
    }

    // MARK: Reads

    /// What to read: a location, or a query of its children, or its priority.
    public struct Read: Sendable {
        public var namespace: String
        public var path: Path
        public var query: Query?
        /// The priority at `path` rather than its value.
        public var priority = false
        /// A child or value query needs an index the rules declare (REST, as on Firebase); the
        /// realtime protocol's reads do not (Firebase answers them, and the SDKs warn).
        public var requiresIndex = true

        public init(namespace: String, path: Path, query: Query? = nil, priority: Bool = false, requiresIndex: Bool = true) {
            self.namespace = namespace
            self.path = path
            self.query = query
            self.priority = priority
            self.requiresIndex = requiresIndex
        }
    }

    /// What a read found.
    public enum ReadResult: Sendable {
        /// The value at the location (or its priority).
        case value(Node)
        /// A query's children, in query order.
        case children([ChildEntry])
    }

    /// Reads after the checks of every read: the rules must grant it, and a child or value
    /// query needs an index the rules declare (as on Firebase; the admin and emulator mode may
    /// query without one, by scanning).
    public func read(_ read: Read, as caller: Caller, now: Int64) throws -> ReadResult {
        try checkNamespaceExists(read.namespace, caller: caller)
        if read.query != nil && read.priority { throw DataError("Queries are not supported on a priority.") }
        let database = namespaces.existing(read.namespace)
        let root = database?.root ?? .null
        let namespaceRules = rules.rules(for: read.namespace)
        try authorizeRead(
            namespaceRules, read.path, read.query, caller: caller, root: root, now: now, requireIndex: read.requiresIndex)
        guard let query = read.query else {
            let node = root.at(read.path)
            return .value(read.priority ? node.priority?.node ?? .null : node)
        }
        let declared = namespaceRules.declaresIndex(at: read.path, orderBy: query.orderBy)
        let view = database?.readView(for: query, at: read.path, declared: declared)
        let node = (view?.root ?? .null).at(read.path)
        let spec = IndexSpec(location: read.path, orderBy: query.orderBy)
        return .children(view?.indexes[spec].map { query.lookup(node, in: $0) } ?? query.scan(node))
    }

    func authorizeRead(
        _ namespaceRules: RuleSet, _ path: Path, _ query: Query?, caller: Caller, root: Node, now: Int64, requireIndex: Bool = true
    ) throws {
        guard !caller.bypassesRules else { return }
        let verdict = namespaceRules.canRead(path, auth: caller.auth, root: root, now: now, query: query?.ruleQuery ?? RuleQuery())
        guard verdict.allowed else { throw PermissionDenied(reason: verdict.reason) }
        if requireIndex, let query, !namespaceRules.declaresIndex(at: path, orderBy: query.orderBy), !configuration.emulator {
            throw DataError(
                "Index not defined, add \".indexOn\": \"\(query.orderBy.indexOnName)\", for path \"\(path)\", to the rules")
        }
    }

    // MARK: Writes

    /// What a write did.
    public enum WriteResult: Sendable {
        /// The data written, server values resolved (null for an increment by a caller who
        /// may not read its total).
        case written(Node)
        /// A push: the new child's name and the value stored there.
        case pushed(ChildKey, stored: Node)
        /// The condition (`if-match`, a transaction's hash) did not hold: nothing was written. The current value,
        /// for a caller who may read it (a caller who may not gets ``ServiceError/Code/conditionFailed``).
        case conditionFailed(current: Node)
    }

    /// Makes one write in `namespace` as `caller`: judged by the rules inside the namespace's
    /// writer, acknowledged once durable. A write to a namespace that does not exist yet is
    /// judged on an empty tree first, so that a refused write creates nothing; a delete there
    /// creates nothing either.
    public func write(_ request: WriteRequest, in namespace: String, as caller: Caller, now: Int64) async throws -> WriteResult {
        try await startWrite(request, in: namespace, as: caller, now: now).result()
    }

    /// A write that has been applied, in its namespace's order, and is being made durable.
    public struct StartedWrite: Sendable {
        typealias Answer = @Sendable (Result<WriteOutcome, any Error>) throws -> WriteResult
        enum State: Sendable {
            /// Nothing to wait for.
            case answered(WriteResult)
            /// The write to wait for, and what makes its outcome the answer.
            case pending(Database, Database.SubmittedWrite, Answer)
        }
        let state: State

        /// Waits until the write is durable; its answer.
        public func result() async throws -> WriteResult {
            switch state {
            case .answered(let result):
                return result
            case .pending(let database, let submitted, let answer):
                let outcome: Result<WriteOutcome, any Error>
                do {
                    outcome = .success(try await database.finish(submitted))
                } catch {
                    outcome = .failure(error)
                }
                return try answer(outcome)
            }
        }

        /// ``result()`` without a task: once the write is durable (or failed), calls `then`, on
        /// the thread that learns it (the log's flusher, or this one), with a function that
        /// makes the result; `then` must only hand that on, to be called where the answer is
        /// made (it reads the tree, and may judge the rules).
        public func whenDone(_ then: @escaping @Sendable (_ result: @escaping @Sendable () throws -> WriteResult) -> Void) {
            switch state {
            case .answered(let result):
                then { result }
            case .pending(let database, let submitted, let answer):
                database.finish(submitted) { outcome in then { try answer(outcome) } }
            }
        }

        static func answered(_ result: WriteResult) -> StartedWrite { StartedWrite(state: .answered(result)) }
    }

    /// Does everything of ``write(_:in:as:now:)`` but wait for durability: the write is judged
    /// and applied now, so writes started one after another apply in that order (a realtime
    /// connection pipelines its writes this way and answers them in order).
    public func startWrite(_ request: WriteRequest, in namespace: String, as caller: Caller, now: Int64) throws -> StartedWrite {
        try checkNamespaceExists(namespace, caller: caller)
        var request = request
        request.access = access(namespace, caller: caller, now: now)
        if case .update(let entries) = request.operation {
            try UpdateEntry.checkNoOverlap(entries)
            for entry in entries where entry.isPriority { _ = try Priority(written: entry.value) }
            if entries.isEmpty { return .answered(.written(.null)) }
        }
        guard let database = namespaces.existing(namespace) else {
            try request.check(on: .null, now: now)
            if request.deletes { return .answered(try answerWithoutWriting(request, namespace: namespace, caller: caller, now: now)) }
            return try start(request, to: try namespaces.database(namespace), as: caller, now: now)
        }
        return try start(request, to: database, as: caller, now: now)
    }

    /// A delete in a namespace that does not exist: nothing to delete, nothing created; only
    /// the condition is judged (against null).
    func answerWithoutWriting(_ request: WriteRequest, namespace: String, caller: Caller, now: Int64) throws -> WriteResult {
        let started = ContinuousClock.now
        defer { metrics.writeDuration.record(ContinuousClock.now - started) }
        if let condition = request.condition, !condition.holds(for: .null) {
            return try conditionFailed(current: .null, request: request, namespace: namespace, root: .null, caller: caller, now: now)
        }
        return .written(.null)
    }

    func start(_ request: WriteRequest, to database: Database, as caller: Caller, now: Int64) throws -> StartedWrite {
        let started = ContinuousClock.now
        let submitted: Database.SubmittedWrite
        do {
            submitted = try database.submit(request)
        } catch {
            metrics.writeDuration.record(ContinuousClock.now - started)
            throw DatabaseService.storageError(error)
        }
        let answer: StartedWrite.Answer = { [self] outcome in
            defer { metrics.writeDuration.record(ContinuousClock.now - started) }
            let written: WriteOutcome
            do {
                written = try outcome.get()
            } catch {
                throw DatabaseService.storageError(error)
            }
            return try self.answer(written, for: request, in: database, as: caller, now: now)
        }
        return StartedWrite(state: .pending(database, submitted, answer))
    }

    /// A write's failure as clients see it: bad data, the rules and size limits as they are;
    /// anything else means the log could not make it durable.
    static func storageError(_ error: any Error) -> any Error {
        switch error {
        case is DataError, is PermissionDenied, is RecordTooLarge: error
        default:
            StorageUnavailable(
                reason: "the write could not be made durable (\(error)); nothing was written.",
                outOfSpace: StorageIOError.isOutOfSpace(error))
        }
    }

    func answer(_ outcome: WriteOutcome, for request: WriteRequest, in database: Database, as caller: Caller, now: Int64) throws
        -> WriteResult
    {
        switch outcome {
        case .conditionFailed(let current):
            return try conditionFailed(
                current: current, request: request, namespace: database.name, root: database.root, caller: caller, now: now)
        case .written(_, .pushed(let name)):
            return .pushed(name, stored: database.root.at(request.path.appending(name)))
        case .written(_, .value(let value)):
            // An increment's answer is the stored total: only for callers who may read it (a
            // write-only caller could otherwise read any number with an increment of 0).
            if request.hasIncrements, !mayRead(request.path, in: database.name, root: database.root, caller: caller, now: now) {
                return .written(.null)
            }
            return .written(value)
        }
    }

    /// The current value goes only to callers who may read it.
    func conditionFailed(
        current: Node, request: WriteRequest, namespace: String, root: Node, caller: Caller, now: Int64
    ) throws -> WriteResult {
        guard mayRead(request.path, in: namespace, root: root, caller: caller, now: now) else {
            throw ServiceError(
                .conditionFailed, "The data at this location has changed (the ETag does not match); you may not read it.")
        }
        return .conditionFailed(current: current)
    }

    func mayRead(_ path: Path, in namespace: String, root: Node, caller: Caller, now: Int64, query: Query? = nil) -> Bool {
        caller.bypassesRules
            || rules.rules(for: namespace).canRead(
                path, auth: caller.auth, root: root, now: now, query: query?.ruleQuery ?? RuleQuery()
            ).allowed
    }

    // MARK: Listening

    /// A location or live query being listened to: its subscription (whose outbox the
    /// transport drains), the namespace's hub, and the client's stream slot.
    public struct Listener: Sendable {
        let subscription: Subscription
        /// The stream's frames, for the transport to send.
        let outbox: Outbox
        let hub: NamespaceStreams
        /// Held while the listener lives; the slot is given back when it is released.
        let lease: ClientStreamLease
    }

    /// Starts listening to `path` (or a live query there) after the checks of a read: the
    /// first frames are a `put` of the current value (or, from `lastSequence`, exactly the
    /// changes after it). The namespace is created if the caller may create it. At most
    /// `max-streams-per-client` listeners per client (`clientKey`).
    func listen(
        namespace: String, path: Path, query: Query?, as caller: Caller, client clientKey: String, from lastSequence: UInt64?,
        now: Int64
    ) async throws -> Listener {
        let database = try openForListening(namespace, path: path, query: query, as: caller, now: now, requireIndex: true)
        let limit = configuration.limits.maxStreamsPerClient
        guard let lease = streams.leaseStream(for: clientKey, limit: limit) else {
            metrics.countRefusal(.streamsPerClient)
            throw ServiceError(
                .tooManyRequests(retryAfterSeconds: nil),
                "Too many streams: this client already has \(limit) open, the server's limit per client.")
        }
        let outbox = Outbox(capacityBytes: streams.options.outboxBytes)
        let (subscription, hub) = await subscribe(
            database, path: path, query: query, as: caller, delivery: .events(outbox), from: lastSequence)
        return Listener(subscription: subscription, outbox: outbox, hub: hub, lease: lease)
    }

    /// What every listen checks first, whatever its transport: the namespace policy and the
    /// read's rules (and the query's index, if `requireIndex`). A listener needs the
    /// namespace's change feed, so the namespace is then opened (or created).
    func openForListening(
        _ namespace: String, path: Path, query: Query?, as caller: Caller, now: Int64, requireIndex: Bool
    ) throws -> Database {
        try checkNamespaceExists(namespace, caller: caller)
        try authorizeRead(
            rules.rules(for: namespace), path, query, caller: caller, root: namespaces.existing(namespace)?.root ?? .null,
            now: now, requireIndex: requireIndex)
        return try namespaces.database(namespace)
    }

    /// The longest a stream resuming from a change this node has not taken yet waits for it.
    static let resumeCatchUpWait = Duration.seconds(2)

    /// Subscribes a listener to `database`'s hub; its first events (the current value, or the
    /// changes after `lastSequence`) are queued before this returns.
    func subscribe(
        _ database: Database, path: Path, query: Query?, as caller: Caller, delivery: Subscription.Delivery,
        from lastSequence: UInt64? = nil
    ) async -> (Subscription, NamespaceStreams) {
        let hub = streams.hub(for: database)
        if let lastSequence, configuration.streamHistoryFromOpen {
            // A stream resuming here from another node may name a change this node has not
            // taken yet: it waits for it (a moment), rather than get an older value.
            let deadline = ContinuousClock.now + DatabaseService.resumeCatchUpWait
            while await hub.latestSequence < lastSequence, ContinuousClock.now < deadline, !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        let subscription = Subscription(
            id: streams.makeID(), path: path, auth: caller.auth, bypassesRules: caller.bypassesRules, query: query,
            delivery: delivery)
        await hub.subscribe(subscription, lastEventID: lastSequence)
        return (subscription, hub)
    }

    // MARK: Rules

    /// The namespace's rules document: as uploaded (comments and all), or as strict JSON.
    /// Admin only.
    public func rulesDocument(_ namespace: String, strict: Bool, as caller: Caller) throws -> String {
        try requireAdmin(caller)
        let current = rules.rules(for: namespace)
        return strict ? current.strictJSON : current.source
    }

    /// Compiles `text`; unless `dryRun`, stores it and puts it in force (streams that may no
    /// longer read are cancelled). A document with an error changes nothing. Admin only.
    public func replaceRules(_ namespace: String, with text: String, dryRun: Bool, as caller: Caller) async throws {
        try requireAdmin(caller)
        let compiled: RuleSet
        do {
            compiled = try RuleSet.parse(text)
        } catch {
            throw DataError(error.description)
        }
        guard !dryRun else { return }
        try refuseIfFollowing()
        try rules.replace(namespace, with: compiled, namespaces: namespaces)
        logger.notice("security rules replaced", metadata: ["namespace": "\(namespace)"])
        await streams.rulesChanged(namespace: namespace, rules: compiled)
    }

    /// A following node takes nothing that must be stored: writes fail in its log, and rules
    /// and on-disconnect registrations are refused here.
    func refuseIfFollowing() throws {
        guard configuration.followsWriter else { return }
        throw ServiceError(
            .unavailable, "Service unavailable: this node follows PostgreSQL and takes no writes: send writes to the writer node.")
    }

    func requireAdmin(_ caller: Caller) throws {
        guard caller.isAdmin else {
            throw PermissionDenied(reason: "the rules can only be read or changed with an admin credential")
        }
    }
}

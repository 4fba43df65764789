import Foundation
import HearthCore
import Logging
import NIOCore
import NIOWebSocket
import Synchronization
import WSCore

/// One client of Firebase's realtime protocol: the SDKs' connection, on a WebSocket or by
/// long polling (which may move to a WebSocket: see `RealtimeConnection+LongPoll.swift`).
///
/// Three tasks serve it. The **reader** joins frames into messages and handles each request
/// in arrival order (each in a child task that ends with it, so that an idle connection does
/// not keep the frames of its deepest request); writes are started at once (so they apply in the client's order) and
/// the reader goes on to the next request without waiting for them to be durable. The
/// **replier** answers the requests in the same order: a write's `ok` once it is durable and
/// the pushes it caused are queued ahead of it. The **writer** sends the outbox to the client
/// (``RealtimeTransportWriter``). Requests that read (listen, get,
/// on-disconnect registrations) first wait for the writes before them.
///
/// When the connection ends, for any reason, its listens stop and its on-disconnect writes are
/// made.
final class RealtimeConnection: Sendable {
    let service: DatabaseService
    let callers: CallerResolver
    let session: RealtimeSession
    let limits: ServerLimits
    let metrics: ServerMetrics
    let logger: Logger
    /// The client's stream slot (a realtime connection counts as one of its streams).
    let lease: ClientStreamLease
    /// The client's address, for the write rate limit.
    let clientKey: String
    /// How the connection began, when it began by long polling.
    let longPoll: LongPollTransport?

    struct State {
        var caller = Caller.anonymous
        var hub: NamespaceStreams?
        var expiry: Task<Void, Never>?
        /// A long-polling connection's move to a WebSocket, once one has been opened for it.
        var upgrade: RealtimeUpgrade?
    }
    let state = Mutex(State())

    /// A request's answer, in request order.
    enum Pending: Sendable {
        case reply([UInt8])
        /// A write being made durable: answered once it is.
        case write(number: Int64, DatabaseService.StartedWrite, isTransaction: Bool)
        /// Resumed when every answer before it is queued.
        case barrier(CheckedContinuation<Void, Never>)
    }
    let pending: AsyncStream<Pending>
    let pendingInput: AsyncStream<Pending>.Continuation
    /// Answers queued and not yet given to the outbox; the reader waits above ``maxInFlight``.
    let inFlight = Atomic<Int>(0)
    static let maxInFlight = 1024

    init(
        service: DatabaseService, callers: CallerResolver, session: RealtimeSession, limits: ServerLimits, lease: ClientStreamLease,
        clientKey: String, longPoll: LongPollTransport? = nil, logger: Logger
    ) {
        self.service = service
        self.callers = callers
        self.session = session
        self.limits = limits
        self.metrics = service.metrics
        self.lease = lease
        self.clientKey = clientKey
        self.longPoll = longPoll
        self.logger = logger
        (pending, pendingInput) = AsyncStream<Pending>.makeStream()
    }

    var caller: Caller { state.withLock { $0.caller } }

    // MARK: Running

    /// Serves the connection on a WebSocket until either side ends it, then cleans up.
    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, host: String) async {
        session.outbox.reply(ByteBuffer(bytes: WireEncoding.hello(
            time: Database.systemMilliseconds(), host: host, session: session.wireID)))
        let replier = begin()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = await self.writeLoop(WebSocketTransportWriter(outbound: outbound)) }
            group.addTask { await self.readLoop(inbound) }
            // Whichever ends first (the client went, the writer failed or the server is
            // stopping) ends the other.
            await group.next()
            session.outbox.end(.client)
            group.cancelAll()
        }
        await end(replier)
    }

    /// Starts answering requests. The replier is not cancelled with the reader and writer: it
    /// answers (and so releases) every request queued before the end, including a reader
    /// waiting in ``drain()``.
    func begin() -> Task<Void, Never> {
        metrics.realtime.connectionOpened()
        return Task { await self.replyLoop() }
    }

    /// Answers what is queued, then stops listening and makes the on-disconnect writes.
    func end(_ replier: Task<Void, Never>) async {
        pendingInput.finish()
        await replier.value
        await cleanUp()
    }

    func cleanUp() async {
        let (hub, expiry) = state.withLock { ($0.hub, $0.expiry) }
        expiry?.cancel()
        let listens = session.listens.withLock { listens in
            defer { listens = [:] }
            return Array(listens.values)
        }
        if let hub {
            for subscription in listens { await hub.unsubscribe(subscription) }
        }
        await service.sessionEnded(session.id, now: Database.systemMilliseconds())
        metrics.realtime.connectionClosed()
        withExtendedLifetime(lease) {}
    }

    /// Ends the connection from the server's side (a newer connection of the same client
    /// replaced it).
    func close() {
        session.outbox.end(.client)
    }

    func readLoop(_ inbound: WebSocketInboundStream) async {
        var assembler = WireFrameAssembler(maxMessageBytes: limits.maxRealtimeMessageBytes)
        do {
            for try await message in inbound.messages(maxSize: limits.maxRealtimeMessageBytes) {
                guard case .message(let bytes) = try assembler.receive(try RealtimeConnection.text(of: message)) else { continue }
                metrics.realtime.messagesIn.increment()
                try await handleInChildTask(bytes)
            }
        } catch let error as DataError {
            protocolError(error)
        } catch {
            // The socket closed or the task was cancelled.
        }
    }

    /// ``handle(_:)`` in a child task that ends with it. A task keeps the memory its deepest
    /// call chain took until it ends: handled in the reader's task, which lives as long as
    /// the connection, a listen's or a write's frames (about 14 KB) stayed with every idle
    /// connection (Docs/PERFORMANCE.md, "Memory per realtime connection").
    func handleInChildTask(_ bytes: [UInt8]) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.handle(bytes) }
            try await group.next()
        }
    }

    static func text(of message: WebSocketMessage) throws(DataError) -> [UInt8] {
        guard case .text(let text) = message else {
            throw DataError("Binary messages are not part of the realtime protocol.")
        }
        return Array(text.utf8)
    }

    /// The client sent what the protocol does not allow: the connection ends.
    func protocolError(_ error: DataError) {
        if error.message.hasPrefix("Message too large") { metrics.countRefusal(.messageSize) }
        logger.debug("realtime connection closed: \(error.message)", metadata: ["session": "\(session.id.value)"])
        session.outbox.end(.protocolError)
    }

    /// How the writer stopped.
    enum WriterEnd {
        case ended
        /// The outbox reached the long-polling connection's move to its WebSocket.
        case handOver
    }

    /// Sends the outbox through `writer` until the connection ends (or, on long polling, it
    /// moves to a WebSocket).
    func writeLoop(_ writer: some RealtimeTransportWriter) async -> WriterEnd {
        do {
            while true {
                switch await session.outbox.next() {
                case .write(let messages):
                    metrics.realtime.messagesOut.increment(by: Int64(messages.count))
                    try await writer.write(messages)
                case .resync:
                    if let hub = state.withLock({ $0.hub }) {
                        await hub.resync(session, listens: session.allListens)
                    } else {
                        session.outbox.resynchronised(with: [])
                    }
                case .handOver:
                    return .handOver
                case .end(let finalMessage):
                    if finalMessage != nil { metrics.realtime.messagesOut.increment() }
                    await writer.end(with: finalMessage, reason: session.outbox.endReason)
                    return .ended
                case .wait:
                    continue
                }
            }
        } catch {
            // The transport is gone.
            return .ended
        }
    }

    func replyLoop() async {
        for await item in pending {
            switch item {
            case .reply(let bytes):
                session.outbox.reply(ByteBuffer(bytes: bytes))
            case .write(let number, let started, let isTransaction):
                session.outbox.reply(ByteBuffer(bytes: await answer(number, started, isTransaction: isTransaction)))
            case .barrier(let continuation):
                continuation.resume()
            }
            inFlight.subtract(1, ordering: .relaxed)
        }
    }

    /// A write's answer, once it is durable and the pushes it caused (or, for a stale
    /// transaction, the pushes of the data it lost to) are queued.
    func answer(_ number: Int64, _ started: DatabaseService.StartedWrite, isTransaction: Bool) async -> [UInt8] {
        let reply: [UInt8]
        do {
            switch try await started.result() {
            case .written, .pushed:
                if isTransaction { metrics.realtime.transactionsCommitted.increment() }
                reply = WireEncoding.reply(number, status: "ok", data: .empty)
            case .conditionFailed:
                metrics.realtime.transactionsStale.increment()
                reply = WireEncoding.reply(number, status: "datastale", data: .message("Transaction hash does not match"))
            }
        } catch {
            if let error = error as? ServiceError, error.code == .conditionFailed { metrics.realtime.transactionsStale.increment() }
            reply = errorReply(number, error)
        }
        await pushesQueued()
        return reply
    }

    /// Waits until the namespace's fan-out has handled every change made so far, so the
    /// pushes they cause are queued before what comes next.
    func pushesQueued() async {
        guard let hub = state.withLock({ $0.hub }), let database = service.namespaces.existing(session.namespace) else { return }
        await hub.waitUntilPublished(database.snapshot.sequence)
    }

    // MARK: Requests

    /// Queues an answer after every answer before it.
    func enqueue(_ item: Pending) async {
        if inFlight.add(1, ordering: .relaxed).newValue > RealtimeConnection.maxInFlight { await drain() }
        pendingInput.yield(item)
    }

    func respond(_ number: Int64, _ status: String = "ok", _ data: WireEncoding.ReplyData = .empty) async {
        await enqueue(.reply(WireEncoding.reply(number, status: status, data: data)))
    }

    func errorReply(_ number: Int64, _ error: any Error) -> [UInt8] {
        let serviceError = ServiceError(error) { level, message in
            logger.log(level: level, "\(message)", metadata: ["session": "\(session.id.value)"])
        }
        return WireEncoding.reply(number, status: serviceError.realtimeStatus, data: .message(serviceError.message))
    }

    /// Returns once every answer queued so far has been handed to the outbox (so every write
    /// before this point is durable and visible).
    func drain() async {
        inFlight.add(1, ordering: .relaxed)
        await withCheckedContinuation { continuation in
            // After the end nothing is answered any more: nothing to wait for.
            if case .terminated = pendingInput.yield(.barrier(continuation)) { continuation.resume() }
        }
    }

    func handle(_ bytes: [UInt8]) async throws {
        let now = Database.systemMilliseconds()
        let message = try bytes.withUnsafeBytes { try WireMessage.decode($0, now: now) }
        switch message {
        case .control("p"):
            // A ping: answered at once (the SDK counts pongs towards a healthy connection).
            session.outbox.reply(ByteBuffer(bytes: WireEncoding.control("o")))
        case .control("n"):
            // A long-polling client has finished sending by long poll: it sends on its
            // WebSocket from now on.
            moveInput()
        case .control:
            // `a` belongs to the upgrade too (the switch-ack on the WebSocket, which needs no
            // answer); unknown commands are ignored, as the SDKs do.
            break
        case .request(let number, .failure(let error)):
            await enqueue(.reply(errorReply(number, error)))
        case .request(let number, .success(let action)):
            await perform(action, number: number, now: now)
        }
    }

    func perform(_ action: WireAction, number: Int64, now: Int64) async {
        switch action {
        case .stats, .appCheck:
            await respond(number)
        case .auth(let credential, let override):
            await authenticate(number, credential: credential, override: override)
        case .unauth:
            await changeCaller(to: .anonymous)
            await respond(number)
        case .listen(let listen):
            await drain()
            await startListening(listen, number: number, now: now)
        case .unlisten(let listen):
            await stopListening(listen)
            await respond(number)
        case .get(let path, let query):
            await drain()
            do {
                let read = DatabaseService.Read(namespace: session.namespace, path: path, query: query, requiresIndex: false)
                switch try service.read(read, as: caller, now: now) {
                case .value(let node): await respond(number, "ok", .value(node))
                case .children(let entries):
                    await respond(number, "ok", .value(.object(unsortedEntries: entries)))
                }
            } catch {
                await enqueue(.reply(errorReply(number, error)))
            }
        case .put(let path, let value, let hash, let priorityOnly):
            let operation: WriteRequest.Operation
            do {
                operation = priorityOnly ? .setPriority(try Priority(written: value)) : .set(value)
            } catch {
                await enqueue(.reply(errorReply(number, error)))
                return
            }
            await write(WriteRequest(path: path, operation: operation, condition: hash.map { .hash($0) }), number: number, now: now)
        case .merge(let path, let entries):
            await write(WriteRequest(path: path, operation: .update(entries)), number: number, now: now)
        case .onDisconnectPut(let path, let value):
            await registerOnDisconnect(.set(value), at: path, number: number, now: now)
        case .onDisconnectMerge(let path, let entries):
            await registerOnDisconnect(.update(entries), at: path, number: number, now: now)
        case .onDisconnectCancel(let path):
            await registerOnDisconnect(.cancel, at: path, number: number, now: now)
        case .unknown(let name):
            await respond(number, "invalid_action", .message("Unknown action \"\(name)\"."))
        }
    }

    func write(_ request: WriteRequest, number: Int64, now: Int64) async {
        do {
            let caller = self.caller
            try service.admitWrite(from: clientKey, caller: caller)
            let started = try service.startWrite(request, in: session.namespace, as: caller, now: now)
            await enqueue(.write(number: number, started, isTransaction: request.condition != nil))
        } catch {
            await enqueue(.reply(errorReply(number, error)))
        }
    }

    func registerOnDisconnect(_ operation: OnDisconnectOperation, at path: Path, number: Int64, now: Int64) async {
        await drain()
        do {
            try service.onDisconnect(operation, at: path, in: session.namespace, session: session.id, as: caller, now: now)
            await respond(number)
        } catch {
            await enqueue(.reply(errorReply(number, error)))
        }
    }

    // MARK: Listens

    func startListening(_ listen: WireListen, number: Int64, now: Int64) async {
        // A client never listens twice to the same query without unlistening; if it does, the
        // newer listen replaces the older.
        await stopListening(listen)
        guard session.listens.withLock({ $0.count }) < limits.maxListensPerConnection else {
            metrics.countRefusal(.listensPerConnection)
            await respond(
                number, "too_many_listens",
                .message("Too many listens: a connection may hold \(limits.maxListensPerConnection) at once."))
            return
        }
        do {
            let started = try await service.listen(listen, session: session, as: caller, now: now)
            state.withLock { $0.hub = started.hub }
            session.listens.withLock { $0[listen.identity] = started.subscription }
            metrics.realtime.listensOpened.increment()
            await respond(number, "ok", started.unindexed ? .warnings(["no_index"]) : .emptyObject)
        } catch {
            await enqueue(.reply(errorReply(number, error)))
        }
    }

    func stopListening(_ listen: WireListen) async {
        guard let subscription = session.listens.withLock({ $0.removeValue(forKey: listen.identity) }),
            let hub = state.withLock({ $0.hub })
        else { return }
        await hub.unsubscribe(subscription)
    }

    // MARK: Auth

    func authenticate(_ number: Int64, credential: String, override: WireAction.AuthOverride) async {
        do {
            var caller = try await callers.caller(credential: credential)
            switch override {
            case .none: break
            case .anonymous: caller = caller.overridden(by: .null)
            case .authVariable(let auth): caller = caller.overridden(by: auth)
            }
            await changeCaller(to: caller)
            await respond(number, "ok", .auth(caller.auth, expires: caller.expiresAt.map { Int64($0) }))
        } catch {
            // The SDK drops the credential, closes and reconnects; meanwhile it is anonymous.
            await changeCaller(to: .anonymous)
            await respond(number, error.expired ? "expired_token" : "invalid_token", .message(error.message))
        }
    }

    /// The connection acts as `caller` from now on: its listens are judged again (those it may
    /// no longer read are revoked with `c`), and its credential's expiry is watched.
    func changeCaller(to caller: Caller) async {
        let (hub, previousExpiry) = state.withLock { state in
            defer { state.caller = caller }
            return (state.hub, state.expiry)
        }
        previousExpiry?.cancel()
        if let expiresAt = caller.expiresAt {
            let expiry = Task { [weak self] in
                let seconds = expiresAt - Date().timeIntervalSince1970
                if seconds > 0 { try? await Task.sleep(for: .milliseconds(Int(min(seconds, 1e9) * 1000))) }
                guard !Task.isCancelled, let self else { return }
                await self.credentialExpired()
            }
            state.withLock { $0.expiry = expiry }
        } else {
            state.withLock { $0.expiry = nil }
        }
        guard let hub else { return }
        let now = Database.systemMilliseconds()
        let root = service.namespaces.existing(session.namespace)?.root ?? .null
        for subscription in session.allListens {
            subscription.reader.withLock { $0 = Subscription.Reader(auth: caller.auth, bypassesRules: caller.bypassesRules) }
            if !service.mayRead(subscription.path, in: session.namespace, root: root, caller: caller, now: now, query: subscription.query) {
                await hub.revoke(subscription)
            }
        }
    }

    /// The credential's `exp` has passed: `ac` (the SDK closes, refreshes its token and
    /// reconnects), and the connection is anonymous until then.
    func credentialExpired() async {
        session.outbox.reply(ByteBuffer(bytes: WireEncoding.authRevoked(status: "expired_token", reason: "Auth token is expired.")))
        await changeCaller(to: .anonymous)
    }
}

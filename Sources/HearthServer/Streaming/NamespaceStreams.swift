import HearthCore
import NIOCore
import Synchronization

/// One open stream or realtime listen: where it listens, for whom, and where its events go.
final class Subscription: Sendable {
    /// Where a subscription's events go, and in which protocol.
    enum Delivery: Sendable {
        /// Server-sent events, into the stream's own outbox.
        case events(Outbox)
        /// Realtime protocol pushes, into the connection's outbox; a filtered listen has the
        /// client's tag (every push for it carries it) and its query object as sent.
        case realtime(RealtimeSession, tag: Int64?, queryText: String?)
    }

    let id: Int
    let path: Path
    /// Who reads: the caller's `auth` (for re-checking read access when the rules change) and
    /// whether the rules apply (admins are never cancelled by rules). A realtime connection
    /// changes it when its client authenticates again.
    struct Reader: Sendable {
        var auth: Node
        var bypassesRules: Bool
    }
    let reader: Mutex<Reader>
    var auth: Node { reader.withLock { $0.auth } }
    var bypassesRules: Bool { reader.withLock { $0.bypassesRules } }
    let query: Query?
    let delivery: Delivery
    /// A live query's current answer (keys and values the client holds), kept by the hub.
    let shown = Mutex<[ChildKey: Node]>([:])

    init(id: Int, path: Path, auth: Node, bypassesRules: Bool, query: Query?, delivery: Delivery) {
        self.id = id
        self.path = path
        reader = Mutex(Reader(auth: auth, bypassesRules: bypassesRules))
        self.query = query
        self.delivery = delivery
    }

    /// The SSE outbox; nil for a realtime listen.
    var outbox: Outbox? {
        guard case .events(let outbox) = delivery else { return nil }
        return outbox
    }
}

/// The streams of one namespace and the fan-out of its changes: the single serial owner that
/// turns each published change into events, once per listened location, and queues the
/// encoded frames in each listener's outbox.
actor NamespaceStreams {
    /// The listeners of each location, in a tree of locations, so a change finds the
    /// listeners at, above and below the paths it touched without scanning all streams.
    final class ListenerNode {
        var children: [ChildKey: ListenerNode] = [:]
        var subscriptions: [Int: Subscription] = [:]
        var isEmpty: Bool { children.isEmpty && subscriptions.isEmpty }
    }

    let root = ListenerNode()
    /// The tree and sequence of the last change processed.
    var latestRoot: Node
    var latestSequence: UInt64
    /// Recent changes, oldest first, for `Last-Event-ID` resumes.
    var history: [PublishedChange] = []
    let historyLimit: Int
    var count = 0
    /// Indexes for the live queries of this namespace's streams, kept in step with the
    /// changes this hub processes (so they always match `latestRoot`), with how many
    /// streams use each.
    var queryIndexes = QueryIndexes()
    var indexUsers: [IndexSpec: Int] = [:]

    let metrics: ServerMetrics

    init(root: Node, sequence: UInt64, historyLimit: Int, metrics: ServerMetrics) {
        latestRoot = root
        latestSequence = sequence
        self.historyLimit = historyLimit
        self.metrics = metrics
    }

    var subscriptionCount: Int { count }

    // MARK: Subscribing

    /// Registers `subscription` and queues what it must see first: the changes after
    /// `lastEventID` if they are all still in the history, else a `put` of the current value.
    func subscribe(_ subscription: Subscription, lastEventID: UInt64?) {
        var node = root
        for key in subscription.path.keys {
            if let child = node.children[key] {
                node = child
            } else {
                let child = ListenerNode()
                node.children[key] = child
                node = child
            }
        }
        node.subscriptions[subscription.id] = subscription
        count += 1
        metrics.streamsOpened.increment()
        if let spec = indexSpec(of: subscription) {
            indexUsers[spec, default: 0] += 1
            queryIndexes.add(spec, root: latestRoot)
        }
        if let outbox = subscription.outbox, let lastEventID, subscription.query == nil, lastEventID <= latestSequence,
            lastEventID == latestSequence || (history.first.map { $0.sequence <= lastEventID + 1 } ?? false)
        {
            // Resume: exactly the changes the client missed.
            var previous = root(before: lastEventID + 1)
            for published in history where published.sequence > lastEventID {
                if let event = StreamEvent.event(at: subscription.path, for: published.change, old: previous, new: published.root) {
                    outbox.push(ByteBuffer(bytes: event.frame(id: published.sequence)))
                }
                previous = published.root
            }
            return
        }
        switch subscription.delivery {
        case .events(let outbox): outbox.push(initialFrame(for: subscription))
        case .realtime(let session, _, _): session.outbox.push(initialPush(for: subscription))
        }
    }

    /// The tree just before the change numbered `sequence`: as of the last change in the
    /// history before it (the history is in sequence order, and may skip numbers: a follower
    /// takes a writer's snapshot as one change), or the tree before the history.
    func root(before sequence: UInt64) -> Node {
        guard !history.isEmpty else { return latestRoot }
        var low = 0
        var high = history.count
        while low < high {
            let middle = (low + high) / 2
            if history[middle].sequence < sequence { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? oldestRoot : history[low - 1].root
    }

    /// The tree before the oldest change in the history.
    var oldestRoot: Node = .null

    /// The index a live query of `subscription` reads, if its ordering uses one.
    func indexSpec(of subscription: Subscription) -> IndexSpec? {
        guard let query = subscription.query, query.orderBy.needsIndex else { return nil }
        return IndexSpec(location: subscription.path, orderBy: query.orderBy)
    }

    /// A live query's answer on the latest tree: from the hub's index, O(log n + k).
    func answer(_ query: Query, at path: Path) -> [ChildEntry] {
        let node = latestRoot.at(path)
        if let index = queryIndexes[IndexSpec(location: path, orderBy: query.orderBy)] {
            return query.lookup(node, in: index)
        }
        return query.scan(node)
    }

    /// The first event of a stream (and of a resync): the whole value, or the query's answer.
    func initialFrame(for subscription: Subscription) -> ByteBuffer {
        let node = latestRoot.at(subscription.path)
        guard let query = subscription.query else {
            return ByteBuffer(bytes: StreamEvent.put(.root, node.withoutPriority).frame(id: latestSequence))
        }
        return ByteBuffer(bytes: StreamEvent.put(.root, show(query, to: subscription)).frame(id: latestSequence))
    }

    /// A realtime listen's first push (and its resync): `d` of the location's value (with
    /// priorities), or of the query's answer (with the tag; the location's own priority is not
    /// part of a filtered view).
    func initialPush(for subscription: Subscription) -> ByteBuffer {
        guard case .realtime(_, let tag, _) = subscription.delivery else { preconditionFailure("not a realtime listen") }
        let node = latestRoot.at(subscription.path)
        guard let query = subscription.query else {
            return ByteBuffer(bytes: WireEncoding.dataPush(path: subscription.path, value: node, tag: tag))
        }
        return ByteBuffer(bytes: WireEncoding.dataPush(path: subscription.path, value: show(query, to: subscription), tag: tag))
    }

    /// A live query's answer now, as the object a client is first sent; the subscription
    /// remembers it as what the client holds.
    func show(_ query: Query, to subscription: Subscription) -> Node {
        let entries = answer(query, at: subscription.path)
        subscription.shown.withLock { shown in
            shown = Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        }
        return .object(unsortedEntries: entries)
    }

    /// How a live query's answer changed since the client was last shown it: the children
    /// that entered or changed (values with their priorities) and those that left (null), in
    /// key order. The subscription remembers the new answer.
    func changesShown(_ query: Query, to subscription: Subscription) -> [(key: ChildKey, value: Node)] {
        let entries = answer(query, at: subscription.path)
        let answer = Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        let changes = subscription.shown.withLock { shown -> [(key: ChildKey, value: Node)] in
            var changes: [(key: ChildKey, value: Node)] = []
            for (key, value) in answer where shown[key].map({ $0 != value }) ?? true { changes.append((key, value)) }
            for key in shown.keys where answer[key] == nil { changes.append((key, .null)) }
            shown = answer
            return changes
        }
        return changes.sorted { $0.key < $1.key }
    }

    /// After its outbox overflowed: one fresh `put`, then live events again.
    func resync(_ subscription: Subscription) {
        guard let outbox = subscription.outbox else { return }
        metrics.streamResyncs.increment()
        outbox.resynchronised(with: initialFrame(for: subscription))
    }

    /// After a realtime connection's outbox overflowed: the current data of each of its
    /// listens here, ahead of anything queued since.
    func resync(_ session: RealtimeSession, listens: [Subscription]) {
        metrics.streamResyncs.increment()
        session.outbox.resynchronised(with: listens.map { initialPush(for: $0) })
    }

    /// Resumes every caller of ``waitUntilPublished(_:)`` whose sequence has been processed.
    var publishWaiters: [(sequence: UInt64, continuation: CheckedContinuation<Void, Never>)] = []

    /// Returns once the change numbered `sequence` (and every one before it) has been fanned
    /// out: a realtime connection sends a write's `ok` only after the pushes it caused.
    func waitUntilPublished(_ sequence: UInt64) async {
        guard sequence > latestSequence else { return }
        await withCheckedContinuation { publishWaiters.append((sequence, $0)) }
    }

    func resumePublishWaiters() {
        guard !publishWaiters.isEmpty else { return }
        var waiting: [(sequence: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
        for waiter in publishWaiters {
            if waiter.sequence <= latestSequence { waiter.continuation.resume() } else { waiting.append(waiter) }
        }
        publishWaiters = waiting
    }

    func unsubscribe(_ subscription: Subscription) {
        var path: [ListenerNode] = [root]
        var node = root
        for key in subscription.path.keys {
            guard let child = node.children[key] else { return }
            node = child
            path.append(child)
        }
        guard node.subscriptions.removeValue(forKey: subscription.id) != nil else { return }
        count -= 1
        if let spec = indexSpec(of: subscription) {
            indexUsers[spec, default: 1] -= 1
            if indexUsers[spec] == 0 {
                indexUsers[spec] = nil
                queryIndexes.keep(Set(indexUsers.keys), root: latestRoot)
            }
        }
        // Prune empty nodes, deepest first.
        for depth in stride(from: subscription.path.depth, to: 0, by: -1) where path[depth].isEmpty {
            path[depth - 1].children[subscription.path.keys[depth - 1]] = nil
        }
    }

    // MARK: Fan-out

    /// Processes published changes in order: for each listened location they touch, the
    /// event is computed and encoded once and queued for every listener there.
    func publish(_ changes: [PublishedChange]) {
        for published in changes where published.sequence > latestSequence {
            let old = latestRoot
            if !queryIndexes.isEmpty { queryIndexes.apply(published.change.mutations, old: old, new: published.root) }
            latestRoot = published.root
            fanOut(published, old: old)
            if history.isEmpty { oldestRoot = old }
            history.append(published)
            // Trim in chunks, so that keeping the history costs O(1) per change.
            if history.count > historyLimit + max(1, historyLimit / 4) {
                let excess = history.count - historyLimit
                oldestRoot = history[excess - 1].root
                history.removeFirst(excess)
            }
            latestSequence = published.sequence
        }
        resumePublishWaiters()
    }

    func fanOut(_ published: PublishedChange, old: Node) {
        guard count > 0 else { return }
        // Listened locations at or above a changed path, and every one below it.
        var locations: [(Path, ListenerNode)] = []
        var seen: Set<ObjectIdentifier> = []
        for mutation in published.change.mutations {
            var node = root
            var keys: [ChildKey] = []
            if !node.subscriptions.isEmpty, seen.insert(ObjectIdentifier(node)).inserted { locations.append((.root, node)) }
            var reached = true
            for key in mutation.path.keys {
                guard let child = node.children[key] else {
                    reached = false
                    break
                }
                node = child
                keys.append(key)
                if !node.subscriptions.isEmpty, seen.insert(ObjectIdentifier(node)).inserted {
                    locations.append((Path(keys: keys), node))
                }
            }
            if reached { collectBelow(node, keys, &locations, &seen) }
        }
        for (location, node) in locations {
            // Encoded once per location and protocol; every listener there shares the bytes.
            var plainFrame: ByteBuffer?
            var computed = false
            var wirePush: ByteBuffer?
            var wireComputed = false
            for subscription in node.subscriptions.values {
                if let query = subscription.query {
                    switch subscription.delivery {
                    case .events(let outbox):
                        if let frame = queryFrame(subscription, query: query, sequence: published.sequence) { outbox.push(frame) }
                    case .realtime(let session, let tag, _):
                        if let push = queryPush(subscription, query: query, tag: tag) { session.outbox.push(push) }
                    }
                    continue
                }
                switch subscription.delivery {
                case .events(let outbox):
                    if !computed {
                        computed = true
                        plainFrame = StreamEvent.event(at: location, for: published.change, old: old, new: published.root)
                            .map { ByteBuffer(bytes: $0.frame(id: published.sequence)) }
                    }
                    if let plainFrame {
                        outbox.push(plainFrame)
                        metrics.streamEvents.increment()
                    }
                case .realtime(let session, _, _):
                    // A listen without a query has no tag: the bytes are the same for all.
                    if !wireComputed {
                        wireComputed = true
                        wirePush = WirePush.event(at: location, for: published.change, old: old, new: published.root)
                            .map { ByteBuffer(bytes: $0.encoded()) }
                    }
                    if let wirePush {
                        session.outbox.push(wirePush)
                        metrics.streamEvents.increment()
                    }
                }
            }
        }
    }

    func collectBelow(_ node: ListenerNode, _ keys: [ChildKey], _ locations: inout [(Path, ListenerNode)], _ seen: inout Set<ObjectIdentifier>) {
        for (key, child) in node.children {
            let path = keys + [key]
            if !child.subscriptions.isEmpty, seen.insert(ObjectIdentifier(child)).inserted {
                locations.append((Path(keys: path), child))
            }
            collectBelow(child, path, &locations, &seen)
        }
    }

    /// A live query: the children that entered, changed or left its answer, as one `patch`
    /// (null for those that left); nil if the answer did not change.
    func queryFrame(_ subscription: Subscription, query: Query, sequence: UInt64) -> ByteBuffer? {
        let changes = changesShown(query, to: subscription)
        guard !changes.isEmpty else { return nil }
        let children = changes.map { (key: $0.key.string, value: $0.value.withoutPriority) }
        return ByteBuffer(bytes: StreamEvent.patch(.root, children).frame(id: sequence))
    }

    /// A filtered realtime listen: the children that entered, changed (priority included) or
    /// left its answer, as one tagged merge at its location (null for those that left); nil if
    /// the answer did not change. Children entering a limit window are part of it.
    func queryPush(_ subscription: Subscription, query: Query, tag: Int64?) -> ByteBuffer? {
        let changes = changesShown(query, to: subscription)
        guard !changes.isEmpty else { return nil }
        let children = changes.map { (key: $0.key.string, value: $0.value) }
        return ByteBuffer(bytes: WireEncoding.mergePush(path: subscription.path, children: children, tag: tag))
    }

    // MARK: Rules, keep-alives, shutdown

    /// After a rules change: every stream whose caller may no longer read its location gets
    /// `cancel` and ends.
    func rulesChanged(_ rules: RuleSet, now: Int64) {
        forEachSubscription { subscription in
            guard !subscription.bypassesRules else { return }
            let query = subscription.query?.ruleQuery ?? RuleQuery()
            guard !rules.canRead(subscription.path, auth: subscription.auth, root: latestRoot, now: now, query: query).allowed
            else { return }
            revoke(subscription)
        }
    }

    /// The subscription's caller may no longer read: an SSE stream gets `cancel` and ends; a
    /// realtime listen gets `c` and is removed (the connection stays).
    func revoke(_ subscription: Subscription) {
        switch subscription.delivery {
        case .events(let outbox):
            outbox.end(.cancelled, with: ByteBuffer(bytes: StreamEvent.frame(event: "cancel", data: "\"Permission denied\"")))
        case .realtime(let session, _, let queryText):
            unsubscribe(subscription)
            session.forget(subscription)
            // Sent as a reply would be: never dropped, even by an overflowing outbox (whose
            // resync no longer covers this listen).
            session.outbox.reply(ByteBuffer(bytes: WireEncoding.listenRevoked(path: subscription.path, queryText: queryText)))
        }
    }

    /// Queues a `keep-alive` on every stream.
    func keepAlive() {
        let frame = ByteBuffer(bytes: StreamEvent.frame(event: "keep-alive", data: "null"))
        forEachSubscription { $0.outbox?.push(frame) }
    }

    /// Ends every stream (graceful shutdown).
    func endAll() {
        forEachSubscription { subscription in
            switch subscription.delivery {
            case .events(let outbox): outbox.end(.shutdown)
            case .realtime(let session, _, _): session.outbox.end(.shutdown)
            }
        }
    }

    func forEachSubscription(_ body: (Subscription) -> Void) {
        func visit(_ node: ListenerNode) {
            for subscription in node.subscriptions.values { body(subscription) }
            for child in node.children.values { visit(child) }
        }
        visit(root)
    }
}

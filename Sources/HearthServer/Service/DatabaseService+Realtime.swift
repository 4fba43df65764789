import HearthCore

extension DatabaseService {
    /// A realtime listen that has started: its subscription, the namespace's hub, and whether
    /// the SDK should be warned that its query's ordering is not indexed.
    struct RealtimeListen {
        let subscription: Subscription
        let hub: NamespaceStreams
        let unindexed: Bool
    }

    /// Starts a realtime listen for `session` after the checks of a read (a query need not be
    /// indexed: as on Firebase, it is answered anyway and the SDK is warned). Its first push,
    /// the current data, is queued before this returns, so the caller's `ok` follows it.
    func listen(
        _ listen: WireListen, session: RealtimeSession, as caller: Caller, now: Int64
    ) async throws -> RealtimeListen {
        try checkNamespaceExists(session.namespace, caller: caller)
        let namespaceRules = rules.rules(for: session.namespace)
        try authorizeRead(
            namespaceRules, listen.path, listen.query, caller: caller,
            root: namespaces.existing(session.namespace)?.root ?? .null, now: now, requireIndex: false)
        let database = try namespaces.database(session.namespace)
        let hub = streams.hub(for: database)
        // A listen that filters nothing is the location's: its pushes carry no tag.
        let tag = listen.query == nil ? nil : listen.tag
        let subscription = Subscription(
            id: streams.makeID(), path: listen.path, auth: caller.auth, bypassesRules: caller.bypassesRules,
            query: listen.query, delivery: .realtime(session, tag: tag, queryText: listen.queryText))
        await hub.subscribe(subscription, lastEventID: nil)
        let unindexed = listen.query.map {
            $0.orderBy.needsIndex && !namespaceRules.declaresIndex(at: listen.path, orderBy: $0.orderBy)
        } ?? false
        return RealtimeListen(subscription: subscription, hub: hub, unindexed: unindexed)
    }

    /// Whether `caller` may still read what `subscription` listens to (after the caller's
    /// credential changed).
    func mayStillRead(_ subscription: Subscription, namespace: String, as caller: Caller, now: Int64) -> Bool {
        guard !caller.bypassesRules else { return true }
        let root = namespaces.existing(namespace)?.root ?? .null
        return rules.rules(for: namespace).canRead(
            subscription.path, auth: caller.auth, root: root, now: now, query: subscription.query?.ruleQuery ?? RuleQuery()
        ).allowed
    }
}

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
        let database = try openForListening(
            session.namespace, path: listen.path, query: listen.query, as: caller, now: now, requireIndex: false)
        // A listen that filters nothing is the location's: its pushes carry no tag.
        let tag = listen.query == nil ? nil : listen.tag
        let (subscription, hub) = await subscribe(
            database, path: listen.path, query: listen.query, as: caller,
            delivery: .realtime(session, tag: tag, queryText: listen.queryText))
        let unindexed = listen.query.map {
            $0.orderBy.needsIndex && !rules.rules(for: session.namespace).declaresIndex(at: listen.path, orderBy: $0.orderBy)
        } ?? false
        return RealtimeListen(subscription: subscription, hub: hub, unindexed: unindexed)
    }
}

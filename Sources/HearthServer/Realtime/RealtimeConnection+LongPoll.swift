import HearthCore
import NIOCore
import WSCore

/// A realtime connection that began by long polling, and the WebSocket it may move to (see
/// ``RealtimeUpgrade``).
extension RealtimeConnection {
    /// Serves a connection that began by long polling (the start request has already answered
    /// with the hello) until it ends: the client stops polling, the server ends it, or, after a
    /// move to a WebSocket, that WebSocket closes.
    func run(longPoll transport: LongPollTransport) async {
        let replier = begin()
        let moved = await withTaskGroup(of: Bool.self) { group -> Bool in
            group.addTask { await self.readLoop(longPoll: transport) }
            group.addTask { await self.writeLoop(longPoll: transport) }
            group.addTask {
                await transport.watch()
                return false
            }
            // The reader and the writer each return true when they have moved to the
            // WebSocket; anything else ends the connection.
            var moves = 0
            while let movedOn = await group.next(), movedOn {
                moves += 1
                if moves == 2 { break }
            }
            if moves < 2 {
                session.outbox.end(.client)
                state.withLock { $0.upgrade }?.abandon()
                transport.finish()
            }
            group.cancelAll()
            return moves == 2
        }
        if moved, let upgrade = state.withLock({ $0.upgrade }) {
            await upgrade.waitUntilWebSocketFinished()
        }
        // After a move the long-poll side is over too, whether or not the client took its close.
        transport.finish()
        await end(replier)
    }

    /// Handles the client's long-polled messages in order. True once it has read the client's
    /// `n` (it sends on its WebSocket from then on).
    func readLoop(longPoll transport: LongPollTransport) async -> Bool {
        for await bytes in transport.inbox {
            metrics.realtime.messagesIn.increment()
            do {
                try await handleInChildTask(bytes)
            } catch let error as DataError {
                protocolError(error)
                return false
            } catch {
                return false
            }
            transport.taken(bytes.count)
            switch state.withLock({ $0.upgrade?.phase }) {
            case .inputMoved, .moved: return true
            case .attached, .abandoned, nil: continue
            }
        }
        return false
    }

    /// Answers polls from the outbox. True once it has reached the move to the WebSocket: the
    /// last long-polled response carries the server's `n` and closes the long-poll session.
    func writeLoop(longPoll transport: LongPollTransport) async -> Bool {
        guard await writeLoop(LongPollTransportWriter(transport: transport)) == .handOver,
            let upgrade = state.withLock({ $0.upgrade }), upgrade.move()
        else { return false }
        metrics.realtime.messagesOut.increment()
        transport.close(after: [ByteBuffer(bytes: WireEncoding.control("n"))])
        return true
    }

    /// The client's `n` arrived by long poll: if a WebSocket is waiting to take over, what the
    /// server sends from here on goes there.
    func moveInput() {
        guard let upgrade = state.withLock({ $0.upgrade }), upgrade.moveInput() else { return }
        session.outbox.handOver()
    }

    // MARK: The WebSocket

    /// Serves the WebSocket a long-polling client opened to move to (`s=` names the session):
    /// the switch-ack, pongs until the move, then the connection itself. A connection that
    /// cannot move (it is not long polling, or is already moving) answers `r`, and the client
    /// gives up the attempt and goes on polling.
    func runUpgrade(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, host: String) async {
        let upgrade = RealtimeUpgrade()
        let attached = state.withLock { state -> Bool in
            guard longPoll != nil, session.outbox.endReason == nil else { return false }
            if let previous = state.upgrade, previous.phase != .abandoned { return false }
            state.upgrade = upgrade
            return true
        }
        guard attached else {
            try? await outbound.write(.text(String(decoding: WireEncoding.reset(host: host), as: UTF8.self)))
            return
        }
        defer { upgrade.webSocketFinished() }
        do {
            try await outbound.write(.text(String(decoding: WireEncoding.control("a"), as: UTF8.self)))
        } catch {
            upgrade.abandon()
            return
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.readLoop(upgrading: inbound, outbound: outbound, upgrade: upgrade) }
            group.addTask {
                guard await upgrade.waitUntilMoved() else { return }
                _ = await self.writeLoop(WebSocketTransportWriter(outbound: outbound))
            }
            await group.next()
            // Before the move the client goes on by long poll; after it, the connection ends.
            if !upgrade.abandon() { session.outbox.end(.client) }
            group.cancelAll()
        }
    }

    /// Reads the moving WebSocket: pings are answered on it at once; requests wait until the
    /// move (every long-polled request is read by then), and are then handled as on any
    /// connection.
    func readLoop(upgrading inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, upgrade: RealtimeUpgrade) async {
        var assembler = WireFrameAssembler(maxMessageBytes: limits.maxRealtimeMessageBytes)
        var moved = false
        do {
            for try await message in inbound.messages(maxSize: limits.maxRealtimeMessageBytes) {
                guard case .message(let bytes) = try assembler.receive(try RealtimeConnection.text(of: message)) else { continue }
                metrics.realtime.messagesIn.increment()
                if !moved { moved = upgrade.phase == .moved }
                if !moved {
                    let now = Database.systemMilliseconds()
                    switch try bytes.withUnsafeBytes({ try WireMessage.decode($0, now: now) }) {
                    case .control("p"):
                        metrics.realtime.messagesOut.increment()
                        try await outbound.write(.text(String(decoding: WireEncoding.control("o"), as: UTF8.self)))
                        continue
                    case .control:
                        continue
                    case .request:
                        moved = await upgrade.waitUntilMoved()
                        guard moved else { return }
                    }
                }
                try await handleInChildTask(bytes)
            }
        } catch let error as DataError {
            protocolError(error)
        } catch {
            // The socket closed or the task was cancelled.
        }
    }
}

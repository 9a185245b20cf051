import NIOCore
import Prometheus
import RoomRingCore
import Synchronization

/// Pub/sub mode (DESIGN.md §6), on a room's home loop. A room is subscribed to `room:<id>` while it has members on
/// this shard. Chats are published through Redis (which numbers them) and delivered when they come back on the
/// subscription, in seq order: a gap (a message missed while the subscriber reconnected, or one still in flight)
/// is filled from the room's stream before anything after it is delivered. Members see exactly what they see in
/// sticky mode: `hello`, the replay after `since`, then every chat once, in seq order, with the sender's `ack`
/// before its own copy.
extension LoopHub {
    // MARK: - Entry points (instead of the sticky ones)

    func pubSubJoin(_ info: MemberInfo, from loop: Int, since: UInt64?) {
        guard let hub, let bus = hub.bus else { return }
        guard hub.context.servesPubSub else {
            // Upgraded just before the ring listed this shard as draining: send it to an active shard.
            let moved = RoomDelivery.close(info.id, code: WebSocketMessageStateMachine.CloseCode.restart,
                                           reason: "moved")
            hub.onHub(loop, from: index) { $0.deliver(room: info.room, [moved]) }
            return
        }
        let room = pubSubRoom(info.room)
        guard let state = room.pubsub else { return }
        room.membersPerLoop[loop] += 1
        room.emptySince = nil
        switch state.phase {
        case .serving:
            admit(room, state, info, loop: loop, since: since)
        case .idle:
            subscribe(room, state, bus: bus)
            state.parkedJoins.append((info, loop, since))
        case .subscribing, .syncing:
            state.parkedJoins.append((info, loop, since))
        }
    }

    func pubSubChat(_ info: MemberInfo, _ chats: [InboundChat]) {
        guard let hub, let bus = hub.bus, let room = rooms[info.room], let state = room.pubsub else { return }
        switch state.phase {
        case .serving:
            break
        case .subscribing, .syncing:
            state.parkedChats.append((info, chats))
            return
        case .idle:
            refuse(room, info.id, code: "resync", "the room is starting over; reconnect and resend")
            return
        }
        let loop = index
        let bound = NIOLoopBound(self, eventLoop: hub.loops[index])
        let generation = state.generation
        let id = room.id
        for chat in chats {
            let token = chat.id.map { chatID in
                let next = PubSubRoomState.nextNumber()
                state.awaitingAck[next] = (info.id, chatID)
                return next
            }
            bus.publish(room: id, loop: loop, message: chat.message, from: info.name, ts: chat.ts,
                        dedup: chat.id.map { info.client + "\n" + $0 }, token: token)
                .whenComplete { result in
                    bound.value.published(result, room: id, generation: generation, member: info.id, token: token)
                }
        }
    }

    func pubSubLeave(_ id: RoomID, from loop: Int) {
        guard let room = rooms[id], let state = room.pubsub else { return }
        room.membersPerLoop[loop] = max(0, room.membersPerLoop[loop] - 1)
        guard room.memberTotal == 0 else { return }
        room.emptySince = .now()
        // No local members: stop listening. The room's history stays in Redis.
        if state.phase != .idle {
            state.reset()
            hub?.bus?.unsubscribe(id)
        }
        if let hub, !hub.context.servesPubSub { drop(room) }
    }

    /// After a ring change: a shard the ring now lists as draining sends its members elsewhere (1012 "moved"; they
    /// reconnect through the proxy to an active shard and resume from Redis) and forgets each room once it is
    /// empty, so `roomring ring drain --wait` sees it hold no rooms. Nothing else moves in pub/sub mode.
    func pubSubRebalance() {
        guard let hub, !hub.context.servesPubSub else { return }
        for room in Array(rooms.values) {
            guard room.memberTotal > 0 else {
                drop(room)
                continue
            }
            if let state = room.pubsub {
                for join in state.parkedJoins {
                    room.pending.append(.close(join.info.id, code: WebSocketMessageStateMachine.CloseCode.restart,
                                               reason: "moved"))
                }
                state.parkedJoins = []
                state.parkedChats = []
            }
            room.pending.append(.closeAll(code: WebSocketMessageStateMachine.CloseCode.restart, reason: "moved"))
            markDirty(room)
        }
    }

    private func drop(_ room: Room) {
        guard rooms[room.id] === room else { return }
        room.pubsub?.reset()
        rooms[room.id] = nil
        hub?.context.metrics.rooms.decrement()
    }

    /// Messages and subscription confirmations from the subscriber, in the order Redis sent them.
    func pubSubReceive(_ items: [PubSubBus.Inbound]) {
        for item in items {
            switch item {
            case .subscribed(let id):
                subscribed(id)
            case .message(let id, let published):
                guard let room = rooms[id], let state = room.pubsub else { continue }
                switch state.phase {
                case .idle: continue
                case .subscribing, .syncing: state.ahead[published.seq] = published
                case .serving: accept(room, state, published)
                }
            }
        }
    }

    /// Keeps the Redis keys of rooms with members here from expiring.
    func pubSubRefresh() {
        guard let bus = hub?.bus else { return }
        let live = rooms.values.filter { $0.memberTotal > 0 && $0.pubsub?.phase == .serving }.map(\.id)
        bus.refresh(live, loop: index)
    }

    // MARK: - Subscribing

    private func pubSubRoom(_ id: RoomID) -> Room {
        if let room = rooms[id] {
            if room.pubsub == nil, let hub { room.pubsub = PubSubRoomState(limits: hub.context.configuration.roomLog) }
            return room
        }
        guard let hub else { preconditionFailure("LoopHub used before attach") }
        let room = Room(id: id, limits: hub.context.configuration.roomLog, loopCount: hub.loops.count)
        room.pubsub = PubSubRoomState(limits: hub.context.configuration.roomLog)
        rooms[id] = room
        hub.context.metrics.rooms.increment()
        return room
    }

    private func subscribe(_ room: Room, _ state: PubSubRoomState, bus: PubSubBus) {
        state.reset()
        state.phase = .subscribing
        bus.subscribe(room.id)
        let id = room.id
        let generation = state.generation
        after(bus.joinTimeout) { $0.joinTimedOut(id, generation: generation) }
    }

    /// Joins still waiting after the timeout are refused with 1013 (Redis is not answering); the subscription
    /// stays requested for the next ones.
    private func joinTimedOut(_ id: RoomID, generation: UInt64) {
        guard let room = rooms[id], let state = room.pubsub, state.generation == generation,
            state.phase != .serving
        else { return }
        for join in state.parkedJoins {
            room.pending.append(.close(join.info.id, code: WebSocketMessageStateMachine.CloseCode.tryAgainLater,
                                       reason: "broker unavailable"))
        }
        state.parkedJoins = []
        state.parkedChats = []
        markDirty(room)
    }

    private func subscribed(_ id: RoomID) {
        guard let room = rooms[id], let state = room.pubsub else { return }
        switch state.phase {
        case .idle, .syncing:
            return
        case .serving:
            // Resubscribed after the subscriber reconnected: messages may have been missed meanwhile.
            catchUp(room, state)
        case .subscribing:
            state.phase = .syncing
            fetchBaseline(room, state)
        }
    }

    /// Reads the room's seq now that the subscription is active: messages after it arrive on the channel.
    private func fetchBaseline(_ room: Room, _ state: PubSubRoomState) {
        guard let hub, let bus = hub.bus else { return }
        let id = room.id
        let generation = state.generation
        let bound = NIOLoopBound(self, eventLoop: hub.loops[index])
        bus.currentSeq(of: id, loop: index).whenComplete { result in
            let hub = bound.value
            guard let room = hub.rooms[id], let state = room.pubsub, state.generation == generation,
                state.phase == .syncing
            else { return }
            switch result {
            case .success(let seq):
                hub.startServing(room, state, baseline: seq)
            case .failure:
                hub.after(.milliseconds(200)) { hub in
                    guard let room = hub.rooms[id], let state = room.pubsub, state.generation == generation,
                        state.phase == .syncing
                    else { return }
                    hub.fetchBaseline(room, state)
                }
            }
        }
    }

    private func startServing(_ room: Room, _ state: PubSubRoomState, baseline: UInt64) {
        state.lastSeq = baseline
        state.recent.removeAll()
        state.phase = .serving
        let joins = state.parkedJoins
        let chats = state.parkedChats
        state.parkedJoins = []
        state.parkedChats = []
        for join in joins { admit(room, state, join.info, loop: join.loop, since: join.since) }
        drainAhead(room, state)
        for parked in chats { pubSubChat(parked.info, parked.chats) }
    }

    // MARK: - Joining

    private func admit(_ room: Room, _ state: PubSubRoomState, _ info: MemberInfo, loop: Int, since: UInt64?) {
        guard let since, since < state.lastSeq else {
            sendHello(room, state, info, resumed: since != nil && since == state.lastSeq)
            return
        }
        if let frames = state.recent.frames(after: since, through: state.lastSeq) {
            sendHello(room, state, info, resumed: true, frames: frames)
            return
        }
        // Older than what this shard has seen since it subscribed: read the room's stream in Redis. Live
        // messages meanwhile go to `recent`, which fills in between the stream's reply and now.
        guard let hub, let bus = hub.bus else { return }
        let id = room.id
        let generation = state.generation
        let bound = NIOLoopBound(self, eventLoop: hub.loops[index])
        bus.readStream(of: id, after: since, loop: index).whenComplete { result in
            let hub = bound.value
            guard let room = hub.rooms[id], let state = room.pubsub else { return }
            guard state.generation == generation, state.phase == .serving else {
                room.pending.append(.close(info.id, code: WebSocketMessageStateMachine.CloseCode.restart,
                                           reason: "resync"))
                hub.markDirty(room)
                return
            }
            switch result {
            case .failure:
                room.pending.append(.close(info.id, code: WebSocketMessageStateMachine.CloseCode.tryAgainLater,
                                           reason: "broker unavailable"))
                hub.markDirty(room)
            case .success(let read):
                var frames = read.entries.filter { $0.seq > since && $0.seq <= state.lastSeq }.map { ($0.seq, $0.frame) }
                let newest = frames.last?.0 ?? since
                if newest < state.lastSeq, let rest = state.recent.frames(after: newest, through: state.lastSeq) {
                    frames += rest.map { ($0.seq, $0.frame) }
                }
                let complete = frames.first?.0 == since + 1 && UInt64(frames.count) == state.lastSeq - since
                hub.sendHello(room, state, info, resumed: complete, frames: frames.map { (seq: $0.0, frame: $0.1) })
            }
        }
    }

    private func sendHello(_ room: Room, _ state: PubSubRoomState, _ info: MemberInfo, resumed: Bool,
                           frames: [(seq: UInt64, frame: ByteBuffer)] = []) {
        guard let hub else { return }
        let hello = ServerMessage.hello(.init(shard: hub.context.configuration.id, room: info.room.rawValue,
                                              seq: state.lastSeq, epoch: hub.context.ring.epoch, resumed: resumed))
        room.pending.append(.admit(info.id))
        room.pending.append(.direct(info.id, ByteBuffer(string: hello.encoded())))
        for frame in frames { room.pending.append(.direct(info.id, frame.frame)) }
        markDirty(room)
    }

    // MARK: - Publishing

    private func published(_ result: Result<PubSubBus.PublishResult, any Error>, room id: RoomID, generation: UInt64,
                           member: MemberID, token: UInt64?) {
        guard let hub, let bus = hub.bus, let room = rooms[id], let state = room.pubsub,
            state.generation == generation
        else { return }
        switch result {
        case .success(.accepted(let seq)):
            hub.context.metrics.messagesIn.increment()
            // Unless the broadcast already came back (and acknowledged it): acknowledge before the copy, and not
            // before the messages ahead of it.
            guard let token, state.awaitingAck[token] != nil else { break }
            if seq <= state.lastSeq + 1 {
                if let waiting = state.awaitingAck.removeValue(forKey: token) {
                    ack(room, waiting.member, id: waiting.id, seq: seq)
                }
            } else {
                state.acksDue[seq] = token
            }
        case .success(.duplicate(let seq)):
            hub.context.metrics.duplicates.increment()
            if let waiting = token.flatMap({ state.awaitingAck.removeValue(forKey: $0) }) {
                ack(room, waiting.member, id: waiting.id, seq: seq)
            }
        case .failure(let error):
            if let token { state.awaitingAck[token] = nil }
            bus.metrics.publishFailures.increment()
            // Not acknowledged: the client keeps it in its outbox and resends.
            refuse(room, member, code: "broker_unavailable",
                   "Redis did not accept the message (\(error)); it was not delivered, resend it")
        }
    }

    func ack(_ room: Room, _ member: MemberID, id: String, seq: UInt64) {
        room.pending.append(.direct(member, ByteBuffer(string: ServerMessage.ack(.init(id: id, seq: seq)).encoded())))
        markDirty(room)
    }

    private func refuse(_ room: Room, _ member: MemberID, code: String, _ message: String) {
        let error = ServerMessage.error(.init(code: code, message: message))
        room.pending.append(.direct(member, ByteBuffer(string: error.encoded())))
        markDirty(room)
    }

    func after(_ delay: TimeAmount, _ body: @escaping (LoopHub) -> Void) {
        guard let hub else { return }
        let bound = NIOLoopBound((self, body), eventLoop: hub.loops[index])
        hub.loops[index].scheduleTask(in: delay) { bound.value.1(bound.value.0) }
    }
}

extension PubSubRoomState {
    private static let counter = Atomic<UInt64>(0)

    /// A number unique in this process (publish tokens, generations).
    static func nextNumber() -> UInt64 { counter.add(1, ordering: .relaxed).newValue }
}

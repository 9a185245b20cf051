import NIOCore
import Prometheus
import RoomRingCore

/// Pub/sub mode, delivering in seq order: a published chat comes back on the subscription and is delivered only when
/// every lower seq has been; a gap (missed while the subscriber reconnected, or still in flight) is filled from the
/// room's stream first, and a room whose history Redis lost is closed with 1012 so its members resume anew.
extension LoopHub {
    func accept(_ room: Room, _ state: PubSubRoomState, _ published: PubSubBus.Published) {
        if published.seq <= state.lastSeq { return }  // already delivered (a catch-up overlapped the live stream)
        if published.seq == state.lastSeq + 1 {
            deliver(room, state, published)
            if !state.ahead.isEmpty { drainAhead(room, state) }
            return
        }
        state.ahead[published.seq] = published
        catchUp(room, state)
    }

    private func deliver(_ room: Room, _ state: PubSubRoomState, _ published: PubSubBus.Published) {
        if let token = published.token, let waiting = state.awaitingAck.removeValue(forKey: token) {
            ack(room, waiting.member, id: waiting.id, seq: published.seq)
        }
        state.acksDue[published.seq] = nil
        room.pending.append(.broadcast(published.frame))
        state.recent.append(seq: published.seq, frame: published.frame)
        state.lastSeq = published.seq
        // A sender whose reply came early gets its ack now that everything before its message is out.
        if let token = state.acksDue.removeValue(forKey: published.seq + 1),
            let waiting = state.awaitingAck.removeValue(forKey: token)
        {
            ack(room, waiting.member, id: waiting.id, seq: published.seq + 1)
        }
        markDirty(room)
    }

    /// Delivers held messages that now follow on; asks for a catch-up if a gap remains.
    func drainAhead(_ room: Room, _ state: PubSubRoomState) {
        for seq in state.ahead.keys where seq <= state.lastSeq { state.ahead[seq] = nil }
        while let next = state.ahead.removeValue(forKey: state.lastSeq + 1) { deliver(room, state, next) }
        if !state.ahead.isEmpty { catchUp(room, state) }
    }

    /// Reads the stream after the last delivered seq and delivers what was missed.
    func catchUp(_ room: Room, _ state: PubSubRoomState) {
        guard let hub, let bus = hub.bus, state.phase == .serving else { return }
        guard !state.catchingUp else {
            state.catchUpAgain = true
            return
        }
        state.catchingUp = true
        state.catchUpAgain = false
        bus.metrics.catchUps.increment()
        let id = room.id
        let generation = state.generation
        let bound = NIOLoopBound(self, eventLoop: hub.loops[index])
        bus.readStream(of: id, after: state.lastSeq, loop: index).whenComplete { result in
            let hub = bound.value
            guard let room = hub.rooms[id], let state = room.pubsub, state.generation == generation,
                state.phase == .serving
            else { return }
            state.catchingUp = false
            switch result {
            case .failure:
                // Redis is unreachable; try again shortly (a resubscribe after it returns also triggers this).
                hub.after(.milliseconds(250)) { hub in
                    guard let room = hub.rooms[id], let state = room.pubsub, state.generation == generation else { return }
                    hub.catchUp(room, state)
                }
            case .success(let read):
                hub.caughtUp(room, state, counter: read.counter, entries: read.entries)
            }
        }
    }

    private func caughtUp(_ room: Room, _ state: PubSubRoomState, counter: UInt64, entries: [PubSubBus.Published]) {
        if counter < state.lastSeq {
            // Redis no longer has this room's history (restarted without persistence, or the keys expired).
            resync(room, state)
            return
        }
        for entry in entries where entry.seq > state.lastSeq {
            guard entry.seq == state.lastSeq + 1 else { break }
            deliver(room, state, entry)
        }
        for seq in state.ahead.keys where seq <= state.lastSeq { state.ahead[seq] = nil }
        while let next = state.ahead.removeValue(forKey: state.lastSeq + 1) { deliver(room, state, next) }
        if state.lastSeq < counter || (state.ahead.keys.min().map { $0 <= counter } ?? false) {
            // Messages up to the counter are gone from the stream (trimmed): members would miss them silently.
            resync(room, state)
            return
        }
        if !state.ahead.isEmpty || state.catchUpAgain { catchUp(room, state) }
    }

    /// The room cannot be delivered gap-free any more: close its local members with 1012 so they reconnect and
    /// learn what was lost (`hello.resumed = false`), and start the room over.
    private func resync(_ room: Room, _ state: PubSubRoomState) {
        guard let bus = hub?.bus else { return }
        bus.metrics.resyncs.increment()
        state.reset()
        bus.unsubscribe(room.id)
        room.pending.append(.closeAll(code: WebSocketMessageStateMachine.CloseCode.restart, reason: "resync"))
        markDirty(room)
    }
}

import Foundation
import NIOCore
import Prometheus
import RoomRingCore

/// A publish on its way to the room's home loop.
struct RoomPublish: Sendable {
    var room: RoomID
    var message: String
    var from: String
    /// Dedup key when the publisher sent an `id`.
    var dedup: RoomLog.DedupKey?
    var ts: Int64
}

/// What the room made of a publish.
enum PublishOutcome: Sendable, Equatable {
    /// Accepted and broadcast with this seq.
    case accepted(UInt64)
    /// A resend of an `(client, id)` already accepted with this seq; not broadcast again.
    case duplicate(UInt64)
    /// The shard does not own the room (the ring changed while the request was on its way).
    case notOwner
    /// The room is being handed to another shard: nothing is accepted here any more.
    case moving
    /// This shard just gained the room and its state is still on its way from the previous owner (polls only;
    /// publishes wait for it).
    case arriving
    /// Pub/sub mode: Redis did not accept it (unreachable); nothing was published.
    case unavailable
}

/// What the room answered to a poll.
enum HistoryOutcome: Sendable, Equatable {
    case page(seq: UInt64, resumed: Bool, entries: [RoomLog.Entry])
    case arriving
    /// Pub/sub mode: Redis could not be read.
    case unavailable
}

extension RoomHub {
    /// Publishes on the room's home loop, exactly as a member's chat is accepted (log, dedup, broadcast).
    func publish(_ publish: RoomPublish) -> EventLoopFuture<PublishOutcome> {
        let index = homeIndex(of: publish.room)
        let bound = hubs[index]
        let promise = loops[index].makePromise(of: PublishOutcome.self)
        loops[index].execute { bound.value.roomPublish(publish, promise: promise) }
        return promise.futureResult
    }

    /// The room's kept messages after `since`, read on its home loop.
    func history(of room: RoomID, since: UInt64) -> EventLoopFuture<HistoryOutcome> {
        if bus != nil { return pubSubHistory(of: room, since: since) }
        let index = homeIndex(of: room)
        let bound = hubs[index]
        return loops[index].submit { bound.value.roomHistory(room, since: since) }
    }
}

extension LoopHub {
    /// Answers `promise` now, or once the room serves when its state is still on its way from the previous owner
    /// (as joins wait; bounded by the handoff wait).
    func roomPublish(_ publish: RoomPublish, promise: EventLoopPromise<PublishOutcome>) {
        guard let hub, !hub.context.isDraining else { return promise.succeed(.moving) }
        if hub.bus != nil { return pubSubPublish(publish, promise: promise) }
        let room: Room
        if let existing = rooms[publish.room] {
            room = existing
        } else {
            // Only the owner creates a room; one it just gained first waits for the previous owner's state, so seq
            // continues from there instead of restarting at 1 next to it.
            guard hub.context.owns(publish.room) else { return promise.succeed(.notOwner) }
            room = Room(id: publish.room, limits: hub.context.configuration.roomLog, loopCount: hub.loops.count)
            rooms[publish.room] = room
            hub.context.metrics.rooms.increment()
            if let wait = hub.context.handoffWait(for: publish.room) { awaitHandoff(room, for: wait) }
        }
        switch room.phase {
        case .serving: promise.succeed(accept(publish, in: room, hub: hub))
        case .awaitingHandoff: room.parkedPublishes.append((publish, promise))
        case .handingOff, .moved: promise.succeed(.moving)
        }
    }

    private func accept(_ publish: RoomPublish, in room: Room, hub: RoomHub) -> PublishOutcome {
        // A room nobody is in keeps what was published for the empty-room retention, counted from now.
        if room.memberTotal == 0 { room.emptySince = .now() }
        switch room.log.append(message: publish.message, from: publish.from, ts: publish.ts, dedup: publish.dedup) {
        case .accepted(let entry):
            room.pending.append(.broadcast(ByteBuffer(string: ServerMessage.chat(entry.chat).encoded())))
            hub.context.metrics.messagesIn.increment()
            markDirty(room)
            return .accepted(entry.seq)
        case .duplicate(let seq):
            hub.context.metrics.duplicates.increment()
            return .duplicate(seq)
        }
    }

    /// The room serves again (its state arrived, or the wait ended): answer the publishes held meanwhile.
    func answerParkedPublishes(_ room: Room) {
        let parked = room.parkedPublishes
        room.parkedPublishes = []
        for (publish, promise) in parked { roomPublish(publish, promise: promise) }
    }

    /// Shutdown: nothing held is accepted (the publisher retries elsewhere), and no promise is left unanswered.
    func refuseParkedPublishes() {
        for room in rooms.values {
            let parked = room.parkedPublishes
            room.parkedPublishes = []
            for (_, promise) in parked { promise.succeed(.moving) }
        }
    }

    func roomHistory(_ id: RoomID, since: UInt64) -> HistoryOutcome {
        guard let hub else { return .arriving }
        guard let room = rooms[id] else {
            // Rooms are created by joins and publishes; an unknown room has no messages, unless its state is
            // still on its way here.
            if hub.context.handoffWait(for: id) != nil { return .arriving }
            let resume = RoomLog().since(since)
            return .page(seq: 0, resumed: resume.complete, entries: [])
        }
        if room.phase == .awaitingHandoff { return .arriving }
        let resume = room.log.since(since)
        return .page(seq: room.log.lastSeq, resumed: resume.complete, entries: resume.entries)
    }
}

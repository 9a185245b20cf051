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
    /// This shard just gained the room and its state is still on its way from the previous owner.
    case arriving
}

/// What the room answered to a poll.
enum HistoryOutcome: Sendable, Equatable {
    case page(seq: UInt64, resumed: Bool, entries: [RoomLog.Entry])
    case arriving
}

extension RoomHub {
    /// Publishes on the room's home loop, exactly as a member's chat is accepted (log, dedup, broadcast).
    func publish(_ publish: RoomPublish) -> EventLoopFuture<PublishOutcome> {
        let index = homeIndex(of: publish.room)
        let bound = hubs[index]
        return loops[index].submit { bound.value.roomPublish(publish) }
    }

    /// The room's kept messages after `since`, read on its home loop.
    func history(of room: RoomID, since: UInt64) -> EventLoopFuture<HistoryOutcome> {
        let index = homeIndex(of: room)
        let bound = hubs[index]
        return loops[index].submit { bound.value.roomHistory(room, since: since) }
    }
}

extension LoopHub {
    func roomPublish(_ publish: RoomPublish) -> PublishOutcome {
        guard let hub else { return .moving }
        let room: Room
        if let existing = rooms[publish.room] {
            room = existing
        } else {
            // A new room is only created by its owner, and not while its previous owner's state may still come:
            // seq must continue from that state, never restart at 1 next to it.
            guard hub.context.owns(publish.room) else { return .notOwner }
            guard hub.context.handoffWait(for: publish.room) == nil else { return .arriving }
            room = Room(id: publish.room, limits: hub.context.configuration.roomLog, loopCount: hub.loops.count)
            rooms[publish.room] = room
            hub.context.metrics.rooms.increment()
        }
        switch room.phase {
        case .serving: break
        case .awaitingHandoff: return .arriving
        case .handingOff, .moved: return .moving
        }
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

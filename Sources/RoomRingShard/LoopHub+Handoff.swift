import Foundation
import Logging
import NIOCore
import Prometheus
import RoomRingClient
import RoomRingCore
import RoomRingHTTP

/// Moving rooms between shards (DESIGN.md §3). The old owner freezes the room, sends its state to the new owner's
/// admin port, and only after the new owner accepted it closes the members with 1012 "moved"; the new owner holds
/// joins for a room it just gained until that state arrives (or a bounded wait passes).
extension LoopHub {
    /// Holds joins and chats for `room` until its state arrives or `wait` passes.
    func awaitHandoff(_ room: Room, for wait: TimeAmount) {
        guard let hub else { return }
        room.phase = .awaitingHandoff
        let bound = NIOLoopBound(self, eventLoop: hub.loops[index])
        let id = room.id
        hub.loops[index].scheduleTask(in: wait) { bound.value.stopAwaiting(id, restored: nil) }
    }

    /// Installs a handed-off room's state; false when this shard already has newer state for it.
    func receiveHandoff(_ handoff: RoomHandoff) -> Bool {
        guard let hub else { return false }
        let limits = hub.context.configuration.roomLog
        hub.context.logger.notice("room state received", metadata: [
            "room": "\(handoff.room)", "from": "\(handoff.from)", "seq": "\(handoff.lastSeq)"])
        if let room = rooms[handoff.room] {
            switch room.phase {
            case .awaitingHandoff:
                stopAwaiting(handoff.room, restored: handoff.restoredLog(limits: limits))
                return true
            case .serving where room.log.lastSeq == 0:
                room.log = handoff.restoredLog(limits: limits)
                return true
            default:
                return room.log.lastSeq >= handoff.lastSeq && room.phase == .serving ? true : false
            }
        }
        let room = Room(id: handoff.room, limits: limits, loopCount: hub.loops.count)
        room.log = handoff.restoredLog(limits: limits)
        room.emptySince = .now()
        rooms[handoff.room] = room
        hub.context.metrics.rooms.increment()
        return true
    }

    private func stopAwaiting(_ id: RoomID, restored: RoomLog?) {
        guard let room = rooms[id], room.phase == .awaitingHandoff else { return }
        if let restored {
            room.log = restored
        } else {
            hub?.context.logger.warning("no room state arrived in time; serving the room without its history",
                                        metadata: ["room": "\(id)", "waiting_joins": "\(room.parkedJoins.count)"])
        }
        room.phase = .serving
        let joins = room.parkedJoins
        let chats = room.parkedChats
        room.parkedJoins = []
        room.parkedChats = []
        for join in joins {
            room.membersPerLoop[join.loop] -= 1  // roomJoin counts it again
            roomJoin(join.info, from: join.loop, since: join.since)
        }
        for parked in chats { roomChat(parked.info, parked.chats) }
        answerParkedPublishes(room)
    }

    /// Starts handing off every room this shard no longer owns (after a ring change).
    func rebalance() {
        guard let hub else { return }
        if hub.bus != nil { return pubSubRebalance() }
        for room in rooms.values where room.phase == .serving && !hub.context.owns(room.id) {
            handOff(room)
        }
    }

    private func handOff(_ room: Room) {
        guard let hub, let target = hub.context.ring.owner(of: room.id), let admin = HostPort(target.admin) else {
            return
        }
        room.phase = .handingOff
        let context = hub.context
        let handoff = RoomHandoff(room: room.id, from: context.configuration.id, epoch: context.ring.epoch, log: room.log)
        let body = Array(JSONCoding.encode(handoff).utf8)
        let bound = NIOLoopBound(self, eventLoop: hub.loops[index])
        let loop = hub.loops[index]
        let id = room.id
        let headers = context.configuration.adminToken.map { [("Authorization", "Bearer \($0)")] } ?? []
        Task {
            let response = try? await HTTPClient.request("POST", host: admin.host, port: admin.port, path: "/handoff",
                                                         headers: headers + [("Content-Type", "application/json")],
                                                         body: body, timeout: .seconds(5))
            let accepted = response?.status == 200
            loop.execute { bound.value.handOffFinished(id, accepted: accepted, to: target.id) }
        }
    }

    private func handOffFinished(_ id: RoomID, accepted: Bool, to target: String) {
        guard let hub, let room = rooms[id], room.phase == .handingOff else { return }
        guard accepted else {
            // Keep serving and try again: a room is never closed before its new owner has its state.
            room.phase = .serving
            hub.context.metrics.handoffFailures.increment()
            hub.context.logger.warning("handoff refused or failed; retrying in 1 s",
                                       metadata: ["room": "\(id)", "to": "\(target)"])
            let bound = NIOLoopBound(self, eventLoop: hub.loops[index])
            hub.loops[index].scheduleTask(in: .seconds(1)) { bound.value.rebalance() }
            return
        }
        room.phase = .moved
        hub.context.metrics.handoffs.increment()
        hub.context.logger.notice("room handed off", metadata: ["room": "\(id)", "to": "\(target)",
                                                                "seq": "\(room.log.lastSeq)"])
        room.pending.append(.closeAll(code: WebSocketMessageStateMachine.CloseCode.restart, reason: "moved"))
        markDirty(room)
    }
}

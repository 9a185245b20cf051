import Foundation
import NIOCore
import Prometheus
import RoomRingCore

/// Per-event-loop state: the rooms homed on this loop, and the local members of any room.
/// Only ever touched on its own loop (it is held in a `NIOLoopBound`).
final class LoopHub {
    let index: Int
    private(set) var hub: RoomHub?
    var rooms: [RoomID: Room] = [:]
    private var dirtyRooms: [Room] = []
    private var members: [MemberID: any RoomMember] = [:]
    private var admitted: [RoomID: [MemberID: any RoomMember]] = [:]
    private var nextMember: UInt64 = 1
    private var sweepTask: RepeatedTask?

    init(index: Int) { self.index = index }

    func attach(hub: RoomHub) {
        self.hub = hub
        let retention = hub.context.configuration.emptyRoomRetention
        let interval = TimeAmount.milliseconds(Int64(max(0.05, min(retention / 4, 30)) * 1000))
        let loop = hub.loops[index]
        let bound = NIOLoopBound(self, eventLoop: loop)
        sweepTask = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            bound.value.sweepEmptyRooms()
        }
    }

    // MARK: - Member side (the member's own loop)

    /// Registers a connection on this loop and asks the room's home loop for `hello` (and replay after `since`).
    func join(_ member: any RoomMember, room: RoomID, name: String, client: String?, since: UInt64?) -> MemberInfo {
        let id = MemberID(raw: nextMember << 8 | UInt64(index))
        nextMember += 1
        members[id] = member
        let info = MemberInfo(id: id, room: room, name: name, client: client ?? "conn-\(id.raw)")
        guard let hub else { return info }
        let from = index
        hub.onHub(hub.homeIndex(of: room), from: index) { $0.roomJoin(info, from: from, since: since) }
        return info
    }

    /// Sends a read burst's chats to the room's home loop in one hop.
    func chat(_ info: MemberInfo, _ chats: [InboundChat]) {
        guard let hub else { return }
        hub.onHub(hub.homeIndex(of: info.room), from: index) { $0.roomChat(info, chats) }
    }

    /// Unregisters a connection; the room hears of it in one hop.
    func leave(_ info: MemberInfo) {
        guard members.removeValue(forKey: info.id) != nil else { return }
        admitted[info.room]?[info.id] = nil
        if admitted[info.room]?.isEmpty == true { admitted[info.room] = nil }
        guard let hub else { return }
        let from = index
        hub.onHub(hub.homeIndex(of: info.room), from: index) { $0.roomLeave(info.room, from: from) }
    }

    /// The participants of `room` connected through this loop (admitted: they have had their `hello`).
    func presence(of room: RoomID) -> [MemberPresence] {
        admitted[room]?.values.compactMap(\.presence) ?? []
    }

    /// Applies a room's batch to the local members.
    func deliver(room: RoomID, _ items: [RoomDelivery]) {
        var delivered = 0
        for item in items {
            switch item {
            case .admit(let id):
                if let member = members[id] { admitted[room, default: [:]][id] = member }
            case .broadcast(let frame):
                if let local = admitted[room] {
                    let wire = Self.textFrame(frame)
                    for member in local.values { member.deliver(frame, wire: wire) }
                    delivered += local.count
                }
            case .direct(let id, let frame):
                if let member = members[id] {
                    member.deliver(frame, wire: nil)
                    delivered += 1
                }
            case .closeAll(let code, let reason):
                for member in admitted[room]?.values ?? [:].values { member.close(code: code, reason: reason, force: false) }
            case .close(let id, let code, let reason):
                members[id]?.close(code: code, reason: reason, force: false)
            }
        }
        if let local = admitted[room] { for member in local.values { member.flushDeliveries() } }
        hub?.context.metrics.messagesOut.increment(by: Int64(delivered))
    }

    /// `payload` framed once as a server text frame: every member then writes the same buffer (no copy, no
    /// per-member header).
    static func textFrame(_ payload: ByteBuffer) -> ByteBuffer {
        let header = WebSocketFrameHeader.server(opcode: 0x1, length: payload.readableBytes)
        var wire = ByteBufferAllocator().buffer(capacity: header.count + payload.readableBytes)
        wire.writeBytes(header)
        wire.writeImmutableBuffer(payload)
        return wire
    }

    // MARK: - Room side (the room's home loop)

    private func room(_ id: RoomID) -> Room {
        if let room = rooms[id] { return room }
        guard let hub else { preconditionFailure("LoopHub used before attach") }
        let room = Room(id: id, limits: hub.context.configuration.roomLog, loopCount: hub.loops.count)
        rooms[id] = room
        hub.context.metrics.rooms.increment()
        return room
    }

    func roomJoin(_ info: MemberInfo, from loop: Int, since: UInt64?) {
        guard let hub else { return }
        if hub.bus != nil { return pubSubJoin(info, from: loop, since: since) }
        let isNew = rooms[info.room] == nil
        if isNew, !hub.context.owns(info.room) {
            // Upgraded under the previous ring, and the room has since moved (and been dropped here): a fresh room
            // would be a second copy with no history next to the new owner's.
            let moved = RoomDelivery.close(info.id, code: WebSocketMessageStateMachine.CloseCode.restart,
                                           reason: "moved")
            hub.onHub(loop, from: index) { $0.deliver(room: info.room, [moved]) }
            return
        }
        let room = room(info.room)
        room.membersPerLoop[loop] += 1
        room.emptySince = nil
        if isNew, let wait = hub.context.handoffWait(for: info.room) { awaitHandoff(room, for: wait) }
        switch room.phase {
        case .serving: break
        case .awaitingHandoff:
            room.parkedJoins.append((info, loop, since))
            return
        case .handingOff, .moved:
            // Raced in while the room leaves: send it where the room is going.
            room.membersPerLoop[loop] -= 1
            room.pending.append(.close(info.id, code: WebSocketMessageStateMachine.CloseCode.restart, reason: "moved"))
            markDirty(room)
            return
        }
        let resume = since.map { room.log.since($0) }
        let hello = ServerMessage.hello(.init(shard: hub.context.configuration.id, room: info.room.rawValue,
                                              seq: room.log.lastSeq, epoch: hub.context.ring.epoch,
                                              resumed: resume?.complete ?? false))
        room.pending.append(.admit(info.id))
        room.pending.append(.direct(info.id, ByteBuffer(string: hello.encoded())))
        for entry in resume?.entries ?? [] {
            room.pending.append(.direct(info.id, ByteBuffer(string: ServerMessage.chat(entry.chat).encoded())))
        }
        markDirty(room)
    }

    func roomChat(_ info: MemberInfo, _ chats: [InboundChat]) {
        if hub?.bus != nil { return pubSubChat(info, chats) }
        guard let room = rooms[info.room], let hub else { return }
        switch room.phase {
        case .serving: break
        case .awaitingHandoff:
            room.parkedChats.append((info, chats))
            return
        case .handingOff, .moved:
            // Not acknowledged, so the client's outbox resends it to the new owner.
            let refusal = ServerMessage.error(.init(code: "moving", message: "room is moving to another shard; resend after reconnecting"))
            room.pending.append(.direct(info.id, ByteBuffer(string: refusal.encoded())))
            markDirty(room)
            return
        }
        for chat in chats {
            let key = chat.id.map { RoomLog.DedupKey(client: info.client, id: $0) }
            switch room.log.append(message: chat.message, from: info.name, ts: chat.ts, dedup: key) {
            case .accepted(let entry):
                if let id = chat.id {
                    room.pending.append(.direct(info.id, ByteBuffer(string: ServerMessage.ack(.init(id: id, seq: entry.seq)).encoded())))
                }
                room.pending.append(.broadcast(ByteBuffer(string: ServerMessage.chat(entry.chat).encoded())))
                hub.context.metrics.messagesIn.increment()
            case .duplicate(let seq):
                room.pending.append(.direct(info.id, ByteBuffer(string: ServerMessage.ack(.init(id: chat.id ?? "", seq: seq)).encoded())))
                hub.context.metrics.duplicates.increment()
            }
        }
        markDirty(room)
    }

    func roomLeave(_ id: RoomID, from loop: Int) {
        if hub?.bus != nil { return pubSubLeave(id, from: loop) }
        guard let room = rooms[id] else { return }
        room.membersPerLoop[loop] = max(0, room.membersPerLoop[loop] - 1)
        if room.memberTotal == 0 { room.emptySince = .now() }
    }

    func markDirty(_ room: Room) {
        guard !room.isDirty else { return }
        room.isDirty = true
        if dirtyRooms.isEmpty, let hub {
            // One flush per tick for every room that produced output during it.
            let bound = NIOLoopBound(self, eventLoop: hub.loops[index])
            hub.loops[index].execute { bound.value.flushDirtyRooms() }
        }
        dirtyRooms.append(room)
    }

    private func flushDirtyRooms() {
        guard let hub else { return }
        let rooms = dirtyRooms
        dirtyRooms.removeAll(keepingCapacity: true)
        for room in rooms {
            room.isDirty = false
            let roomID = room.id
            for (loop, items) in room.takePendingByLoop() {
                hub.onHub(loop, from: index) { $0.deliver(room: roomID, items) }
            }
            if room.phase == .moved, self.rooms[roomID] === room {
                self.rooms[roomID] = nil
                hub.context.metrics.rooms.decrement()
            }
        }
    }

    private func sweepEmptyRooms() {
        guard let hub else { return }
        let cutoff = NIODeadline.now() - .milliseconds(Int64(hub.context.configuration.emptyRoomRetention * 1000))
        for (id, room) in rooms where room.emptySince.map({ $0 < cutoff }) == true {
            rooms[id] = nil
            hub.context.metrics.rooms.decrement()
        }
    }

    /// The state of every room this loop serves that has messages, for `--state-dir`.
    func savedRooms() -> [RoomHandoff] {
        guard let context = hub?.context else { return [] }
        return rooms.values.filter { $0.phase == .serving && $0.pubsub == nil && $0.log.lastSeq > 0 }.map {
            RoomHandoff(room: $0.id, from: context.configuration.id, epoch: context.ring.epoch, log: $0.log)
        }
    }

    func closeAll(code: UInt16, reason: String) {
        for member in members.values { member.close(code: code, reason: reason, force: false) }
        refuseParkedPublishes()
    }

    func snapshot() -> [RoomSnapshot] {
        rooms.values.map {
            RoomSnapshot(room: $0.id.rawValue, members: $0.memberTotal, seq: $0.pubsub?.lastSeq ?? $0.log.lastSeq)
        }
    }
}

@available(*, unavailable)
extension LoopHub: Sendable {}

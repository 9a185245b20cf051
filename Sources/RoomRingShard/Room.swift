import NIOCore
import RoomRingCore

/// What a room sends to the event loop of some of its members, in order.
enum RoomDelivery: Sendable {
    /// From now on, deliver this room's broadcasts to the member (sent after its `hello` is computed, so the
    /// member sees exactly the messages after `hello.seq`).
    case admit(MemberID)
    /// A frame for every admitted member of the room on that loop.
    case broadcast(ByteBuffer)
    /// A frame for one member.
    case direct(MemberID, ByteBuffer)
}

/// Identifies a member connection across event loops: the low byte is its loop's index.
struct MemberID: Hashable, Sendable {
    let raw: UInt64
    var loopIndex: Int { Int(raw & 0xFF) }
}

/// A room's authoritative state. It lives on the room's home event loop and is only touched there.
final class Room {
    let id: RoomID
    var log: RoomLog
    /// Members per event loop index; a loop with 0 gets no deliveries.
    var membersPerLoop: [Int]
    var memberTotal: Int { membersPerLoop.reduce(0, +) }
    /// Deliveries produced during this event-loop tick, sent in one hop per loop by ``LoopHub``.
    var pending: [RoomDelivery] = []
    /// Whether the room is queued for this tick's flush.
    var isDirty = false
    /// When the last member left; history is kept for a while after.
    var emptySince: NIODeadline?

    init(id: RoomID, limits: RoomLog.Limits, loopCount: Int) {
        self.id = id
        self.log = RoomLog(limits: limits)
        self.membersPerLoop = Array(repeating: 0, count: loopCount)
    }

    /// Splits the pending deliveries by destination loop: broadcasts go to every loop with members, a direct frame
    /// only to its member's loop.
    func takePendingByLoop() -> [(loop: Int, items: [RoomDelivery])] {
        let items = pending
        pending.removeAll(keepingCapacity: true)
        var byLoop: [[RoomDelivery]] = Array(repeating: [], count: membersPerLoop.count)
        for item in items {
            switch item {
            case .broadcast:
                for (loop, count) in membersPerLoop.enumerated() where count > 0 { byLoop[loop].append(item) }
            case .admit(let member), .direct(let member, _):
                byLoop[member.loopIndex].append(item)
            }
        }
        return byLoop.enumerated().compactMap { $0.element.isEmpty ? nil : ($0.offset, $0.element) }
    }
}

@available(*, unavailable)
extension Room: Sendable {}

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
    /// Close every local member of the room with this code (the room moved to another shard).
    case closeAll(code: UInt16, reason: String)
    /// Close one member with this code.
    case close(MemberID, code: UInt16, reason: String)
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
    /// Where the room stands in a move between shards.
    var phase = Phase.serving
    /// Joins and chats held while the room's state is on its way from the previous owner.
    var parkedJoins: [(info: MemberInfo, loop: Int, since: UInt64?)] = []
    var parkedChats: [(info: MemberInfo, chats: [InboundChat])] = []
    /// Pub/sub mode's state (nil in sticky mode, where ``log`` is authoritative).
    var pubsub: PubSubRoomState?
    /// Publishes (HTTP) held likewise; each is answered once the room serves.
    var parkedPublishes: [(publish: RoomPublish, promise: EventLoopPromise<PublishOutcome>)] = []

    enum Phase {
        /// Normal operation.
        case serving
        /// This shard just gained the room: wait (bounded) for the old owner's state before serving it.
        case awaitingHandoff
        /// The state is being sent to the new owner; chats are refused (not acknowledged) so clients resend there.
        case handingOff
        /// Handed off; the room is closed and dropped after this tick's deliveries.
        case moved
    }

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
            case .broadcast, .closeAll:
                for (loop, count) in membersPerLoop.enumerated() where count > 0 { byLoop[loop].append(item) }
            case .admit(let member), .direct(let member, _), .close(let member, _, _):
                byLoop[member.loopIndex].append(item)
            }
        }
        return byLoop.enumerated().compactMap { $0.element.isEmpty ? nil : ($0.offset, $0.element) }
    }
}

@available(*, unavailable)
extension Room: Sendable {}

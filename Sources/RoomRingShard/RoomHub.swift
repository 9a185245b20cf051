import NIOCore
import RoomRingCore

/// Routes room traffic between event loops.
///
/// Each room has a home event loop (chosen by hashing its id) where its ``Room`` lives; members may sit on any loop.
/// A member's chat hops to the home loop; the room's output hops back once per loop per tick with the whole batch
/// (never once per member), and every member is flushed once per batch.
public final class RoomHub: Sendable {
    let loops: [any EventLoop]
    let hubs: [NIOLoopBoundBox<LoopHub>]
    private let indexByLoop: [ObjectIdentifier: Int]
    let context: ShardContext
    /// Pub/sub mode's link to Redis; nil in sticky mode.
    let bus: PubSubBus?

    init(group: any EventLoopGroup, context: ShardContext, bus: PubSubBus? = nil) {
        let loops = Array(group.makeIterator())
        self.loops = loops
        self.context = context
        self.bus = bus
        var index: [ObjectIdentifier: Int] = [:]
        for (i, loop) in loops.enumerated() { index[ObjectIdentifier(loop)] = i }
        self.indexByLoop = index
        self.hubs = loops.enumerated().map { i, loop in NIOLoopBoundBox.makeBoxSendingValue(LoopHub(index: i), eventLoop: loop) }
        for (i, loop) in loops.enumerated() {
            let bound = hubs[i]
            loop.execute { bound.value.attach(hub: self) }
        }
    }

    /// The hub of the loop the caller runs on.
    func local(_ loop: any EventLoop) -> LoopHub {
        guard let index = indexByLoop[ObjectIdentifier(loop)] else {
            preconditionFailure("RoomHub used from an event loop outside its group")
        }
        return hubs[index].value
    }

    func homeIndex(of room: RoomID) -> Int {
        // A different seed from the ring's, so the loop split is independent of which rooms this shard owns.
        Int(XXHash64.hash(room.rawValue, seed: 0x524F_4F4D) % UInt64(loops.count))
    }

    /// Runs `body` on the hub of loop `index`, inline when the caller is already there.
    func onHub(_ index: Int, from current: Int?, _ body: @escaping @Sendable (LoopHub) -> Void) {
        if current == index {
            body(hubs[index].value)
        } else {
            let bound = hubs[index]
            loops[index].execute { body(bound.value) }
        }
    }

    /// Hands off every room this shard no longer owns, on every loop.
    func rebalance() {
        for (i, loop) in loops.enumerated() {
            let bound = hubs[i]
            loop.execute { bound.value.rebalance() }
        }
    }

    /// Installs a room's state sent by its previous owner, on the room's home loop.
    func receiveHandoff(_ handoff: RoomHandoff) -> EventLoopFuture<Bool> {
        let index = homeIndex(of: handoff.room)
        let bound = hubs[index]
        return loops[index].submit { bound.value.receiveHandoff(handoff) }
    }

    /// A snapshot of every room on every loop, for the admin API.
    func snapshot() -> EventLoopFuture<[RoomSnapshot]> {
        let futures = hubs.enumerated().map { i, bound in loops[i].submit { bound.value.snapshot() } }
        return EventLoopFuture.whenAllSucceed(futures, on: loops[0]).map { $0.flatMap { $0 }.sorted { $0.room < $1.room } }
    }
}

/// One line of `GET /rooms`.
public struct RoomSnapshot: Codable, Sendable, Hashable {
    public var room: String
    public var members: Int
    public var seq: UInt64
}

extension RoomHub {
    /// Closes every member on every loop with `code` (shutdown). With `saving`, each loop first takes the state of
    /// the rooms it serves, in the same turn, so no chat is acknowledged after its room was saved.
    @discardableResult
    func closeAll(code: UInt16, reason: String, saving: Bool = false) async -> [RoomHandoff] {
        let futures = loops.indices.map { i in
            let bound = hubs[i]
            return loops[i].submit {
                let saved = saving ? bound.value.savedRooms() : []
                bound.value.closeAll(code: code, reason: reason)
                return saved
            }
        }
        let saved = (try? await EventLoopFuture.whenAllComplete(futures, on: loops[0]).get()) ?? []
        return saved.flatMap { (try? $0.get()) ?? [] }
    }
}

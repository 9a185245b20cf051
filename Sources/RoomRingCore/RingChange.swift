/// A change an operator makes to the ring (`roomring ring add | drain | remove`).
public enum RingChange: Hashable, Sendable {
    /// Bring a running shard into the ring as active.
    case add(RingDocument.Shard)
    /// Keep the shard but give it no points: its rooms move elsewhere.
    case drain(id: String)
    /// Take the shard out of the ring entirely.
    case remove(id: String)
}

extension RingDocument {
    /// The ring after `change`, with the epoch one higher, validated.
    /// - Throws: ``RingDocumentError`` (unknown or duplicate shard, or a ring left without an active shard).
    public func applying(_ change: RingChange) throws(RingDocumentError) -> RingDocument {
        var next = self
        next.epoch = epoch + 1
        switch change {
        case .add(let shard):
            guard self.shard(id: shard.id) == nil else { throw .init(.duplicateShardID(shard.id)) }
            next.shards.append(shard)
        case .drain(let id):
            guard let index = shards.firstIndex(where: { $0.id == id }) else { throw .unknownShard(id) }
            next.shards[index].state = .draining
        case .remove(let id):
            guard shards.contains(where: { $0.id == id }) else { throw .unknownShard(id) }
            next.shards.removeAll { $0.id == id }
        }
        try next.validate()
        return next
    }
}

extension RingDocumentError {
    /// A change named a shard the ring does not list.
    public static func unknownShard(_ id: String) -> RingDocumentError { .init(.unknownShard(id)) }
}

/// One room that changes owner between two rings.
public struct RoomMove: Hashable, Sendable {
    public var room: RoomID
    public var from: String
    public var to: String
    public var members: Int

    public init(room: RoomID, from: String, to: String, members: Int) {
        self.room = room
        self.from = from
        self.to = to
        self.members = members
    }
}

extension HashRing {
    /// Which of `rooms` (as `(room, current holder, members)`) would be owned by another shard under `next`.
    public func moves(to next: HashRing, rooms: [(room: RoomID, holder: String, members: Int)]) -> [RoomMove] {
        rooms.compactMap { entry in
            guard let owner = next.owner(of: entry.room)?.id, owner != entry.holder else { return nil }
            return RoomMove(room: entry.room, from: entry.holder, to: owner, members: entry.members)
        }
    }
}

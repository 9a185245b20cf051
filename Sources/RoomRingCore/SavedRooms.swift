/// What a sticky shard writes on graceful shutdown and reads back at start (`--state-dir`): its rooms' state, so a
/// restart (an upgrade, a reboot) keeps history and dedup and members resume with `resumed: true`.
///
/// It is only restored under the same ring epoch it was saved with: if the ring changed meanwhile, the rooms may
/// have been served elsewhere, and stale state must not come back.
public struct SavedRooms: Codable, Hashable, Sendable {
    /// The shard that saved it.
    public var shard: String
    /// The ring epoch at shutdown.
    public var epoch: UInt64
    /// Milliseconds since 1970 when it was written.
    public var savedAt: Int64
    public var rooms: [RoomHandoff]

    public init(shard: String, epoch: UInt64, savedAt: Int64, rooms: [RoomHandoff]) {
        self.shard = shard
        self.epoch = epoch
        self.savedAt = savedAt
        self.rooms = rooms
    }

    /// Why saved state is not restored, or nil when it applies to shard `id` under ring `epoch`.
    public func mismatch(shard id: String, epoch current: UInt64) -> String? {
        if shard != id { return "it was saved by shard \(shard), not \(id)" }
        if epoch != current { return "it was saved under ring epoch \(epoch), the ring is now at \(current)" }
        return nil
    }

    /// The file name inside the state directory.
    public static func fileName(shard id: String) -> String { "roomring-\(id).rooms.json" }
}

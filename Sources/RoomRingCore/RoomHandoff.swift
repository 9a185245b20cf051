/// A room's state in flight from its old owner to its new one (DESIGN.md §3): everything a client needs to resume
/// there without loss or duplicates.
public struct RoomHandoff: Codable, Hashable, Sendable {
    /// One remembered `(client, id) → seq`.
    public struct Dedup: Codable, Hashable, Sendable {
        public var client: String
        public var id: String
        public var seq: UInt64

        public init(client: String, id: String, seq: UInt64) {
            self.client = client
            self.id = id
            self.seq = seq
        }
    }

    public var room: RoomID
    /// The shard that sends it.
    public var from: String
    /// The ring epoch that moved the room.
    public var epoch: UInt64
    /// The room's last seq; numbering continues after it.
    public var lastSeq: UInt64
    /// Recent history, oldest first.
    public var entries: [RoomLog.Entry]
    /// The dedup table, oldest first.
    public var dedup: [Dedup]

    public init(room: RoomID, from: String, epoch: UInt64, log: RoomLog) {
        self.room = room
        self.from = from
        self.epoch = epoch
        self.lastSeq = log.lastSeq
        self.entries = Array(log.entries)
        self.dedup = log.dedupEntries.map { Dedup(client: $0.key.client, id: $0.key.id, seq: $0.seq) }
    }

    /// A log with this state, bounded by `limits`.
    public func restoredLog(limits: RoomLog.Limits) -> RoomLog {
        var log = RoomLog(limits: limits, lastSeq: lastSeq)
        for entry in entries { log.restore(entry) }
        for record in dedup { log.remember(.init(client: record.client, id: record.id), seq: record.seq) }
        return log
    }
}

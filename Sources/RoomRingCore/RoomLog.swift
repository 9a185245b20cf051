/// A room's ordered message log: gap-free sequence numbers from 1, bounded history for resume, and the
/// `(client, id)` dedup table that makes resending after a reconnect safe.
///
/// A pure value: the caller supplies timestamps, and nothing here reads a clock.
public struct RoomLog: Sendable {
    /// Bounds on what a room keeps.
    public struct Limits: Hashable, Sendable {
        /// Most messages kept for resume (default 1,000).
        public var maxMessages: Int
        /// Most message bytes kept for resume (default 1 MiB).
        public var maxBytes: Int
        /// Most `(client, id)` pairs remembered for dedup (default 10,000).
        public var maxDedupEntries: Int

        /// - Parameters:
        ///   - maxMessages: history length cap, default 1,000.
        ///   - maxBytes: history size cap in bytes, default 1 MiB.
        ///   - maxDedupEntries: dedup table cap, default 10,000.
        public init(maxMessages: Int = 1000, maxBytes: Int = 1 << 20, maxDedupEntries: Int = 10_000) {
            self.maxMessages = maxMessages
            self.maxBytes = maxBytes
            self.maxDedupEntries = maxDedupEntries
        }
    }

    /// One accepted message.
    public struct Entry: Codable, Hashable, Sendable {
        public var seq: UInt64
        public var message: String
        public var from: String
        public var ts: Int64

        public init(seq: UInt64, message: String, from: String, ts: Int64) {
            self.seq = seq
            self.message = message
            self.from = from
            self.ts = ts
        }

        /// Bytes this entry counts against ``Limits/maxBytes``.
        public var size: Int { message.utf8.count + from.utf8.count + 32 }

        /// The broadcast form of this entry.
        public var chat: ServerMessage.Chat { .init(message: message, from: from, seq: seq, ts: ts) }
    }

    /// Identifies a client message for dedup.
    public struct DedupKey: Codable, Hashable, Sendable {
        public var client: String
        public var id: String

        public init(client: String, id: String) {
            self.client = client
            self.id = id
        }
    }

    /// The result of ``append(message:from:ts:dedup:)``.
    public enum Append: Hashable, Sendable {
        /// A new message with a new seq: broadcast it.
        case accepted(Entry)
        /// Seen before under this seq: ack again, broadcast nothing.
        case duplicate(seq: UInt64)
    }

    /// The result of ``since(_:)``.
    public struct Resume: Hashable, Sendable {
        /// Entries after the requested seq that are still kept, in order.
        public var entries: [Entry]
        /// Whether `entries` is everything after the requested seq (history reached back far enough).
        public var complete: Bool
    }

    /// The limits in force.
    public let limits: Limits
    /// Seq of the newest message, 0 before the first.
    public private(set) var lastSeq: UInt64
    private var history: [Entry] = []
    private var historyStart = 0  // index of the oldest kept entry in `history` (amortized front removal)
    private var historyBytes = 0
    private var dedup: [DedupKey: UInt64] = [:]
    private var dedupOrder: [DedupKey] = []
    private var dedupStart = 0

    /// An empty log.
    /// - Parameters:
    ///   - limits: bounds on history and dedup.
    ///   - lastSeq: continue numbering after this seq (a room restored from a handoff), default 0.
    public init(limits: Limits = Limits(), lastSeq: UInt64 = 0) {
        self.limits = limits
        self.lastSeq = lastSeq
    }

    /// Number of entries kept.
    public var count: Int { history.count - historyStart }
    /// Bytes of the entries kept.
    public var bytes: Int { historyBytes }
    /// Seq of the oldest kept entry, nil when none is kept.
    public var firstKeptSeq: UInt64? { count > 0 ? history[historyStart].seq : nil }
    /// The kept entries, oldest first.
    public var entries: ArraySlice<Entry> { history[historyStart...] }
    /// The dedup table in insertion order, for a handoff.
    public var dedupEntries: [(key: DedupKey, seq: UInt64)] {
        dedupOrder[dedupStart...].compactMap { key in dedup[key].map { (key, $0) } }
    }

    /// Accepts a message, or recognizes a resend.
    /// - Parameters:
    ///   - message: the text.
    ///   - from: the sender's display name.
    ///   - ts: acceptance time in milliseconds since 1970.
    ///   - dedup: `(client, id)` when the client sent an id.
    public mutating func append(message: String, from: String, ts: Int64, dedup key: DedupKey? = nil) -> Append {
        if let key, let seq = dedup[key] { return .duplicate(seq: seq) }
        lastSeq += 1
        let entry = Entry(seq: lastSeq, message: message, from: from, ts: ts)
        history.append(entry)
        historyBytes += entry.size
        while count > 0, count > limits.maxMessages || historyBytes > limits.maxBytes {
            historyBytes -= history[historyStart].size
            historyStart += 1
        }
        compactIfNeeded()
        if let key { remember(key, seq: lastSeq) }
        return .accepted(entry)
    }

    /// Restores a remembered `(client, id)` (from a handoff).
    public mutating func remember(_ key: DedupKey, seq: UInt64) {
        guard limits.maxDedupEntries > 0, dedup.updateValue(seq, forKey: key) == nil else { return }
        dedupOrder.append(key)
        while dedupOrder.count - dedupStart > limits.maxDedupEntries {
            dedup[dedupOrder[dedupStart]] = nil
            dedupStart += 1
        }
        if dedupStart > 1024, dedupStart * 2 > dedupOrder.count {
            dedupOrder.removeFirst(dedupStart)
            dedupStart = 0
        }
    }

    /// Restores a history entry (from a handoff); entries must arrive in seq order.
    public mutating func restore(_ entry: Entry) {
        guard entry.seq > (history.last?.seq ?? 0) else { return }
        history.append(entry)
        historyBytes += entry.size
        lastSeq = max(lastSeq, entry.seq)
        while count > 0, count > limits.maxMessages || historyBytes > limits.maxBytes {
            historyBytes -= history[historyStart].size
            historyStart += 1
        }
        compactIfNeeded()
    }

    /// Messages after `seq`, for a client resuming with `since=seq`.
    ///
    /// `complete` is false when the history no longer reaches back to `seq + 1`, or when `seq` is ahead of this
    /// log (the room lost its state, for example after its shard was killed): the client must be told.
    public func since(_ seq: UInt64) -> Resume {
        if seq == lastSeq { return Resume(entries: [], complete: true) }
        if seq > lastSeq { return Resume(entries: [], complete: false) }
        let kept = entries
        guard let first = kept.first else { return Resume(entries: [], complete: false) }
        if seq + 1 < first.seq { return Resume(entries: Array(kept), complete: false) }
        let offset = Int(seq + 1 - first.seq)
        return Resume(entries: Array(kept.dropFirst(offset)), complete: true)
    }

    private mutating func compactIfNeeded() {
        if historyStart > 1024, historyStart * 2 > history.count {
            history.removeFirst(historyStart)
            historyStart = 0
        }
    }
}

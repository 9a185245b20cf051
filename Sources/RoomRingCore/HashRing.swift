/// The consistent-hash ring built from a ``RingDocument`` (DESIGN.md §2).
///
/// Each active shard places `vnodes × weight` points at `xxHash64("<id>#<i>")`; a room belongs to the first point
/// clockwise from `xxHash64(roomId)`. Draining shards place no points. Lookups are a binary search over a sorted
/// array, so the ring is an immutable value that any number of threads can share.
public struct HashRing: Sendable {
    /// The document this ring was built from.
    public let document: RingDocument
    // Sorted by position; ties (astronomically rare) broken by shard id so every process agrees.
    private let positions: [UInt64]
    private let owners: [Int]

    /// - Parameters:
    ///   - document: a ring document (validate it first; an invalid one still builds, owning what it can).
    public init(_ document: RingDocument) {
        self.document = document
        var points: [(UInt64, String, Int)] = []
        for (index, shard) in document.shards.enumerated() where shard.state == .active {
            // Clamped so an unvalidated document (negative vnodes) builds an empty ring instead of trapping.
            let count = max(document.vnodes, 0) * max(shard.weight, 1)
            points.reserveCapacity(points.count + count)
            for i in 0..<count {
                points.append((XXHash64.hash("\(shard.id)#\(i)"), shard.id, index))
            }
        }
        points.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        self.positions = points.map(\.0)
        self.owners = points.map(\.2)
    }

    /// The ring's epoch.
    public var epoch: UInt64 { document.epoch }

    /// Number of points on the ring.
    public var pointCount: Int { positions.count }

    /// The shard owning `room`, or nil if no shard is active.
    public func owner(of room: RoomID) -> RingDocument.Shard? { owner(ofKey: room.rawValue) }

    /// The shard owning an arbitrary key.
    public func owner(ofKey key: String) -> RingDocument.Shard? {
        guard !positions.isEmpty else { return nil }
        let hash = XXHash64.hash(key)
        // First position >= hash, wrapping to the start.
        var low = 0
        var high = positions.count
        while low < high {
            let mid = (low + high) / 2
            if positions[mid] < hash { low = mid + 1 } else { high = mid }
        }
        return document.shards[owners[low == positions.count ? 0 : low]]
    }

    /// Whether `shardID` owns `room` under this ring.
    public func isOwner(_ shardID: String, of room: RoomID) -> Bool { owner(of: room)?.id == shardID }
}

extension HashRing {
    /// The fraction of the hash space each active shard owns (sums to 1), for status tables.
    public func shares() -> [String: Double] {
        guard !positions.isEmpty else { return [:] }
        var result: [String: Double] = [:]
        let space = Double(UInt64.max)
        for i in positions.indices {
            // Point i owns the arc from the previous point (exclusive) up to itself.
            let previous = i == 0 ? positions[positions.count - 1] : positions[i - 1]
            let arc = positions[i] &- previous
            result[document.shards[owners[i]].id, default: 0] += Double(arc) / space
        }
        if positions.count == 1 { result[document.shards[owners[0]].id] = 1 }
        return result
    }
}

/// A stretch of the hash space owned by one shard, as fractions of the whole (0 at hash 0, 1 at 2⁶⁴), for
/// drawing the ring.
public struct RingArc: Codable, Hashable, Sendable {
    public var shard: String
    public var start: Double
    public var end: Double

    public init(shard: String, start: Double, end: Double) {
        self.shard = shard
        self.start = start
        self.end = end
    }
}

extension HashRing {
    /// The ring as arcs in clockwise order from 0, neighbouring arcs of one shard merged. Each point owns the arc
    /// that ends at it, so the arc wrapping past 2⁶⁴ is split in two.
    public func arcs() -> [RingArc] {
        guard let last = positions.last else { return [] }
        let space = Double(UInt64.max)
        var out: [RingArc] = []
        func append(_ shard: String, _ start: Double, _ end: Double) {
            if let previous = out.last, previous.shard == shard, previous.end == start {
                out[out.count - 1].end = end
            } else if end > start {
                out.append(RingArc(shard: shard, start: start, end: end))
            }
        }
        let firstOwner = document.shards[owners[0]].id
        append(firstOwner, 0, Double(positions[0]) / space)
        for i in positions.indices.dropFirst() {
            append(document.shards[owners[i]].id, Double(positions[i - 1]) / space, Double(positions[i]) / space)
        }
        append(firstOwner, Double(last) / space, 1)
        return out
    }
}

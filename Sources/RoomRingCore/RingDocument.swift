#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The ring as every process stores, sends and compares it (DESIGN.md §2).
///
/// ```json
/// { "epoch": 7, "vnodes": 160,
///   "shards": [ { "id": "s1", "address": "127.0.0.1:9001", "admin": "127.0.0.1:9101", "weight": 1, "state": "active" } ] }
/// ```
public struct RingDocument: Codable, Hashable, Sendable {
    /// Whether a shard takes part in placement.
    public enum ShardState: String, Codable, Hashable, Sendable {
        /// Owns `vnodes × weight` points.
        case active
        /// Owns no points: its rooms map elsewhere while it hands them off.
        case draining
    }

    /// One shard process.
    public struct Shard: Codable, Hashable, Sendable {
        /// Unique id, also the hash key of its points (`"<id>#<i>"`).
        public var id: String
        /// `host:port` of its client-facing listener.
        public var address: String
        /// `host:port` of its admin listener.
        public var admin: String
        /// Relative share of points, at least 1.
        public var weight: Int
        /// Whether it owns points.
        public var state: ShardState

        /// - Parameters:
        ///   - id: unique shard id.
        ///   - address: `host:port` clients and proxies connect to.
        ///   - admin: `host:port` of the admin API.
        ///   - weight: relative share of the ring, default 1.
        ///   - state: `.active` (default) or `.draining`.
        public init(id: String, address: String, admin: String, weight: Int = 1, state: ShardState = .active) {
            self.id = id
            self.address = address
            self.admin = admin
            self.weight = weight
            self.state = state
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.id = try c.decode(String.self, forKey: .id)
            self.address = try c.decode(String.self, forKey: .address)
            self.admin = try c.decode(String.self, forKey: .admin)
            self.weight = try c.decodeIfPresent(Int.self, forKey: .weight) ?? 1
            self.state = try c.decodeIfPresent(ShardState.self, forKey: .state) ?? .active
        }
    }

    /// The default number of points per unit of weight.
    ///
    /// A shard's share of the ring varies by about 1/sqrt(vnodes): at 160 points the worst of 10 or 50 shards
    /// holds 22-23% more or fewer rooms than its fair share, at 1024 about 7%, within ±10% at 3 to 50 shards.
    /// 50 shards × 1024 points is 51,200 positions (800 KiB) and a 16-step binary search per lookup.
    public static let defaultVNodes = 1024

    /// Only grows; a process accepts a new ring only with a higher epoch.
    public var epoch: UInt64
    /// Points per unit of weight.
    public var vnodes: Int
    /// Every shard known to the ring, active or draining.
    public var shards: [Shard]

    /// - Parameters:
    ///   - epoch: version of this ring.
    ///   - vnodes: points per unit of weight (default ``defaultVNodes``).
    ///   - shards: the shards.
    public init(epoch: UInt64, vnodes: Int = RingDocument.defaultVNodes, shards: [Shard]) {
        self.epoch = epoch
        self.vnodes = vnodes
        self.shards = shards
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.epoch = try c.decode(UInt64.self, forKey: .epoch)
        self.vnodes = try c.decodeIfPresent(Int.self, forKey: .vnodes) ?? RingDocument.defaultVNodes
        self.shards = try c.decode([Shard].self, forKey: .shards)
    }

    /// The shard with this id, if listed.
    public func shard(id: String) -> Shard? { shards.first { $0.id == id } }

    /// Checks every rule a ring must satisfy before anyone routes with it.
    /// - Throws: ``RingDocumentError`` naming the first broken rule.
    public func validate() throws(RingDocumentError) {
        guard vnodes >= 1, vnodes <= 10_000 else { throw .init(.badVNodes(vnodes)) }
        guard !shards.isEmpty else { throw .init(.noShards) }
        var seen = Set<String>()
        for shard in shards {
            guard !shard.id.isEmpty, shard.id.utf8.count <= 64, RoomID.isValid(shard.id.utf8) else {
                throw .init(.badShardID(shard.id))
            }
            guard seen.insert(shard.id).inserted else { throw .init(.duplicateShardID(shard.id)) }
            guard HostPort(shard.address) != nil else { throw .init(.badAddress(shard: shard.id, shard.address)) }
            guard HostPort(shard.admin) != nil else { throw .init(.badAddress(shard: shard.id, shard.admin)) }
            guard shard.weight >= 1, shard.weight <= 100 else { throw .init(.badWeight(shard: shard.id, shard.weight)) }
        }
        guard shards.contains(where: { $0.state == .active }) else { throw .init(.noActiveShard) }
    }

    /// Decodes and validates a ring from JSON.
    /// - Throws: ``RingDocumentError``.
    public static func decode(_ data: some Collection<UInt8>) throws(RingDocumentError) -> RingDocument {
        let document: RingDocument
        do {
            document = try JSONDecoder().decode(RingDocument.self, from: Data(data))
        } catch {
            throw .init(.malformedJSON(String(describing: error)))
        }
        try document.validate()
        return document
    }

    /// Pretty, stable JSON (sorted keys) suitable for a file or an HTTP body.
    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Encoding plain strings and integers cannot fail.
        return (try? encoder.encode(self)) ?? Data()
    }

    /// Whether `candidate` may replace this ring (DESIGN.md §2: the epoch only grows).
    public func accepts(_ candidate: RingDocument) -> Bool { candidate.epoch > epoch }
}

/// Why a ring document was rejected.
public struct RingDocumentError: Error, Hashable, Sendable, CustomStringConvertible {
    enum Reason: Hashable, Sendable {
        case malformedJSON(String)
        case noShards
        case noActiveShard
        case duplicateShardID(String)
        case badShardID(String)
        case badAddress(shard: String, String)
        case badWeight(shard: String, Int)
        case badVNodes(Int)
        case staleEpoch(current: UInt64, offered: UInt64)
        case unknownShard(String)
    }

    let reason: Reason
    init(_ reason: Reason) { self.reason = reason }

    /// A ring whose epoch is not above the current one.
    public static func staleEpoch(current: UInt64, offered: UInt64) -> RingDocumentError {
        .init(.staleEpoch(current: current, offered: offered))
    }

    /// A short machine-readable code, stable across versions.
    public var code: String {
        switch reason {
        case .malformedJSON: "malformed_json"
        case .noShards: "no_shards"
        case .noActiveShard: "no_active_shard"
        case .duplicateShardID: "duplicate_shard_id"
        case .badShardID: "bad_shard_id"
        case .badAddress: "bad_address"
        case .badWeight: "bad_weight"
        case .badVNodes: "bad_vnodes"
        case .staleEpoch: "stale_epoch"
        case .unknownShard: "unknown_shard"
        }
    }

    public var description: String {
        switch reason {
        case .malformedJSON(let detail): "ring is not valid JSON for a ring document: \(detail)"
        case .noShards: "ring lists no shards"
        case .noActiveShard: "ring has no active shard: every room would be unowned"
        case .duplicateShardID(let id): "shard id \"\(id)\" appears more than once"
        case .badShardID(let id): "shard id \"\(id)\" must be 1-64 characters of A-Z a-z 0-9 . _ ~ -"
        case .badAddress(let shard, let address): "shard \(shard): \"\(address)\" is not host:port"
        case .badWeight(let shard, let weight): "shard \(shard): weight \(weight) is outside 1...100"
        case .badVNodes(let n): "vnodes \(n) is outside 1...10000"
        case .staleEpoch(let current, let offered):
            "ring epoch \(offered) is not newer than the current epoch \(current)"
        case .unknownShard(let id): "the ring has no shard \"\(id)\""
        }
    }
}

/// How a fleet spreads a room's members over shards (DESIGN.md §3, §6).
public enum ScalingMode: String, Hashable, Sendable, CaseIterable {
    /// A room lives on its ring owner; the proxy routes by room.
    case sticky
    /// Any shard serves any room; every chat goes through Redis (seq, history, fan-out between shards).
    case pubsub
}

/// Everything a shard process can be told (DESIGN.md §4 defaults). Pure values: the CLI fills it from flags.
public struct ShardConfiguration: Hashable, Sendable {
    /// This shard's id in the ring.
    public var id: String
    /// Client-facing listener (WebSocket and HTTP).
    public var listen: HostPort
    /// Admin listener; loopback by default.
    public var adminListen: HostPort
    /// Bearer token for the admin API; nil disables the admin API's writes and protected reads.
    public var adminToken: String?
    /// Largest WebSocket message accepted (default 64 KiB); larger ones close with 1009.
    public var maxMessageBytes: Int
    /// Sustained chat messages per second per connection (default 50); more closes with 1008.
    public var messagesPerSecond: Double
    /// Burst allowance for the rate limit (default 100).
    public var messageBurst: Double
    /// Bytes queued to one connection before it is closed as a slow consumer with 1013 (default 1 MiB).
    public var maxOutboundBytes: Int
    /// Seconds between keepalive pings (default 20).
    public var pingInterval: Double
    /// Seconds without any frame from a peer before it is considered dead and closed (default 60).
    public var deadPeerTimeout: Double
    /// Most simultaneous WebSocket connections (default 50,000); more get 503.
    public var maxConnections: Int
    /// History and dedup bounds per room.
    public var roomLog: RoomLog.Limits
    /// Seconds an empty room's history is kept for late resumes (default 600).
    public var emptyRoomRetention: Double
    /// Event loop threads (default: the number of cores).
    public var eventLoops: Int
    /// New WebSocket joins accepted per second, shard-wide (default 2,000; burst twice that); more get 503
    /// with `Retry-After`, so a drain's reconnects spread out instead of storming.
    public var joinsPerSecond: Double = 2000
    /// Seconds a shard that just gained a room holds its joins while the old owner's state arrives (default 5).
    public var handoffWait: Double = 5
    /// Scaling design (default sticky). In pub/sub mode the shard serves any room and takes seq, history and
    /// fan-out from Redis at ``redisURL``.
    public var mode: ScalingMode = .sticky
    /// The Redis server for pub/sub mode, `redis://[[user]:password@]host[:port][/db]`
    /// (default `redis://127.0.0.1:6379`).
    public var redisURL: String = "redis://127.0.0.1:6379"
    /// Bearer token for `POST /rooms/<id>/messages`; nil means the admin token (and neither disables publishing).
    public var publishToken: String?
    /// Seconds a request body may take to arrive on the client port (default 10); a slower one gets 408.
    public var bodyTimeout: Double = 10
    /// Seconds between keepalive comments on a Server-Sent Events stream (default 15, under common proxy timeouts).
    public var eventStreamHeartbeat: Double = 15
    /// Sticky mode: a directory where the rooms' state is saved on graceful shutdown and restored at the next start
    /// (``SavedRooms``); nil keeps nothing across restarts.
    public var stateDirectory: String?

    /// - Parameters:
    ///   - id: shard id.
    ///   - listen: client listener, default 127.0.0.1:9001.
    ///   - adminListen: admin listener, default 127.0.0.1:9101.
    ///   - adminToken: admin bearer token.
    ///   - maxMessageBytes: default 65,536.
    ///   - messagesPerSecond: default 50.
    ///   - messageBurst: default 100.
    ///   - maxOutboundBytes: default 1 MiB.
    ///   - pingInterval: default 20 s.
    ///   - deadPeerTimeout: default 60 s.
    ///   - maxConnections: default 50,000.
    ///   - roomLog: default 1,000 messages / 1 MiB per room.
    ///   - emptyRoomRetention: default 600 s.
    ///   - eventLoops: default 1 (set from the core count by the CLI).
    public init(
        id: String,
        listen: HostPort = HostPort(host: "127.0.0.1", port: 9001),
        adminListen: HostPort = HostPort(host: "127.0.0.1", port: 9101),
        adminToken: String? = nil,
        maxMessageBytes: Int = 64 * 1024,
        messagesPerSecond: Double = 50,
        messageBurst: Double = 100,
        maxOutboundBytes: Int = 1 << 20,
        pingInterval: Double = 20,
        deadPeerTimeout: Double = 60,
        maxConnections: Int = 50_000,
        roomLog: RoomLog.Limits = RoomLog.Limits(),
        emptyRoomRetention: Double = 600,
        eventLoops: Int = 1
    ) {
        self.id = id
        self.listen = listen
        self.adminListen = adminListen
        self.adminToken = adminToken
        self.maxMessageBytes = maxMessageBytes
        self.messagesPerSecond = messagesPerSecond
        self.messageBurst = messageBurst
        self.maxOutboundBytes = maxOutboundBytes
        self.pingInterval = pingInterval
        self.deadPeerTimeout = deadPeerTimeout
        self.maxConnections = maxConnections
        self.roomLog = roomLog
        self.emptyRoomRetention = emptyRoomRetention
        self.eventLoops = eventLoops
    }
}

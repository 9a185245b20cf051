/// How the front proxy picks a shard.
public enum BalanceMode: String, Hashable, Sendable, CaseIterable {
    /// Sticky: a room's connections go to its ring owner (never elsewhere).
    case ring
    /// Pub/sub mode: any healthy shard, in turn.
    case roundRobin = "round-robin"
    /// Pub/sub mode: the healthy shard with the fewest open tunnels (ties in turn), which evens out long-lived
    /// connections after a shard joins or restarts.
    case leastTunnels = "least-tunnels"
}

/// Everything the front proxy can be told. Pure values: the CLI fills it from flags.
public struct ProxyConfiguration: Hashable, Sendable {
    /// Client-facing listener.
    public var listen: HostPort
    /// Admin listener (loopback by default).
    public var adminListen: HostPort
    /// Bearer token for the admin API and for fetching rings from shards' admin ports.
    public var adminToken: String?
    /// Routing mode.
    public var balance: BalanceMode
    /// Request-head limits (default 8 KiB, 100 headers); larger heads get 431.
    public var headLimits: RequestHeadParser.Limits
    /// Seconds to receive a complete request head (default 5); slower clients get 408.
    public var headTimeout: Double
    /// Seconds to connect to a shard (default 2); failures answer 503 with Retry-After.
    public var connectTimeout: Double
    /// Seconds a tunnel may carry no bytes either way before it is closed (default 300).
    public var idleTunnelTimeout: Double
    /// Seconds between health checks of each shard (default 2).
    public var healthInterval: Double
    /// Failed checks in a row that mark a shard down (default 2).
    public var healthFall: Int
    /// Passed checks in a row that mark it up again (default 2).
    public var healthRise: Int
    /// Seconds SIGTERM waits for tunnels to finish before closing them (default 10).
    public var drainTimeout: Double
    /// Event loop threads (default 1).
    public var eventLoops: Int

    /// - Parameters:
    ///   - listen: default 127.0.0.1:8080.
    ///   - adminListen: default 127.0.0.1:8081.
    ///   - adminToken: bearer token.
    ///   - balance: default `.ring`.
    ///   - headLimits: default 8 KiB.
    ///   - headTimeout: default 5 s.
    ///   - connectTimeout: default 2 s.
    ///   - idleTunnelTimeout: default 300 s.
    ///   - healthInterval: default 2 s.
    ///   - healthFall: default 2.
    ///   - healthRise: default 2.
    ///   - drainTimeout: default 10 s.
    ///   - eventLoops: default 1.
    public init(
        listen: HostPort = HostPort(host: "127.0.0.1", port: 8080),
        adminListen: HostPort = HostPort(host: "127.0.0.1", port: 8081),
        adminToken: String? = nil,
        balance: BalanceMode = .ring,
        headLimits: RequestHeadParser.Limits = .init(),
        headTimeout: Double = 5,
        connectTimeout: Double = 2,
        idleTunnelTimeout: Double = 300,
        healthInterval: Double = 2,
        healthFall: Int = 2,
        healthRise: Int = 2,
        drainTimeout: Double = 10,
        eventLoops: Int = 1
    ) {
        self.listen = listen
        self.adminListen = adminListen
        self.adminToken = adminToken
        self.balance = balance
        self.headLimits = headLimits
        self.headTimeout = headTimeout
        self.connectTimeout = connectTimeout
        self.idleTunnelTimeout = idleTunnelTimeout
        self.healthInterval = healthInterval
        self.healthFall = healthFall
        self.healthRise = healthRise
        self.drainTimeout = drainTimeout
        self.eventLoops = eventLoops
    }
}

/// A shard's health as the proxy's checks see it: `fall` failures in a row mark it down, `rise` passes up.
public struct HealthState: Hashable, Sendable {
    /// Whether the shard counts as healthy now. Shards start healthy so a fresh proxy routes at once.
    public private(set) var healthy = true
    /// Consecutive results that disagree with `healthy`.
    public private(set) var streak = 0
    /// Checks done.
    public private(set) var checks = 0

    public init() {}

    /// Records one check; returns true when `healthy` flipped.
    public mutating func record(passed: Bool, fall: Int, rise: Int) -> Bool {
        checks += 1
        guard passed != healthy else {
            streak = 0
            return false
        }
        streak += 1
        if streak >= (healthy ? fall : rise) {
            healthy = passed
            streak = 0
            return true
        }
        return false
    }
}

import Logging
import NIOCore
import Prometheus
import RoomRingCore
import Synchronization

/// State shared by every proxied connection: the ring, shard health, tunnel counts, metrics.
public final class ProxyContext: Sendable {
    /// The configuration the proxy started with.
    public let configuration: ProxyConfiguration
    let metrics: ProxyMetrics
    private let ringBox: Mutex<Routing>
    /// Makes the `X-Request-ID` of requests that arrive without one.
    let requestIDs = RequestIDGenerator()
    let logger: Logger
    private let shards = Mutex<[String: ShardStatus]>([:])
    private let roundRobin = Atomic<Int>(0)
    private let drainingFlag = Atomic<Bool>(false)

    /// What the proxy knows of one shard.
    public struct ShardStatus: Codable, Sendable, Hashable {
        public var id: String
        public var address: String
        public var state: String
        public var healthy: Bool
        public var tunnels: Int
        var health = HealthState()

        enum CodingKeys: String, CodingKey { case id, address, state, healthy, tunnels }
    }

    /// The ring and each shard's address, resolved once per ring rather than once per connection (resolving a
    /// name costs a getaddrinfo call and a Happy Eyeballs race on every connect).
    private struct Routing: Sendable {
        var ring: HashRing
        var addresses: [String: SocketAddress]

        init(_ document: RingDocument) {
            ring = HashRing(document)
            addresses = [:]
            for shard in document.shards {
                // Only IP literals: a DNS name (Kubernetes) is resolved per connection, so it can move.
                if let hostPort = HostPort(shard.address),
                    let address = try? SocketAddress(ipAddress: hostPort.host, port: hostPort.port) {
                    addresses[shard.id] = address
                }
            }
        }
    }

    /// Where a request goes.
    struct Route {
        var shard: RingDocument.Shard
        /// Epoch of the ring it was routed with.
        var epoch: UInt64
        /// The shard's address when it is an IP literal; nil means connect by name.
        var address: SocketAddress?
    }

    init(configuration: ProxyConfiguration, ring: RingDocument, logger: Logger = Logger(label: "roomring.proxy")) {
        self.configuration = configuration
        self.logger = logger
        self.metrics = ProxyMetrics()
        self.ringBox = Mutex(Routing(ring))
        syncShards(with: ring)
    }

    /// The ring in force.
    public var ring: HashRing { ringBox.withLock { $0.ring } }

    /// Installs `document` if its epoch is newer; returns whether it did.
    /// - Throws: ``RingDocumentError`` when the document is invalid or not newer.
    public func install(_ document: RingDocument) throws(RingDocumentError) {
        try document.validate()
        let result: Result<Void, RingDocumentError> = ringBox.withLock { routing in
            guard routing.ring.document.accepts(document) else {
                return .failure(.staleEpoch(current: routing.ring.epoch, offered: document.epoch))
            }
            routing = Routing(document)
            return .success(())
        }
        try result.get()
        syncShards(with: document)
        metrics.ringEpoch.set(Int64(document.epoch))
    }

    private func syncShards(with document: RingDocument) {
        shards.withLock { shards in
            var next: [String: ShardStatus] = [:]
            for shard in document.shards {
                var status = shards[shard.id]
                    ?? ShardStatus(id: shard.id, address: shard.address, state: shard.state.rawValue, healthy: true,
                                   tunnels: 0)
                status.address = shard.address
                status.state = shard.state.rawValue
                next[shard.id] = status
            }
            shards = next
        }
    }

    /// Every shard's status, sorted by id.
    public func shardStatuses() -> [ShardStatus] { shards.withLock { Array($0.values) }.sorted { $0.id < $1.id } }

    func isHealthy(_ id: String) -> Bool { shards.withLock { $0[id]?.healthy ?? false } }

    /// Records a health check; returns the new health when it flipped.
    func recordHealth(_ id: String, passed: Bool) -> Bool? {
        shards.withLock { shards in
            guard var status = shards[id] else { return nil }
            let flipped = status.health.record(passed: passed, fall: configuration.healthFall,
                                               rise: configuration.healthRise)
            status.healthy = status.health.healthy
            shards[id] = status
            return flipped ? status.healthy : nil
        }
    }

    func tunnelOpened(_ id: String) {
        shards.withLock { $0[id]?.tunnels += 1 }
        metrics.tunnels.increment()
        metrics.tunnelsTotal.increment()
    }

    func tunnelClosed(_ id: String) {
        shards.withLock { shards in
            if let tunnels = shards[id]?.tunnels { shards[id]?.tunnels = max(0, tunnels - 1) }
        }
        metrics.tunnels.decrement()
    }

    /// The shard for a request: the ring owner of its room in ring mode, else the next healthy shard in turn
    /// (or, with least-tunnels, the healthy one with the fewest open tunnels, ties in turn).
    func route(room: RoomID?) -> Route? {
        if let room, configuration.balance == .ring {
            // The common case stays inside the lock: copying the routing out would retain and release its arrays.
            return ringBox.withLock { routing in
                routing.ring.owner(of: room).map {
                    Route(shard: $0, epoch: routing.ring.epoch, address: routing.addresses[$0.id])
                }
            }
        }
        let routing = ringBox.withLock { $0 }
        let candidates = routing.ring.document.shards.filter { $0.state == .active }
        guard !candidates.isEmpty else { return nil }
        let healthy = candidates.filter { isHealthy($0.id) }
        let pool = healthy.isEmpty ? candidates : healthy
        let turn = roundRobin.add(1, ordering: .relaxed).newValue
        var best = turn % pool.count
        if configuration.balance == .leastTunnels {
            let tunnels = shards.withLock { shards in pool.map { shards[$0.id]?.tunnels ?? 0 } }
            let start = best
            for step in 1..<pool.count {
                let i = (start + step) % pool.count
                if tunnels[i] < tunnels[best] { best = i }
            }
        }
        let shard = pool[best]
        return Route(shard: shard, epoch: routing.ring.epoch, address: routing.addresses[shard.id])
    }

    var isDraining: Bool { drainingFlag.load(ordering: .relaxed) }
    func setDraining() { drainingFlag.store(true, ordering: .relaxed) }
}

/// The proxy's Prometheus metrics.
struct ProxyMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let tunnels: Gauge
    let tunnelsTotal: Counter
    let rejected: Counter
    let misdirectedRetries: Counter
    let connectFailures: Counter
    let ringEpoch: Gauge

    init() {
        let registry = self.registry
        func counter(_ name: String, _ help: String) -> Counter {
            registry.makeCounter(descriptor: .init(namespace: "roomring", subsystem: "proxy", metricName: name,
                                                   unitName: "total", helpText: help))
        }
        func gauge(_ name: String, _ help: String) -> Gauge {
            registry.makeGauge(descriptor: .init(namespace: "roomring", subsystem: "proxy", metricName: name,
                                                 unitName: "", helpText: help))
        }
        tunnels = gauge("tunnels", "Open proxied connections")
        tunnelsTotal = counter("tunnels", "Proxied connections opened")
        rejected = counter("rejected_requests", "Requests answered by the proxy itself with an error")
        misdirectedRetries = counter("misdirected_retries", "421 answers that made the proxy refresh its ring and retry")
        connectFailures = counter("connect_failures", "Failed connections to shards (answered 503)")
        ringEpoch = gauge("ring_epoch", "Epoch of the ring in force")
    }

    /// Prometheus text, with per-shard health and tunnels appended.
    func render(shards: [ProxyContext.ShardStatus]) -> [UInt8] {
        var out = registry.emitToBuffer()
        var text = "# HELP roomring_proxy_shard_healthy Whether health checks pass for the shard\n"
        text += "# TYPE roomring_proxy_shard_healthy gauge\n"
        for shard in shards { text += "roomring_proxy_shard_healthy{shard=\"\(shard.id)\"} \(shard.healthy ? 1 : 0)\n" }
        text += "# HELP roomring_proxy_shard_tunnels Open tunnels to the shard\n# TYPE roomring_proxy_shard_tunnels gauge\n"
        for shard in shards { text += "roomring_proxy_shard_tunnels{shard=\"\(shard.id)\"} \(shard.tunnels)\n" }
        out += Array(text.utf8)
        return out
    }
}

import Logging
import NIOCore
import Prometheus
import RoomRingCore
import Synchronization

/// State shared by every connection of one shard: configuration, the current ring, counters.
public final class ShardContext: Sendable {
    /// The configuration the shard started with.
    public let configuration: ShardConfiguration
    let metrics: ShardMetrics
    /// Carries `shard` in its metadata.
    let logger: Logger
    private let ringBox: Mutex<HashRing>
    /// The ring before the last change, and when it changed: rooms gained then wait briefly for their state.
    private let lastChange = Mutex<(previous: HashRing, at: NIODeadline)?>(nil)
    private let joinBucket: Mutex<TokenBucket>
    private let connectionCount = Atomic<Int>(0)
    private let readyFlag = Atomic<Bool>(false)
    private let draining = Atomic<Bool>(false)
    /// Pub/sub mode: whether every Redis connection is up (always true in sticky mode).
    private let brokerReadyFlag = Atomic<Bool>(true)

    init(configuration: ShardConfiguration, ring: RingDocument, logger: Logger = Logger(label: "roomring.shard")) {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "shard"] = "\(configuration.id)"
        self.logger = logger
        self.metrics = ShardMetrics(shard: configuration.id)
        self.ringBox = Mutex(HashRing(ring))
        self.joinBucket = Mutex(TokenBucket(rate: configuration.joinsPerSecond, burst: configuration.joinsPerSecond * 2,
                                            now: NIODeadline.now().uptimeNanoseconds))
    }

    /// The ring in force.
    public var ring: HashRing { ringBox.withLock { $0 } }

    /// Installs `document` if its epoch is newer.
    /// - Throws: ``RingDocumentError`` when invalid or not newer.
    public func install(_ document: RingDocument) throws(RingDocumentError) {
        try document.validate()
        let result: Result<Void, RingDocumentError> = ringBox.withLock { ring in
            guard ring.document.accepts(document) else {
                return .failure(.staleEpoch(current: ring.epoch, offered: document.epoch))
            }
            lastChange.withLock { $0 = (ring, .now()) }
            ring = HashRing(document)
            return .success(())
        }
        try result.get()
    }

    /// How long a join for `room` should wait for the previous owner's state, or nil when no state is coming:
    /// the room only just became ours under the last ring change.
    func handoffWait(for room: RoomID) -> TimeAmount? {
        guard let change = lastChange.withLock({ $0 }), owns(room),
            change.previous.owner(of: room)?.id != configuration.id
        else { return nil }
        let window = TimeAmount.milliseconds(Int64(configuration.handoffWait * 1000))
        let remaining = change.at + window - .now()
        return remaining > .zero ? remaining : nil
    }

    /// Takes one token from the shard-wide join rate limit (spreads reconnect storms after a move).
    func admitJoin() -> Bool { joinBucket.withLock { $0.take(now: NIODeadline.now().uptimeNanoseconds) } }

    /// Whether this shard owns `room` under the current ring; in pub/sub mode every shard serves every room
    /// unless the ring says it is draining.
    func owns(_ room: RoomID) -> Bool {
        configuration.mode == .pubsub ? servesPubSub : ring.isOwner(configuration.id, of: room)
    }

    /// Pub/sub mode: whether this shard takes members (it does unless the ring lists it as draining).
    var servesPubSub: Bool { ring.document.shard(id: configuration.id)?.state != .draining }

    var connections: Int { connectionCount.load(ordering: .relaxed) }

    /// Reserves a connection slot; false when the shard is full.
    func reserveConnection() -> Bool {
        var current = connectionCount.load(ordering: .relaxed)
        while current < configuration.maxConnections {
            let (exchanged, original) = connectionCount.compareExchange(expected: current, desired: current + 1,
                                                                        ordering: .relaxed)
            if exchanged {
                metrics.connections.increment()
                metrics.connectionsTotal.increment()
                return true
            }
            current = original
        }
        return false
    }

    func releaseConnection() {
        connectionCount.subtract(1, ordering: .relaxed)
        metrics.connections.decrement()
    }

    var isReady: Bool {
        readyFlag.load(ordering: .relaxed) && !draining.load(ordering: .relaxed) && isBrokerReady
    }
    var isBrokerReady: Bool { brokerReadyFlag.load(ordering: .relaxed) }
    func setBrokerReady(_ ready: Bool) { brokerReadyFlag.store(ready, ordering: .relaxed) }
    func setReady(_ ready: Bool) { readyFlag.store(ready, ordering: .relaxed) }
    func setDraining() { draining.store(true, ordering: .relaxed) }
    var isDraining: Bool { draining.load(ordering: .relaxed) }
}

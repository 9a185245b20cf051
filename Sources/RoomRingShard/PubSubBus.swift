import Logging
import NIOCore
import Prometheus
import RoomRingCore
import RoomRingRedis
import Synchronization

/// The shard's link to Redis in pub/sub mode (DESIGN.md §6): one command connection per event loop (a room's
/// commands always use its home loop's, so they reach Redis in the order the room issued them) and one
/// subscriber connection for the shard.
///
/// Per room, Redis holds a counter (`rr:{room}:seq`), a stream of chat frames with ids `<seq>-0`
/// (`rr:{room}:log`, trimmed to the history limit), and a dedup table of `(client, id)` (`rr:{room}:dedup`, with
/// a FIFO list `rr:{room}:dedupq` bounding it). One Lua script checks dedup, increments the counter, appends to the
/// stream and publishes `"<seq> <origin> <frame>"` on `room:<id>` atomically, so seq is contiguous per room and
/// the order of publishes is the order of seqs, whichever shard published. Every key expires after the room's
/// retention; shards with members refresh it.
final class PubSubBus: Sendable {
    /// A chat as it travels through Redis.
    struct Published: Sendable {
        var seq: UInt64
        /// The publish token when this shard published it (for the sender's ack), else nil.
        var token: UInt64?
        /// The `chat` frame, ready to send.
        var frame: ByteBuffer
    }

    /// What a publish did.
    enum PublishResult: Sendable, Hashable {
        case accepted(seq: UInt64)
        /// A resend of a `(client, id)` already accepted under `seq`.
        case duplicate(seq: UInt64)
    }

    /// What the subscriber hands a room's home loop.
    enum Inbound: Sendable {
        case message(RoomID, Published)
        case subscribed(RoomID)
    }

    /// Tells publishes of this process apart from other shards' in the `origin` field.
    let instance: String
    let url: RedisURL
    let metrics: PubSubMetrics
    private let clients: [RedisClient]
    private let subscriber: RedisSubscriber
    private let scripts: [NIOLoopBoundBox<String?>]
    private let hubBox = Mutex<RoomHub?>(nil)
    private let context: ShardContext
    private let logger: Logger
    private let wasReady = Atomic<Bool>(false)
    private let refreshers = Mutex<[RepeatedTask]>([])
    /// Lets the connections' callbacks reach the bus (cleared on close, which breaks the reference cycle).
    private let box: BusBox

    /// How long joins wait for a room's subscription before they are refused with 1013.
    let joinTimeout: TimeAmount = .seconds(5)

    /// - Throws: ``RedisURLError`` when the configured URL is not usable.
    init(context: ShardContext, loops: [any EventLoop], logger: Logger) throws(RedisURLError) {
        let url = try RedisURL(parsing: context.configuration.redisURL)
        self.url = url
        self.context = context
        self.logger = logger
        self.instance = String(UInt64.random(in: 1...UInt64.max), radix: 36)
        self.metrics = PubSubMetrics(registry: context.metrics.registry, shard: context.configuration.id)
        let configuration = RedisConfiguration(url: url, connectTimeout: .seconds(1), commandTimeout: .seconds(3),
                                               backoff: RedisBackoff(initial: .milliseconds(50), maximum: .seconds(2)),
                                               pingInterval: .seconds(2))
        self.scripts = loops.map { NIOLoopBoundBox.makeBoxSendingValue(nil, eventLoop: $0) }
        let box = BusBox()
        self.clients = loops.enumerated().map { index, loop in
            RedisClient(configuration: configuration, eventLoop: loop) { event in
                box.bus?.clientEvent(event, loop: index)
            }
        }
        self.subscriber = RedisSubscriber(configuration: configuration, eventLoop: loops[0]) { events in
            box.bus?.subscriberEvents(events)
        }
        self.box = box
        box.set(self)
        context.setBrokerReady(false)
    }

    /// Starts connecting; the shard is ready once every connection is up.
    func start(hub: RoomHub) {
        hubBox.withLock { $0 = hub }
        for client in clients { client.start() }
        subscriber.start()
        // Keys expire after the retention; rooms with members here keep theirs alive.
        let retention = context.configuration.emptyRoomRetention
        let interval = TimeAmount.milliseconds(Int64(max(0.02, min(retention / 3, 60)) * 1000))
        let tasks = hub.loops.indices.map { index in
            hub.loops[index].scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                hub.onHub(index, from: index) { $0.pubSubRefresh() }
            }
        }
        refreshers.withLock { $0 = tasks }
    }

    /// Closes every connection.
    func close() async {
        for task in refreshers.withLock({ $0 }) { task.cancel() }
        for client in clients { try? await client.close().get() }
        try? await subscriber.close().get()
        hubBox.withLock { $0 = nil }
        box.set(nil)
    }

    // MARK: - Keys

    static func channel(_ room: RoomID) -> String { "room:" + room.rawValue }

    /// Counter, stream, dedup hash, dedup FIFO; the hash tag keeps a room's keys in one Redis Cluster slot.
    static func keys(_ room: RoomID) -> [String] {
        let base = "rr:{" + room.rawValue + "}:"
        return [base + "seq", base + "log", base + "dedup", base + "dedupq", base + "logbytes"]
    }

    static func room(ofChannel channel: String) -> RoomID? {
        guard channel.hasPrefix("room:") else { return nil }
        return RoomID(String(channel.dropFirst(5)))
    }

    private var ttlMilliseconds: Int { max(1, Int(context.configuration.emptyRoomRetention * 1000)) }

    // MARK: - Commands (called on the room's home loop `loop`; futures complete there)

    func subscribe(_ room: RoomID) { subscriber.subscribe([Self.channel(room)]) }
    func unsubscribe(_ room: RoomID) { subscriber.unsubscribe([Self.channel(room)]) }

    /// Publishes a chat through the script: dedup, next seq, stream, `PUBLISH`, atomically.
    func publish(room: RoomID, loop: Int, message: String, from: String, ts: Int64, dedup: String?,
                 token: UInt64?) -> EventLoopFuture<PublishResult> {
        let head = #"{"type":"chat","payload":{"message":"# + JSONText.quoted(message) + #","from":"#
            + JSONText.quoted(from) + #","seq":"#
        let tail = #","ts":\#(ts)}}"#
        let limits = context.configuration.roomLog
        let arguments: [any RESPArgument] = Self.keys(room) + [
            Self.channel(room), dedup ?? "", head, tail, token.map { "\(instance):\($0)" } ?? "-",
            max(1, limits.maxMessages), limits.maxDedupEntries, ttlMilliseconds, max(1, limits.maxBytes),
        ]
        let command = scripts[loop].value.map { RESPCommand("EVALSHA", arguments: [$0, 5] + arguments) }
            ?? RESPCommand("EVAL", arguments: [PubSubScript.publish, 5] + arguments)
        let scripts = self.scripts
        let client = clients[loop]
        return client.send(command).flatMapThrowing { reply -> PublishResult in
            guard let parts = reply.array, parts.count == 2, let flag = parts[0].int, let seq = parts[1].int, seq > 0
            else { throw RedisError.protocolViolation.with("unexpected publish reply \(reply)") }
            return flag == 1 ? .accepted(seq: UInt64(seq)) : .duplicate(seq: UInt64(seq))
        }.flatMapErrorThrowing { error in
            if (error as? RedisError)?.serverErrorKind == "NOSCRIPT" {
                // The script cache was flushed: send the script itself until it is loaded again.
                scripts[loop].value = nil
                Self.loadScript(client: client, into: scripts[loop])
            }
            throw error
        }
    }

    /// The room's current seq (0 for a room Redis does not know).
    func currentSeq(of room: RoomID, loop: Int) -> EventLoopFuture<UInt64> {
        clients[loop].send(RESPCommand("GET", Self.keys(room)[0])).flatMapThrowing { reply in
            if reply.isNull { return 0 }
            guard let value = reply.int, value >= 0 else { throw RedisError.protocolViolation }
            return UInt64(value)
        }
    }

    /// The room's current seq, and the stream's entries after `seq` (read after the counter, so together they
    /// cover everything up to the counter unless history was trimmed or lost).
    func readStream(of room: RoomID, after seq: UInt64, loop: Int)
        -> EventLoopFuture<(counter: UInt64, entries: [Published])>
    {
        let keys = Self.keys(room)
        return clients[loop].pipeline([RESPCommand("GET", keys[0]), RESPCommand("XRANGE", keys[1], "\(seq + 1)-0", "+")])
            .flatMapThrowing { replies in
                for reply in replies { if case .error(let text) = reply { throw RedisError.server(text) } }
                let counter = replies[0].isNull ? 0 : replies[0].int ?? -1
                guard counter >= 0 else { throw RedisError.protocolViolation.with("counter is not an integer") }
                let entries = try (replies[1].array ?? []).map { entry -> Published in
                    guard let parts = entry.array, parts.count == 2, let id = parts[0].string,
                        let seq = UInt64(id.prefix { $0 != "-" }), let fields = parts[1].array, fields.count >= 2,
                        let frame = fields[1].bytes
                    else { throw RedisError.protocolViolation.with("unexpected stream entry \(entry)") }
                    return Published(seq: seq, token: nil, frame: frame)
                }
                return (UInt64(counter), entries)
            }
    }

    /// Pushes back the expiry of the rooms' keys (rooms with members on this shard).
    func refresh(_ rooms: [RoomID], loop: Int) {
        guard !rooms.isEmpty else { return }
        let ttl = ttlMilliseconds
        _ = clients[loop].pipeline(rooms.flatMap { room in Self.keys(room).map { RESPCommand("PEXPIRE", $0, ttl) } })
    }

    // MARK: - Events

    private func clientEvent(_ event: RedisClient.Event, loop: Int) {
        if case .connected = event {
            scripts[loop].value = nil
            Self.loadScript(client: clients[loop], into: scripts[loop])
        }
        updateReadiness(event: "\(event)")
    }

    private static func loadScript(client: RedisClient, into box: NIOLoopBoundBox<String?>) {
        client.send(RESPCommand("SCRIPT", "LOAD", PubSubScript.publish)).whenSuccess { reply in
            box.value = reply.string
        }
    }

    private func subscriberEvents(_ events: [RedisSubscriber.Event]) {
        guard let hub = hubBox.withLock({ $0 }) else { return }
        var byLoop: [Int: [Inbound]] = [:]
        for event in events {
            switch event {
            case .message(let channel, let payload):
                guard let room = Self.room(ofChannel: channel), let published = parse(payload) else {
                    metrics.malformed.increment()
                    continue
                }
                byLoop[hub.homeIndex(of: room), default: []].append(.message(room, published))
            case .subscribed(let channel):
                guard let room = Self.room(ofChannel: channel) else { continue }
                byLoop[hub.homeIndex(of: room), default: []].append(.subscribed(room))
            case .unsubscribed:
                break
            case .connected, .disconnected:
                updateReadiness(event: "subscriber \(event)")
            }
        }
        for (loop, items) in byLoop.sorted(by: { $0.key < $1.key }) {
            hub.onHub(loop, from: 0) { $0.pubSubReceive(items) }
        }
    }

    /// `"<seq> <origin> <frame>"`; origin is `<instance>:<token>` or `-`.
    private func parse(_ payload: ByteBuffer) -> Published? {
        let view = payload.readableBytesView
        guard let firstSpace = view.firstIndex(of: UInt8(ascii: " ")),
            let secondSpace = view[(firstSpace + 1)...].firstIndex(of: UInt8(ascii: " ")),
            let seq = UInt64(String(decoding: view[..<firstSpace], as: UTF8.self))
        else { return nil }
        let origin = String(decoding: view[(firstSpace + 1)..<secondSpace], as: UTF8.self)
        var token: UInt64?
        if let colon = origin.firstIndex(of: ":"), origin[..<colon] == instance {
            token = UInt64(origin[origin.index(after: colon)...])
        }
        let offset = secondSpace + 1 - view.startIndex
        guard let frame = payload.getSlice(at: payload.readerIndex + offset, length: view.count - offset) else {
            return nil
        }
        return Published(seq: seq, token: token, frame: frame)
    }

    private func updateReadiness(event: String) {
        let ready = clients.allSatisfy(\.isConnected) && subscriber.isConnected
        context.setBrokerReady(ready)
        metrics.up.set(ready ? 1.0 : 0.0)
        guard wasReady.exchange(ready, ordering: .relaxed) != ready else { return }
        if ready {
            logger.notice("Redis is reachable; serving pub/sub rooms", metadata: ["redis": "\(url)"])
        } else {
            logger.warning("Redis is unreachable; refusing joins (503) and chats until it returns",
                           metadata: ["redis": "\(url)", "event": "\(event)"])
        }
    }
}

private final class BusBox: Sendable {
    private let value = Mutex<PubSubBus?>(nil)
    var bus: PubSubBus? { value.withLock { $0 } }
    func set(_ bus: PubSubBus?) { value.withLock { $0 = bus } }
}

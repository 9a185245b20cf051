import ArgumentParser
import Foundation
import Logging
import RoomRingCore
import RoomRingRedis
import RoomRingShard
import ServiceLifecycle
import UnixSignals

struct Shard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one shard: a WebSocket server that holds rooms in memory.",
        discussion: """
            The shard serves /rooms/<id> for rooms it owns under its ring and answers 421 with RoomRing-Epoch
            for the others. The same paths carry plain HTTP: POST /rooms/<id>/messages publishes (bearer token:
            --publish-token, else the admin token), GET /rooms/<id>/messages?since=<seq> polls, and
            GET /rooms/<id>/events streams Server-Sent Events (Last-Event-ID = seq).
            The ring may not list it yet: it then owns nothing until `roomring ring add`.
            SIGTERM or Ctrl-C closes members with 1012 (reconnect now) and exits.
            With --mode pubsub the shard serves any room: seq, history and fan-out between shards go through the
            Redis at --redis (or $ROOMRING_REDIS_URL). While Redis is unreachable /readyz answers 503, new joins get
            503, chats get an error frame (no ack, so clients resend), and the shard recovers when Redis returns.
            """
    )

    @Option(help: "This shard's id in the ring.")
    var id: String

    @Option(help: "Ring file (JSON, see DESIGN.md §2).")
    var ring: String

    @Option(help: "Client port, or host:port.")
    var port: String = "9001"

    @Option(help: "Admin port, or host:port (loopback unless a host is given).")
    var adminPort: String = "9101"

    @Option(help: "Largest WebSocket message in bytes; larger ones close with 1009 (and larger publish bodies get 413).")
    var maxMessageBytes: Int = 64 * 1024

    @Option(help: "Sustained chat messages per second per connection; faster senders are closed with 1008.")
    var rate: Double = 50

    @Option(help: "Burst of messages allowed above the rate.")
    var burst: Double = 100

    @Option(help: "Bytes queued to one connection before it is closed as a slow consumer (1013).")
    var maxOutboundBytes: Int = 1 << 20

    @Option(help: "Seconds between keepalive pings.")
    var pingInterval: Double = 20

    @Option(help: "Seconds of silence after which a peer is considered dead.")
    var deadPeerTimeout: Double = 60

    @Option(help: "Most simultaneous WebSocket connections; more get 503.")
    var maxConnections: Int = 50_000

    @Option(help: "Messages of history kept per room.")
    var historyMessages: Int = 1000

    @Option(help: "Bytes of history kept per room.")
    var historyBytes: Int = 1 << 20

    @Option(help: "Seconds an empty room's history is kept.")
    var emptyRoomRetention: Double = 600

    @Option(help: "New WebSocket joins accepted per second, shard-wide (burst twice that); more get 503.")
    var joinsPerSecond: Double = 2000

    @Option(help: "Seconds a room this shard just gained waits for its previous owner's state.")
    var handoffWait: Double = 5

    @Option(help: ArgumentHelp(
        "Sticky mode: directory where SIGTERM saves the rooms' state and the next start restores it.",
        discussion: "Rooms keep their history and dedup across a graceful restart (an upgrade), under the same ring epoch; the file is deleted once read, so a later crash never brings back old state.",
        valueName: "dir"))
    var stateDir: String?

    @Option(help: "Scaling design: sticky (this shard serves the rooms it owns on the ring) or pubsub (any room, through Redis).")
    var mode: ScalingMode = .sticky

    @Option(help: "Redis for pub/sub mode: redis://[[user]:password@]host[:port][/db] (default: $ROOMRING_REDIS_URL, else redis://127.0.0.1:6379).")
    var redis: String?

    @Option(help: """
        Bearer token for POST /rooms/<id>/messages (publishing from backend services) \
        (default: $ROOMRING_PUBLISH_TOKEN, else the admin token; without either, publishing is refused).
        """)
    var publishToken: String?

    @Option(help: "Seconds a request body (a publish) may take to arrive; slower ones get 408.")
    var bodyTimeout: Double = 10

    @OptionGroup var server: ServerOptions

    func validate() throws {
        if redis != nil, mode != .pubsub { throw ValidationError("--redis is only used with --mode pubsub") }
        do { _ = try RedisURL(parsing: resolvedRedis) } catch { throw ValidationError("--redis: \(error)") }
    }

    var resolvedRedis: String {
        redis ?? ProcessInfo.processInfo.environment["ROOMRING_REDIS_URL"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "redis://127.0.0.1:6379"
    }

    func run() async throws {
        let logger = server.makeLogger(label: "roomring.shard.\(id)")
        let file = try loadRing(ring)
        let document = await newestRing(from: file, token: server.resolvedToken, skipping: id)
        let configuration = ShardConfiguration(
            id: id, listen: try parseAddress(port, defaultHost: "127.0.0.1"),
            adminListen: try parseAddress(adminPort), adminToken: server.resolvedToken,
            maxMessageBytes: maxMessageBytes, messagesPerSecond: rate, messageBurst: burst,
            maxOutboundBytes: maxOutboundBytes, pingInterval: pingInterval, deadPeerTimeout: deadPeerTimeout,
            maxConnections: maxConnections,
            roomLog: .init(maxMessages: historyMessages, maxBytes: historyBytes),
            emptyRoomRetention: emptyRoomRetention, eventLoops: server.resolvedEventLoops)
        var shardConfiguration = configuration
        shardConfiguration.joinsPerSecond = joinsPerSecond
        shardConfiguration.handoffWait = handoffWait
        shardConfiguration.stateDirectory = stateDir
        shardConfiguration.publishToken = publishToken
            ?? ProcessInfo.processInfo.environment["ROOMRING_PUBLISH_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        shardConfiguration.bodyTimeout = bodyTimeout
        shardConfiguration.mode = mode
        shardConfiguration.redisURL = resolvedRedis
        if document.epoch > file.epoch {
            logger.notice("ring epoch \(document.epoch) taken from a peer shard (the file has \(file.epoch))")
        }
        if mode == .pubsub {
            logger.notice("pub/sub mode: any room, through Redis", metadata: ["redis": "\((try? RedisURL(parsing: resolvedRedis))?.description ?? "?")"])
        } else if document.shard(id: id) == nil {
            logger.notice("this shard is not in the ring yet; it owns no rooms until `roomring ring add`")
        }
        let shard = try await ShardServer.start(configuration: shardConfiguration, ring: document, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: shard)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        let watcher = ParentWatch.start { await group.triggerGracefulShutdown() }
        defer { watcher?.cancel() }
        try await group.run()
    }
}

import Logging
import NIOCore
import NIOHTTP1
import RoomRingHTTP
import NIOPosix
import NIOWebSocket
import RoomRingCore
import ServiceLifecycle

/// A running shard: the client listener (HTTP + WebSocket), the admin listener, and its rooms.
///
/// Start it with ``start(configuration:ring:logger:)``; run it as a `Service` (SIGTERM closes members with 1012,
/// "restarting", so they reconnect at once) or stop it with ``shutdown()``.
public final class ShardServer: Service, Sendable {
    /// Shared state (ring, metrics, limits).
    public let context: ShardContext
    /// Bound client port (useful with port 0).
    public let port: Int
    /// Bound admin port.
    public let adminPort: Int
    let hub: RoomHub
    private let group: MultiThreadedEventLoopGroup
    private let listeners: [any Channel]
    private let logger: Logger

    private init(context: ShardContext, hub: RoomHub, group: MultiThreadedEventLoopGroup,
                 listeners: [any Channel], logger: Logger) {
        self.context = context
        self.hub = hub
        self.group = group
        self.listeners = listeners
        self.port = listeners[0].localAddress?.port ?? 0
        self.adminPort = listeners[1].localAddress?.port ?? 0
        self.logger = logger
    }

    /// Binds both listeners and starts serving.
    /// - Parameters:
    ///   - configuration: the shard's configuration (`listen` port 0 picks a free port).
    ///   - ring: the initial ring; the shard may be absent from it (it then owns nothing).
    ///   - logger: where to log.
    public static func start(configuration: ShardConfiguration, ring: RingDocument,
                             logger: Logger = Logger(label: "roomring.shard")) async throws -> ShardServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoops))
        let context = ShardContext(configuration: configuration, ring: ring, logger: logger)
        let bus: PubSubBus?
        do {
            bus = configuration.mode == .pubsub
                ? try PubSubBus(context: context, loops: Array(group.makeIterator()), logger: logger) : nil
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        let hub = RoomHub(group: group, context: context, bus: bus)
        bus?.start(hub: hub)
        // Before the listeners exist: nobody joins a room that is about to get its saved history.
        await restoreRooms(context: context, hub: hub, logger: logger)
        do {
            let client = try await bindClient(group: group, context: context, hub: hub)
            let admin = try await HTTPListener.bind(group: group, at: configuration.adminListen, maxBody: 4 << 20,
                                           router: AdminRoutes.router(shard: context, hub: hub))
            context.setReady(true)
            let server = ShardServer(context: context, hub: hub, group: group, listeners: [client, admin],
                                     logger: logger)
            logger.info("shard listening", metadata: ["shard": "\(configuration.id)", "port": "\(server.port)",
                                                      "admin": "\(server.adminPort)", "epoch": "\(ring.epoch)",
                                                      "mode": "\(configuration.mode.rawValue)"])
            return server
        } catch {
            await bus?.close()
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Serves until graceful shutdown (SIGTERM, SIGINT), then shuts down.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Stops accepting, closes every member with 1012 "restarting", and stops the event loops.
    public func shutdown() async {
        guard !context.isDraining else { return }
        context.setDraining()
        for listener in listeners { try? await listener.close() }
        let saving = Self.stateFile(context.configuration) != nil
        let rooms = await hub.closeAll(code: WebSocketMessageStateMachine.CloseCode.restart, reason: "restarting",
                                       saving: saving)
        if saving { Self.save(rooms, context: context, logger: logger) }
        try? await Task.sleep(for: .milliseconds(100))
        await hub.bus?.close()
        try? await group.shutdownGracefully()
        logger.info("shard stopped", metadata: ["shard": "\(context.configuration.id)"])
    }

    private static func bindClient(group: MultiThreadedEventLoopGroup, context: ShardContext,
                                   hub: RoomHub) async throws -> any Channel {
        let configuration = context.configuration
        let router = ShardRoutes.router(shard: context)
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: configuration.maxOutboundBytes / 2,
                                                                    high: configuration.maxOutboundBytes))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Decide once per handshake and take the join token here only: deciding again after the 101
                    // could drop a connection that was just accepted.
                    let accepted = NIOLoopBoundBox<WebSocketRoomHandler.Request?>(nil, eventLoop: channel.eventLoop)
                    let upgrader = NIOWebSocketServerUpgrader(
                        maxFrameSize: configuration.maxMessageBytes,
                        automaticErrorHandling: true,
                        shouldUpgrade: { channel, head in
                            guard case .upgrade(let request) = UpgradeDecision.decide(head, shard: context),
                                context.admitJoin()
                            else {
                                return channel.eventLoop.makeSucceededFuture(nil)
                            }
                            accepted.value = request
                            return channel.eventLoop.makeSucceededFuture(HTTPHeaders())
                        },
                        upgradePipelineHandler: { channel, _ in
                            guard let request = accepted.value else { return channel.close() }
                            return channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(
                                    WebSocketRoomHandler(request: request, hub: hub, shard: context))
                            }
                        })
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { context in
                            _ = context.pipeline.syncOperations.removeHandler(name: "roomring.rooms")
                            _ = context.pipeline.syncOperations.removeHandler(name: "roomring.http")
                        }))
                    // Publish, polling and event streams are taken off before the plain router sees them.
                    try channel.pipeline.syncOperations.addHandler(RoomHTTPHandler(hub: hub, shard: context),
                                                                   name: "roomring.rooms")
                    try channel.pipeline.syncOperations.addHandler(
                        HTTPRequestHandler(maxBodyBytes: configuration.maxMessageBytes + 1024, router: router),
                        name: "roomring.http")
                }
            }
            .bind(host: configuration.listen.host, port: configuration.listen.port).get()
    }
}

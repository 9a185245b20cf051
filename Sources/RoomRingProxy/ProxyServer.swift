import Logging
import NIOCore
import NIOPosix
import Prometheus
import RoomRingCore
import RoomRingHTTP
import ServiceLifecycle

/// The front proxy: reads each request head, routes by room on the ring, and splices bytes to the shard.
///
/// Run it as a `Service`: on SIGTERM it stops accepting, lets tunnels finish for up to the drain timeout, then
/// closes the rest.
public final class ProxyServer: Service, Sendable {
    /// Ring, health and counters.
    public let context: ProxyContext
    /// Bound client port.
    public let port: Int
    /// Bound admin port.
    public let adminPort: Int
    private let group: MultiThreadedEventLoopGroup
    private let listener: any Channel
    private let admin: any Channel
    private let healthTask: Task<Void, Never>
    private let logger: Logger

    private init(context: ProxyContext, group: MultiThreadedEventLoopGroup, listener: any Channel,
                 admin: any Channel, healthTask: Task<Void, Never>, logger: Logger) {
        self.context = context
        self.group = group
        self.listener = listener
        self.admin = admin
        self.port = listener.localAddress?.port ?? 0
        self.adminPort = admin.localAddress?.port ?? 0
        self.healthTask = healthTask
        self.logger = logger
    }

    /// Binds the client and admin listeners and starts health checks.
    /// - Parameters:
    ///   - configuration: listeners, limits, balance mode.
    ///   - ring: the initial ring (newer ones arrive by `PUT /ring` or through 421 answers).
    ///   - logger: where to log.
    public static func start(configuration: ProxyConfiguration, ring: RingDocument,
                             logger: Logger = Logger(label: "roomring.proxy")) async throws -> ProxyServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoops))
        let idle = TimeAmount.milliseconds(Int64(configuration.idleTunnelTimeout * 1000))
        var sweepers: [NIOLoopBound<TunnelSweeper>] = []
        for loop in group.makeIterator() {
            sweepers.append(try await loop.submit { NIOLoopBound(TunnelSweeper(loop: loop, timeout: idle), eventLoop: loop) }
                .get())
        }
        let context = ProxyContext(configuration: configuration, ring: ring, logger: logger, sweepers: sweepers)
        context.metrics.ringEpoch.set(Int64(ring.epoch))
        do {
            let listener = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 4096)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                // An idle tunnel keeps its receive buffer: start small (it still grows for big messages).
                .childChannelOption(.recvAllocator, value: ProxyServer.receiveAllocator)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(FrontHandler(proxy: context))
                    }
                }
                .bind(host: configuration.listen.host, port: configuration.listen.port).get()
            let admin = try await HTTPListener.bind(group: group, at: configuration.adminListen, maxBody: 4 << 20,
                                                    router: ProxyAdminRoutes.router(proxy: context))
            let checker = HealthChecker(proxy: context, logger: logger)
            let healthTask = Task { await checker.run() }
            let server = ProxyServer(context: context, group: group, listener: listener, admin: admin,
                                     healthTask: healthTask, logger: logger)
            logger.info("proxy listening", metadata: ["port": "\(server.port)", "admin": "\(server.adminPort)",
                                                      "balance": "\(configuration.balance.rawValue)",
                                                      "epoch": "\(ring.epoch)"])
            return server
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Receive buffers for both sides of a tunnel: 256 bytes at first instead of NIO's 2 KiB.
    static let receiveAllocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 256, maximum: 65536)

    /// Serves until graceful shutdown, then drains.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Stops accepting, waits for tunnels up to the drain timeout, then closes everything.
    public func shutdown() async {
        guard !context.isDraining else { return }
        context.setDraining()
        try? await listener.close()
        let deadline = ContinuousClock.now + .milliseconds(Int64(context.configuration.drainTimeout * 1000))
        while context.shardStatuses().reduce(0, { $0 + $1.tunnels }) > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        healthTask.cancel()
        try? await admin.close()
        try? await group.shutdownGracefully()
        logger.info("proxy stopped")
    }
}

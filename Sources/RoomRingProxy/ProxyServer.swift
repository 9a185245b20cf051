import Foundation
import Logging
import NIOCore
import NIOPosix
import Prometheus
import RoomRingCore
import RoomRingHTTP
import ServiceLifecycle

/// The front proxy: reads each request head, routes by room on the ring, and splices bytes to the shard.
///
/// Client connections are served by ``TunnelLoop`` threads (one per `eventLoops`, each with its own listener on
/// the same port); the admin API and health checks run on NIO. Run it as a `Service`: on SIGTERM it stops
/// accepting, lets tunnels finish for up to the drain timeout, then closes the rest.
public final class ProxyServer: Service, Sendable {
    /// Ring, health and counters.
    public let context: ProxyContext
    /// Bound client port.
    public let port: Int
    /// Bound admin port.
    public let adminPort: Int
    private let group: MultiThreadedEventLoopGroup
    private let loops: [TunnelLoopHandle]
    private let admin: any Channel
    private let healthTask: Task<Void, Never>
    private let logger: Logger

    private init(context: ProxyContext, group: MultiThreadedEventLoopGroup, loops: [TunnelLoopHandle], port: Int,
                 admin: any Channel, healthTask: Task<Void, Never>, logger: Logger) {
        self.context = context
        self.group = group
        self.loops = loops
        self.port = port
        self.admin = admin
        self.adminPort = admin.localAddress?.port ?? 0
        self.healthTask = healthTask
        self.logger = logger
    }

    /// Binds the client and admin listeners, starts the tunnel loops and health checks.
    /// - Parameters:
    ///   - configuration: listeners, limits, balance mode.
    ///   - ring: the initial ring (newer ones arrive by `PUT /ring` or through 421 answers).
    ///   - logger: where to log.
    public static func start(configuration: ProxyConfiguration, ring: RingDocument,
                             logger: Logger = Logger(label: "roomring.proxy")) async throws -> ProxyServer {
        let context = ProxyContext(configuration: configuration, ring: ring, logger: logger)
        context.metrics.ringEpoch.set(Int64(ring.epoch))
        let handles = try bindLoops(configuration)
        let port = Sockets.localPort(handles[0].listenFD)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let admin: any Channel
        do {
            admin = try await HTTPListener.bind(group: group, at: configuration.adminListen, maxBody: 4 << 20,
                                                router: ProxyAdminRoutes.router(proxy: context))
        } catch {
            for handle in handles { handle.closeUnstarted() }
            try? await group.shutdownGracefully()
            throw error
        }
        for (index, handle) in handles.enumerated() {
            let thread = Thread { TunnelLoop(handle: handle, proxy: context).run() }
            thread.name = "roomring-proxy-\(index)"
            thread.start()
        }
        let checker = HealthChecker(proxy: context, logger: logger)
        let healthTask = Task { await checker.run() }
        let server = ProxyServer(context: context, group: group, loops: handles, port: port, admin: admin,
                                 healthTask: healthTask, logger: logger)
        logger.info("proxy listening", metadata: ["port": "\(port)", "admin": "\(server.adminPort)",
                                                  "balance": "\(configuration.balance.rawValue)",
                                                  "epoch": "\(ring.epoch)", "threads": "\(handles.count)"])
        return server
    }

    /// One listener per loop, all on the same port (SO_REUSEPORT spreads clients over them).
    private static func bindLoops(_ configuration: ProxyConfiguration) throws -> [TunnelLoopHandle] {
        let count = max(1, configuration.eventLoops)
        var address = try SocketAddress.makeAddressResolvingHost(configuration.listen.host,
                                                                 port: configuration.listen.port)
        var handles: [TunnelLoopHandle] = []
        do {
            for _ in 0..<count {
                let fd = try Sockets.listen(on: address, reusePort: count > 1)
                do {
                    handles.append(try TunnelLoopHandle(listenFD: fd))
                } catch {
                    close(fd)
                    throw error
                }
                // Port 0 picks a port once; the other loops bind that one.
                if address.port == 0 { address.port = Sockets.localPort(fd) }
            }
        } catch {
            for handle in handles { handle.closeUnstarted() }
            throw error
        }
        return handles
    }

    /// Serves until graceful shutdown, then drains.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Stops accepting, waits for tunnels up to the drain timeout, then closes everything.
    public func shutdown() async {
        guard !context.isDraining else { return }
        context.setDraining()
        for loop in loops { loop.post { $0.stopListening() } }
        let deadline = ContinuousClock.now + .milliseconds(Int64(context.configuration.drainTimeout * 1000))
        while context.shardStatuses().reduce(0, { $0 + $1.tunnels }) > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        for loop in loops { loop.post { $0.stop() } }
        let stopped = ContinuousClock.now + .seconds(2)
        while loops.contains(where: { !$0.isFinished }), ContinuousClock.now < stopped {
            try? await Task.sleep(for: .milliseconds(5))
        }
        healthTask.cancel()
        try? await admin.close()
        try? await group.shutdownGracefully()
        logger.info("proxy stopped")
    }
}

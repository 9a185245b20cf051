import ArgumentParser
import Logging
import RoomRingCore
import RoomRingProxy
import ServiceLifecycle
import UnixSignals

extension BalanceMode: ExpressibleByArgument {}
extension ScalingMode: ExpressibleByArgument {}

/// Proxy flags shared by `roomring proxy` and `roomring up`.
struct ProxyOptions: ParsableArguments {
    @Option(help: "Routing: ring (sticky: a room goes to its owner), round-robin or least-tunnels (pub/sub mode). Default: ring; `roomring up --mode pubsub` defaults to round-robin.")
    var balance: BalanceMode?

    @Option(help: "Seconds to receive a request head before answering 408.")
    var headTimeout: Double = 5

    @Option(help: "Largest request head in bytes; larger ones get 431.")
    var maxHeadBytes: Int = 8192

    @Option(help: "Seconds to connect to a shard before answering 503.")
    var connectTimeout: Double = 2

    @Option(help: "Seconds a tunnel may stay silent both ways before it is closed.")
    var idleTimeout: Double = 300

    @Option(help: "Seconds between health checks of each shard.")
    var healthInterval: Double = 2

    @Option(help: "Seconds SIGTERM waits for tunnels to finish before closing them.")
    var drainTimeout: Double = 10

    func configuration(listen: HostPort, admin: HostPort, token: String?, eventLoops: Int,
                       defaultBalance: BalanceMode = .ring) -> ProxyConfiguration {
        ProxyConfiguration(listen: listen, adminListen: admin, adminToken: token, balance: balance ?? defaultBalance,
                           headLimits: .init(maxHeadBytes: maxHeadBytes), headTimeout: headTimeout,
                           connectTimeout: connectTimeout, idleTunnelTimeout: idleTimeout,
                           healthInterval: healthInterval, drainTimeout: drainTimeout, eventLoops: eventLoops)
    }
}

struct Proxy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the front proxy: route /rooms/<id> to the room's shard on the ring and splice the bytes.",
        discussion: """
            The proxy reads each request head (bounded in size and time), finds the room in the path, connects to
            the room's owner on the ring, and splices bytes both ways. Paths without a room go to any healthy
            shard. A shard that answers 421 with a newer RoomRing-Epoch makes the proxy fetch that ring (with the
            admin token) and retry once. Errors: 400 malformed, 431 too large, 408 too slow, 503 shard unreachable.
            """
    )

    @Option(help: "Ring file (JSON).")
    var ring: String

    @Option(help: "Client port, or host:port.")
    var port: String = "8080"

    @Option(help: "Admin port, or host:port (loopback unless a host is given).")
    var adminPort: String = "8081"

    @OptionGroup var proxy: ProxyOptions
    @OptionGroup var server: ServerOptions

    func run() async throws {
        let logger = server.makeLogger(label: "roomring.proxy")
        let document = await newestRing(from: try loadRing(ring), token: server.resolvedToken)
        let configuration = proxy.configuration(listen: try parseAddress(port), admin: try parseAddress(adminPort),
                                                token: server.resolvedToken, eventLoops: server.resolvedEventLoops)
        let proxyServer = try await ProxyServer.start(configuration: configuration, ring: document, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: proxyServer)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        let watcher = ParentWatch.start { await group.triggerGracefulShutdown() }
        defer { watcher?.cancel() }
        try await group.run()
    }
}

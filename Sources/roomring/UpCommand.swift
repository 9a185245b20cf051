import ArgumentParser
import Foundation
import Logging
import RoomRingClient
import RoomRingCore
import RoomRingProxy
import RoomRingRedis
import ServiceLifecycle
import UnixSignals

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a whole fleet on loopback: the proxy plus N shard processes of this binary.",
        discussion: """
            Writes a ring, starts the shards as child processes of this binary, waits until every one answers
            /readyz, starts the proxy in this process, then prints the URLs, the admin token and the ring table.
            Open the chat page at http://127.0.0.1:8080/ and the ring dashboard at http://127.0.0.1:8081/admin
            (it asks for the admin token). Ctrl-C or SIGTERM stops everything gracefully.
            A shard that exits unexpectedly is reported and restarted (up to 5 times); its rooms come back
            empty and reconnecting clients are told so (hello.resumed = false).
            With --mode pubsub every shard serves every room through Redis and the proxy balances round-robin:
            the Redis at --redis is used, or else a redis-server child is started on a free loopback port (when
            one is installed) and stopped with the fleet. The banner says which.
            """
    )

    @Option(help: "Number of shards.")
    var shards: Int = 3

    @Option(help: "Proxy port (the one URL clients use), or host:port.")
    var port: String = "8080"

    @Option(help: "Proxy admin port, or host:port.")
    var adminPort: String = "8081"

    @Option(help: "Scaling design: sticky (rooms pinned to their ring owner) or pubsub (any shard, through Redis).")
    var mode: ScalingMode = .sticky

    @Option(help: "Redis for pub/sub mode (default: start a redis-server child on a free port).")
    var redis: String?

    @Option(help: "First shard client port; shard i listens on base+i-1.")
    var shardBasePort: Int = 9001

    @Option(help: "First shard admin port; shard i's admin API listens on base+i-1.")
    var shardAdminBasePort: Int = 9101

    @Option(help: "Event loop threads per shard.")
    var shardEventLoops: Int = 1

    @Option(help: "Bearer token for admin APIs (default: $ROOMRING_ADMIN_TOKEN, else a new random one).")
    var adminToken: String?

    @Option(help: "Bearer token for publishing (POST /rooms/<id>/messages) on the shards (default: the admin token).")
    var publishToken: String?

    @Option(help: "Log level for this process and the children.")
    var logLevel: String = "notice"

    @Option(help: ArgumentHelp("Log format for this process and the children: text or json.", valueName: "text|json"))
    var logFormat: ServerOptions.LogFormat = .text

    @OptionGroup var proxy: ProxyOptions

    func validate() throws {
        guard (1...64).contains(shards) else { throw ValidationError("--shards must be between 1 and 64") }
        if let redis {
            guard mode == .pubsub else { throw ValidationError("--redis is only used with --mode pubsub") }
            do { _ = try RedisURL(parsing: redis) } catch { throw ValidationError("--redis: \(error)") }
        }
    }

    func run() async throws {
        let options = try ServerOptions.parse(["--log-level", logLevel, "--log-format", logFormat.rawValue])
        let logger = options.makeLogger(label: "roomring.up")
        let token = adminToken ?? ProcessInfo.processInfo.environment["ROOMRING_ADMIN_TOKEN"] ?? Self.randomToken()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("roomring-up-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let ring = RingDocument(epoch: 1, shards: (1...shards).map { i in
            .init(id: "s\(i)", address: "127.0.0.1:\(shardBasePort + i - 1)",
                  admin: "127.0.0.1:\(shardAdminBasePort + i - 1)")
        })
        let ringPath = directory.appendingPathComponent("ring.json").path
        try ring.encoded().write(to: URL(fileURLWithPath: ringPath))

        // Pub/sub mode: the given Redis, or a child redis-server of our own.
        var redisChild: RedisServerProcess?
        var redisLine: String?
        var environment = ["ROOMRING_ADMIN_TOKEN": token]
        if mode == .pubsub {
            let url: RedisURL
            if let redis {
                url = try RedisURL(parsing: redis)
                redisLine = "\(url)   (given with --redis)"
            } else {
                guard RedisServerProcess.locate() != nil else {
                    throw ValidationError("""
                        --mode pubsub needs Redis: pass --redis redis://HOST:PORT, or install redis-server \
                        (apt-get install redis-server) and `roomring up` starts one
                        """)
                }
                let child = try await RedisServerProcess.start()
                redisChild = child
                url = child.url
                redisLine = "\(url)   (redis-server child, pid \(child.pid.map(String.init) ?? "?"), no persistence)"
            }
            // Through the environment, so a password never shows in the shards' command lines.
            environment["ROOMRING_REDIS_URL"] = redis ?? "redis://127.0.0.1:\(url.port)"
        }
        var children: [ChildSpec] = ring.shards.map { shard in
            ChildSpec(name: shard.id, arguments: ["shard", "--id", shard.id, "--ring", ringPath,
                                                  "--port", shard.address, "--admin-port", shard.admin,
                                                  "--event-loops", String(shardEventLoops), "--log-level", logLevel,
                                                  "--log-format", logFormat.rawValue, "--mode", mode.rawValue],
                      readyURL: HostPort(shard.address)!)
        }
        children.sort { $0.name < $1.name }
        // Through the environment, like the admin token, so it does not show in the process list.
        if let publishToken { environment["ROOMRING_PUBLISH_TOKEN"] = publishToken }
        let supervisor = Supervisor(children: children, environment: environment, logger: logger)
        do {
            try await supervisor.startAll()
        } catch {
            await supervisor.stopAll()
            redisChild?.stop()
            throw error
        }
        let proxyConfiguration = proxy.configuration(listen: try parseAddress(port), admin: try parseAddress(adminPort),
                                                     token: token, eventLoops: 1,
                                                     defaultBalance: mode == .pubsub ? .roundRobin : .ring)
        let proxyServer: ProxyServer
        do {
            proxyServer = try await ProxyServer.start(configuration: proxyConfiguration, ring: ring, logger: logger)
        } catch {
            await supervisor.stopAll()
            redisChild?.stop()
            throw ValidationError("the proxy could not listen on \(port) / \(adminPort): \(error)")
        }
        // Written unbuffered: scripts and tests wait for the banner on a pipe.
        FileHandle.standardOutput.write(Data((Self.banner(ring: ring, token: token, ringPath: ringPath,
                                                          proxy: proxyConfiguration, mode: mode,
                                                          redis: redisLine) + "\n").utf8))
        // Services stop in reverse order: the proxy drains first, then the shards, then our Redis.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let redisChild { services.append(.init(service: RedisChild(process: redisChild))) }
        services += [.init(service: supervisor), .init(service: proxyServer)]
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint],
                                                      logger: logger))
        try await group.run()
    }

    static func randomToken() -> String {
        (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    static func banner(ring: RingDocument, token: String, ringPath: String, proxy: ProxyConfiguration,
                       mode: ScalingMode = .sticky, redis: String? = nil) -> String {
        let design = mode == .pubsub ? "pub/sub mode, proxy \(proxy.balance.rawValue)" : "sticky mode"
        var lines = ["", "RoomRing is up (\(ring.shards.count) shards, ring epoch \(ring.epoch), \(design))", ""]
        lines.append("  chat page     http://\(proxy.listen)/")
        lines.append("  WebSocket     ws://\(proxy.listen)/rooms/<room>?name=<you>")
        lines.append("  dashboard     http://\(proxy.adminListen)/admin#token=\(token)")
        lines.append("  proxy admin   http://\(proxy.adminListen)/shards   (Authorization: Bearer <token>)")
        lines.append("  admin token   \(token)")
        lines.append("  ring file     \(ringPath)")
        if let redis { lines.append("  redis         \(redis)") }
        lines.append("")
        lines.append(RingTable.render(ring))
        if mode == .pubsub { lines.append("  (pub/sub mode: every shard serves every room; shares apply to sticky routing only)\n") }
        lines.append("Ctrl-C stops everything.")
        return lines.joined(separator: "\n")
    }
}

/// The `redis-server` child of `roomring up --mode pubsub`, stopped after the shards.
struct RedisChild: Service {
    let process: RedisServerProcess

    func run() async throws {
        try? await gracefulShutdown()
        process.stop()
    }
}

/// The ring as a table with each shard's share of the hash space.
enum RingTable {
    static func render(_ document: RingDocument) -> String {
        let shares = HashRing(document).shares()
        var out = "  shard  address            admin              weight  state     share\n"
        for shard in document.shards {
            let share = shares[shard.id].map { String(format: "%5.1f%%", $0 * 100) } ?? "    -"
            out += "  " + shard.id.padding(toLength: 7, withPad: " ", startingAt: 0)
                + shard.address.padding(toLength: 19, withPad: " ", startingAt: 0)
                + shard.admin.padding(toLength: 19, withPad: " ", startingAt: 0)
                + String(shard.weight).padding(toLength: 8, withPad: " ", startingAt: 0)
                + shard.state.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0) + share + "\n"
        }
        return out
    }
}

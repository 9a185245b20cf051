import ArgumentParser
import Foundation
import Logging
import RoomRingClient
import RoomRingCore
import RoomRingProxy
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
            """
    )

    @Option(help: "Number of shards.")
    var shards: Int = 3

    @Option(help: "Proxy port (the one URL clients use), or host:port.")
    var port: String = "8080"

    @Option(help: "Proxy admin port, or host:port.")
    var adminPort: String = "8081"

    @Option(help: "Scaling design: sticky (rooms pinned to their ring owner).")
    var mode: String = "sticky"

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
        guard mode == "sticky" else {
            throw ValidationError("--mode \(mode): only sticky mode is available in this version")
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

        var children: [ChildSpec] = ring.shards.map { shard in
            ChildSpec(name: shard.id, arguments: ["shard", "--id", shard.id, "--ring", ringPath,
                                                  "--port", shard.address, "--admin-port", shard.admin,
                                                  "--event-loops", String(shardEventLoops), "--log-level", logLevel,
                                                  "--log-format", logFormat.rawValue],
                      readyURL: HostPort(shard.address)!)
        }
        children.sort { $0.name < $1.name }
        var environment = ["ROOMRING_ADMIN_TOKEN": token]
        // Through the environment, like the admin token, so it does not show in the process list.
        if let publishToken { environment["ROOMRING_PUBLISH_TOKEN"] = publishToken }
        let supervisor = Supervisor(children: children, environment: environment, logger: logger)
        try await supervisor.startAll()
        let proxyConfiguration = proxy.configuration(listen: try parseAddress(port), admin: try parseAddress(adminPort),
                                                     token: token, eventLoops: 1)
        let proxyServer: ProxyServer
        do {
            proxyServer = try await ProxyServer.start(configuration: proxyConfiguration, ring: ring, logger: logger)
        } catch {
            await supervisor.stopAll()
            throw ValidationError("the proxy could not listen on \(port) / \(adminPort): \(error)")
        }
        // Written unbuffered: scripts and tests wait for the banner on a pipe.
        FileHandle.standardOutput.write(Data((Self.banner(ring: ring, token: token, ringPath: ringPath,
                                                          proxy: proxyConfiguration) + "\n").utf8))
        // Services stop in reverse order: the proxy drains first, then the shards.
        let group = ServiceGroup(configuration: .init(services: [.init(service: supervisor), .init(service: proxyServer)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    static func randomToken() -> String {
        (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    static func banner(ring: RingDocument, token: String, ringPath: String, proxy: ProxyConfiguration) -> String {
        var lines = ["", "RoomRing is up (\(ring.shards.count) shards, ring epoch \(ring.epoch))", ""]
        lines.append("  chat page     http://\(proxy.listen)/")
        lines.append("  WebSocket     ws://\(proxy.listen)/rooms/<room>?name=<you>")
        lines.append("  dashboard     http://\(proxy.adminListen)/admin#token=\(token)")
        lines.append("  proxy admin   http://\(proxy.adminListen)/shards   (Authorization: Bearer <token>)")
        lines.append("  admin token   \(token)")
        lines.append("  ring file     \(ringPath)")
        lines.append("")
        lines.append(RingTable.render(ring))
        lines.append("Ctrl-C stops everything.")
        return lines.joined(separator: "\n")
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

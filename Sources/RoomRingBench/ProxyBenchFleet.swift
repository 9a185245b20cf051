import Foundation
import NIOCore
import RoomRingSpawn

/// What a measurement connects to.
public enum ProxyBenchTarget: String, CaseIterable, Sendable {
    /// Straight to the shard: the floor.
    case direct
    /// Through `roomring proxy`.
    case roomring
    /// Through HAProxy configured from deploy/haproxy/haproxy.cfg.
    case haproxy
}

/// Fixed facts of one benchmark run that every fleet needs.
struct ProxyBenchSetup: Sendable {
    var binary: String
    var haproxyBinary: String?
    var haproxyTemplate: String?
    var haproxyMaxconn: Int
    var serverCPU: Int?
    var nice: Int
    var workDirectory: String
    var adminToken: String
    /// Extra `roomring shard` flags that lift its overload limits (join rate) where this build has them.
    var shardExtraArguments: [String] = []

    /// Flags of `binary shard` that raise its join-rate limit, found in its `--help`.
    static func shardLimitArguments(binary: String) -> [String] {
        guard let help = ProxyBenchSystem.capture([binary, "shard", "--help"])?.output else { return [] }
        return ["--joins-per-second", "--join-rate", "--join-burst"].filter { help.contains($0 + " ") }
            .flatMap { [$0, "1000000"] }
    }
}

/// Fresh server processes for one target: a shard, plus the proxy in front of it unless direct.
struct ProxyBenchFleet: Sendable {
    var target: ProxyBenchTarget
    var shard: ProxyBenchProcess
    var proxy: ProxyBenchProcess?
    var endpoint: ProxyBenchEndpoint

    /// Starts the processes and waits until a WebSocket handshake succeeds through `endpoint`.
    static func start(_ target: ProxyBenchTarget, setup: ProxyBenchSetup, label: String,
                      loop: any EventLoop) async throws -> ProxyBenchFleet {
        let (shardPort, shardAdmin) = try LoopbackPort.freePair()
        let directory = setup.workDirectory
        let ring = directory + "/ring-\(label).json"
        let document = #"{ "epoch": 1, "vnodes": 160, "shards": [ { "id": "s1", "address": "127.0.0.1:\#(shardPort)", "#
            + #""admin": "127.0.0.1:\#(shardAdmin)", "weight": 1, "state": "active" } ] }"#
        try document.write(toFile: ring, atomically: true, encoding: .utf8)
        // A shard whose parent (this benchmark) dies exits by itself (ParentWatch), even after a crash here.
        let environment = ["ROOMRING_ADMIN_TOKEN": setup.adminToken, "ROOMRING_PARENT_PID": String(getpid())]
        let shard = try ProxyBenchProcess.start(
            name: "shard", arguments: [setup.binary, "shard", "--id", "s1", "--ring", ring,
                                       "--port", String(shardPort), "--admin-port", String(shardAdmin),
                                       "--rate", "1000000", "--burst", "1000000", "--event-loops", "1",
                                       "--log-level", "warning", "--max-connections", "100000"]
                + setup.shardExtraArguments,
            cpu: setup.serverCPU, nice: setup.nice, environment: environment,
            logPath: directory + "/shard-\(label).log")
        var proxy: ProxyBenchProcess?
        do {
            try await waitForPort(shardPort, process: shard)
            var port = shardPort
            switch target {
            case .direct:
                break
            case .roomring:
                let admin: Int
                (port, admin) = try LoopbackPort.freePair()
                proxy = try ProxyBenchProcess.start(
                    name: "roomring proxy",
                    arguments: [setup.binary, "proxy", "--ring", ring, "--port", String(port),
                                "--admin-port", String(admin), "--event-loops", "1", "--log-level", "warning"],
                    cpu: setup.serverCPU, nice: setup.nice, environment: environment,
                    logPath: directory + "/proxy-\(label).log")
            case .haproxy:
                guard let binary = setup.haproxyBinary, let template = setup.haproxyTemplate else {
                    throw ProxyBenchError("haproxy is not available")
                }
                port = try LoopbackPort.free()
                let configPath = directory + "/haproxy-\(label).cfg"
                let config = try ProxyBenchHAProxyConfig(template: template, source: "template")
                    .render(listen: "127.0.0.1:\(port)", servers: [("s1", "127.0.0.1:\(shardPort)")],
                            maxconn: setup.haproxyMaxconn)
                try config.write(toFile: configPath, atomically: true, encoding: .utf8)
                proxy = try ProxyBenchProcess.start(name: "haproxy", arguments: [binary, "-db", "-f", configPath],
                                                    cpu: setup.serverCPU, nice: setup.nice,
                                                    logPath: directory + "/haproxy-\(label).log")
            }
            if let proxy { try await waitForPort(port, process: proxy) }
            let fleet = ProxyBenchFleet(target: target, shard: shard, proxy: proxy,
                                        endpoint: .init(host: "127.0.0.1", port: port))
            try await fleet.waitForHandshake(loop: loop, label: label)
            return fleet
        } catch {
            await proxy?.stop()
            await shard.stop()
            throw error
        }
    }

    private static func waitForPort(_ port: Int, process: ProxyBenchProcess) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                throw ProxyBenchError("\(process.name) exited while starting:\n\(process.logTail())")
            }
            if ProxyBenchSystem.accepts(port: port) { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw ProxyBenchError("\(process.name) did not listen on port \(port) within 20 s:\n\(process.logTail())")
    }

    /// Until one WebSocket handshake through the endpoint gets its hello (HAProxy may start with servers down).
    private func waitForHandshake(loop: any EventLoop, label: String) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        var attempt = 0
        var last = ""
        while ContinuousClock.now < deadline {
            attempt += 1
            let driver = ProxyBenchHandshakeDriver(loop: loop, endpoint: endpoint, roomPrefix: "ready-\(label)-\(attempt)")
            let result = try await loop.flatSubmit { driver.run(total: 1, inFlight: 1, timeout: .seconds(5)) }.get()
            if result.completed == 1 { return }
            last = result.firstFailure ?? "no answer"
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ProxyBenchError("no WebSocket handshake through \(target.rawValue) within 20 s (last: \(last))\n"
            + ([proxy, shard].compactMap { $0?.logTail() }.joined(separator: "\n")))
    }

    /// The process whose cost is the proxy's (nil for direct).
    var proxyProcess: ProxyBenchProcess? { proxy }

    /// CPU seconds of (proxy, shard) so far.
    func cpuSeconds() -> (proxy: Double?, shard: Double?) { (proxy?.cpuSeconds(), shard.cpuSeconds()) }

    /// Stops the proxy, then the shard.
    func stop() async {
        await proxy?.stop()
        await shard.stop()
    }

    /// Fails with the logs when a server died during a workload.
    func checkAlive() throws {
        for process in [proxy, shard].compactMap({ $0 }) where !process.isRunning {
            throw ProxyBenchError("\(process.name) exited during the measurement:\n\(process.logTail())")
        }
    }
}

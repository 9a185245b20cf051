import Foundation
import NIOCore
import NIOPosix
import RoomRingClient
import RoomRingCore
import RoomRingRedis
import Testing

// Process suites nest in the serialized UpCommandTests, so their fleets never run at the same time.
extension UpCommandTests {
    /// `roomring up --mode pubsub`: a fleet whose shards all serve every room through Redis, with the proxy balancing
    /// round-robin. Skipped, with the reason printed, where `redis-server` is not installed.
    @Suite(.serialized, .enabled(if: RedisInstalled.value, "redis-server is not installed"))
    struct UpPubSubTests {
        /// Whether 127.0.0.1:`port` accepts a TCP connection (Redis drops HTTP requests, so no HTTP probe).
        static func accepts(_ port: Int) async -> Bool {
            guard let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(1)).connect(host: "127.0.0.1", port: port).get()
            else { return false }
            try? await channel.close()
            return true
        }

        /// Two members per shard in one room, through the proxy: both shards are used and everyone sees one seq.
        func exerciseRoom(proxy: Int) async throws {
            var members: [WebSocketConnection] = []
            var shards = Set<String>()
            for i in 0..<4 {
                let member = try await WebSocketConnection.connect(host: "127.0.0.1", port: proxy,
                                                                   path: "/rooms/everyone?name=m\(i)")
                guard case .hello(let hello) = try await member.nextMessage() else { throw ProcessFailure("expected hello") }
                shards.insert(hello.shard)
                members.append(member)
            }
            #expect(shards.count == 2, "round-robin spreads one room's members over both shards")
            for (i, member) in members.enumerated() {
                member.send(text: ClientMessage.chat(message: "from-\(i)", id: nil).encoded())
            }
            for member in members {
                var seqs: [UInt64] = []
                while seqs.count < 4 {
                    guard case .chat(let chat) = try await member.nextMessage() else { throw ProcessFailure("expected chat") }
                    seqs.append(chat.seq)
                }
                #expect(seqs == [1, 2, 3, 4])
            }
            for member in members { await member.close() }
        }

        @Test func upStartsARedisChildWhenNoneIsGivenAndStopsItWithTheFleet() async throws {
            let ports = try UpCommandTests().fleetPorts(shards: 2)
            let up = try RoomRingProcess(["up", "--shards", "2", "--mode", "pubsub", "--port", String(ports.proxy),
                                          "--admin-port", String(ports.admin), "--shard-base-port", String(ports.shardBase),
                                          "--shard-admin-base-port", String(ports.adminBase)])
            var redisPort: Int?
            do {
                try await up.waitFor("Ctrl-C stops everything")
                #expect(up.text.contains("pub/sub mode, proxy round-robin"))
                let line = up.text.split(separator: "\n").first { $0.contains("redis ") && $0.contains("redis-server child") }
                #expect(line != nil, "the banner says a redis-server child was started: \(up.text)")
                redisPort = line.flatMap { $0.split(separator: ":").dropFirst(2).first }
                    .flatMap { Int($0.prefix { $0.isNumber }) }
                #expect(redisPort != nil)
                try await exerciseRoom(proxy: ports.proxy)
            } catch {
                _ = await up.stop()
                throw error
            }
            #expect(await up.stop(SIGTERM) != nil)
            if let redisPort { #expect(await Self.accepts(redisPort) == false, "the redis-server child was stopped too") }
        }

        @Test func upUsesTheGivenRedis() async throws {
            let redis = try await RedisServerProcess.start()
            defer { redis.kill() }
            let ports = try UpCommandTests().fleetPorts(shards: 2)
            let up = try RoomRingProcess(["up", "--shards", "2", "--mode", "pubsub", "--redis", "redis://127.0.0.1:\(redis.port)",
                                          "--port", String(ports.proxy), "--admin-port", String(ports.admin),
                                          "--shard-base-port", String(ports.shardBase),
                                          "--shard-admin-base-port", String(ports.adminBase)])
            do {
                try await up.waitFor("Ctrl-C stops everything")
                #expect(up.text.contains("redis://127.0.0.1:\(redis.port)   (given with --redis)"))
                try await exerciseRoom(proxy: ports.proxy)
                // The room's seq lives in the given Redis.
                #expect(try await redis.command(RESPCommand("GET", "rr:{everyone}:seq")).int == 4)
            } catch {
                _ = await up.stop()
                throw error
            }
            #expect(await up.stop(SIGTERM) != nil)
            #expect(await Self.accepts(redis.port), "a Redis that was given is not ours to stop")
        }
    }

    /// `roomring bench compare` end to end with a tiny workload: both designs measured, report and charts written.
    @Suite(.enabled(if: RedisInstalled.value, "redis-server is not installed"))
    struct BenchCompareSmokeTests {
        @Test func compareWritesAReportWithBothDesigns() async throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("compare-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            let bench = try RoomRingProcess(["bench", "compare", "--rooms", "3", "--members", "3", "--rates", "30",
                                             "--large-room-members", "12", "--large-room-rates", "20",
                                             "--rebalance-members", "24", "--rebalance-rooms", "6",
                                             "--rebalance-rate", "30",
                                             "--duration", "0.5", "--warmup", "0.2", "--repeat", "1",
                                             "--server-cpu=-1", "--generator-cpu=-1", "--output", directory.path])
            try await bench.waitFor("SVG charts", timeout: .seconds(180))
            _ = await bench.stop()
            let report = try String(contentsOf: directory.appendingPathComponent("report.md"), encoding: .utf8)
            #expect(report.contains("| sticky | 30 |") && report.contains("| pubsub | 30 |"), "\(report)")
            #expect(report.contains("| sticky | 20 | 240 |") && report.contains("| pubsub | 20 | 240 |"), "\(report)")
            #expect(!report.contains("failed"), "\(report)")
            // Both designs went through the add and the drain, and neither lost or duplicated a message.
            let rebalance = report.split(separator: "\n").filter { $0.hasPrefix("| sticky | ") || $0.hasPrefix("| pubsub | ") }
                .filter { $0.contains(" s | ") }
            #expect(rebalance.count == 2, "\(report)")
            for row in rebalance {
                let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
                #expect(cells.count == 12 && cells[9] == "0" && cells[10] == "0", "lost or duplicated: \(row)")
            }
            for chart in ["delivered.svg", "p99.svg", "cpu.svg", "latency-cdf.svg", "large-room.svg"] {
                #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent(chart).path))
            }
        }
    }
}

enum RedisInstalled {
    static let value: Bool = {
        let found = RedisServerProcess.locate() != nil
        if !found { print("RoomRingCLITests: skipping `up --mode pubsub`: redis-server is not installed") }
        return found
    }()
}

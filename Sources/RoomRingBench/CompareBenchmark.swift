#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOCore
import NIOPosix
import RoomRingClient
import RoomRingCore
import RoomRingRedis
import RoomRingSpawn

/// How `roomring bench compare` runs: the fanout workload (R rooms × M members, one sender per room, a swept
/// offered rate) against N shards in sticky mode and N shards in pub/sub mode on one Redis.
public struct CompareOptions: Sendable {
    /// Shards per fleet.
    public var shards = 2
    public var rooms = 50
    public var members = 20
    public var rates = [1000, 2000, 4000, 6000]
    public var duration = 5.0
    public var warmup = 1.0
    public var repeats = 3
    public var messageBytes = 64
    /// The second workload: one room of this many members (0 leaves it out), at these offered chats/s.
    public var largeRoomMembers = 2000
    public var largeRoomRates = [25, 50, 100]
    /// The third: a fleet behind a proxy gains a shard and then drains one while members chat
    /// (`rebalanceMembers` 0 leaves it out; the `roomring` binary runs the processes).
    public var rebalanceMembers = 2000
    public var rebalanceRooms = 200
    public var rebalanceRate = 200.0
    /// Designs to compare, interleaved in this order within each repetition.
    public var modes: [ScalingMode] = [.sticky, .pubsub]
    /// CPU the servers (shards and Redis) are pinned to, nil to leave them unpinned.
    public var serverCPU: Int? = 0
    /// CPU the generator is pinned to, nil to leave it unpinned.
    public var generatorCPU: Int? = 1
    /// Latency bound of the sustained rate (p99, ms) and the share of deliveries it needs.
    public var p99LimitMs = 50.0
    public var deliveredFraction = 0.95

    public init() {}
}

/// The workloads of `bench compare`.
public enum CompareScenario: String, Sendable {
    /// Many small rooms, one sender each.
    case manyRooms = "many small rooms"
    /// One room with more members than one shard comfortably serves.
    case largeRoom = "one large room"
}

/// One measured step of `bench compare`.
public struct CompareResult: Sendable {
    public var scenario: CompareScenario = .manyRooms
    public var mode: ScalingMode
    public var rate: Int
    public var repetition: Int
    public var sample: FanoutSample?
}

/// `roomring bench compare`: sticky vs pub/sub on the same workload, each a fresh fleet per step, members
/// connecting straight to the shards (the proxy is the same in both designs, so it is left out): in sticky mode
/// every member of a room connects to the room's ring owner; in pub/sub mode a room's members are spread over every
/// shard, so each chat crosses Redis once and is delivered by every shard.
public enum CompareBenchmark {
    /// Runs every step and returns the report; `progress` gets a line per event.
    public static func run(_ options: CompareOptions, progress: @escaping @Sendable (String) -> Void) async throws
        -> CompareReport
    {
        var options = options
        var notes: [String] = []
        if options.modes.contains(.pubsub), RedisServerProcess.locate() == nil {
            options.modes.removeAll { $0 == .pubsub }
            notes.append("pub/sub mode skipped: redis-server is not installed (apt-get install redis-server).")
            progress(notes.last!)
        }
        guard !options.modes.isEmpty else { throw FanoutError("no design left to measure") }
        let connections = max(options.rooms * options.members, options.largeRoomMembers, 2 * options.rebalanceMembers)
        let files = FanoutAffinity.raiseFileLimit()
        guard files > connections + 256 else {
            throw FanoutError("\(connections) connections need more open files than the limit of \(files) (ulimit -n)")
        }
        let allowed = FanoutAffinity.allowed()
        let wanted = [options.serverCPU, options.generatorCPU].compactMap { $0 }
        if !(wanted.allSatisfy(allowed.contains) && Set(wanted).count == wanted.count) {
            notes.append("CPU pinning off: this process may use CPUs \(allowed); results measure the scheduler too.")
            options.serverCPU = nil
            options.generatorCPU = nil
        } else if let cpu = options.generatorCPU {
            FanoutAffinity.pin(pid: getpid(), cpu: cpu)
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("roomring-compare-\(getpid())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        // One event loop thread: it does all the generator's work, on the generator's core.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

        var results: [CompareResult] = []
        var plan: [(CompareScenario, Int, FanoutWorkload)] = options.rates.map { rate in
            (.manyRooms, rate, FanoutWorkload(rooms: options.rooms, members: options.members, rate: rate,
                                              warmup: options.warmup, duration: options.duration,
                                              messageBytes: options.messageBytes))
        }
        if options.largeRoomMembers > 0 {
            plan += options.largeRoomRates.map { rate in
                (.largeRoom, rate, FanoutWorkload(rooms: 1, members: options.largeRoomMembers, rate: rate,
                                                  warmup: options.warmup, duration: options.duration,
                                                  messageBytes: options.messageBytes))
            }
        }
        let steps = options.repeats * plan.count * options.modes.count
        var step = 0
        for repetition in 1...options.repeats {
            for (scenario, rate, workload) in plan {
                for mode in options.modes {
                    step += 1
                    let label = "[\(step)/\(steps)] rep \(repetition) \(scenario.rawValue), \(mode.rawValue) @ \(rate)/s"
                    do {
                        let sample = try await runStep(mode, workload, options: options, scratch: scratch,
                                                       group: group) { progress("\(label): \($0)") }
                        progress("\(label): "
                            + FanoutReport.stepLine(sample, expected: Double(rate * workload.members)))
                        results.append(CompareResult(scenario: scenario, mode: mode, rate: rate,
                                                     repetition: repetition, sample: sample))
                    } catch {
                        results.append(CompareResult(scenario: scenario, mode: mode, rate: rate,
                                                     repetition: repetition, sample: nil))
                        notes.append("\(label) failed: \(error)")
                        progress("\(label): FAILED: \(error)")
                    }
                }
            }
        }
        try? await group.shutdownGracefully()
        var rebalance: [RebalanceOutcome] = []
        if options.rebalanceMembers > 0 {
            for mode in options.modes {
                var settings = RebalanceBenchmark.Options(binary: FanoutTools.current, connections: options.rebalanceMembers,
                                                          rooms: options.rebalanceRooms, rate: options.rebalanceRate,
                                                          proxies: 1, workDirectory: scratch.path)
                settings.mode = mode
                do {
                    rebalance.append(try await CompareRebalance.run(settings) { progress("rebalance: \($0)") })
                } catch {
                    notes.append("add/drain run in \(mode.rawValue) mode failed: \(error)")
                    progress("rebalance (\(mode.rawValue)): FAILED: \(error)")
                }
            }
        }
        return CompareReport(options: options, results: results, rebalance: rebalance, notes: notes)
    }

    /// A running fleet: its shards (and Redis), and where each member connects.
    private struct Fleet {
        var shards: [FanoutServerProcess]
        var redis: RedisServerProcess?
        var route: @Sendable (Int, Int) -> Int

        func stop() async {
            for shard in shards { await shard.stop() }
            redis?.stop()
        }
    }

    private static func runStep(_ mode: ScalingMode, _ workload: FanoutWorkload, options: CompareOptions,
                                scratch: URL, group: MultiThreadedEventLoopGroup,
                                progress: @escaping @Sendable (String) -> Void) async throws -> FanoutSample {
        let fleet = try await start(mode, rooms: workload.rooms, options: options, scratch: scratch)
        do {
            for shard in fleet.shards { try await waitReady(shard, cpu: options.serverCPU) }
            let cores = options.serverCPU.flatMap { s in options.generatorCPU.map { (server: s, generator: $0) } }
            let sample = try await FanoutGenerator.run(workload, host: "127.0.0.1", route: fleet.route,
                                                       serverPIDs: fleet.shards.map(\.pid), brokerPID: fleet.redis?.pid,
                                                       cores: cores, loop: group.next(), progress: progress)
            guard fleet.shards.allSatisfy(\.isRunning) else { throw FanoutError("a shard exited during the run") }
            await fleet.stop()
            return sample
        } catch {
            await fleet.stop()
            throw error
        }
    }

    /// Polls `/readyz` (a WebSocket probe would be refused with 421 by a sticky shard that does not own the room).
    private static func waitReady(_ shard: FanoutServerProcess, cpu: Int?) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            guard shard.isRunning else { throw FanoutError("\(shard.name) exited while starting") }
            if let response = try? await HTTPClient.request("GET", host: "127.0.0.1", port: shard.port, path: "/readyz",
                                                            timeout: .seconds(1)),
                response.status == 200
            {
                if let cpu, FanoutTools.find("taskset") == nil { FanoutAffinity.pin(pid: shard.pid, cpu: cpu) }
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw FanoutError("\(shard.name) was not ready within 30 s")
    }

    private static func start(_ mode: ScalingMode, rooms: Int, options: CompareOptions, scratch: URL) async throws
        -> Fleet
    {
        var redis: RedisServerProcess?
        if mode == .pubsub {
            let server = try await RedisServerProcess.start()
            if let cpu = options.serverCPU, let pid = server.pid { FanoutAffinity.pin(pid: pid, cpu: cpu) }
            redis = server
        }
        let free = try LoopbackPort.free(2 * options.shards)
        let ports = (0..<options.shards).map { (client: free[2 * $0], admin: free[2 * $0 + 1]) }
        let document = RingDocument(epoch: 1, shards: ports.enumerated().map { i, port in
            .init(id: "s\(i + 1)", address: "127.0.0.1:\(port.client)", admin: "127.0.0.1:\(port.admin)")
        })
        let ringFile = scratch.appendingPathComponent("ring-\(mode.rawValue).json")
        try document.encoded().write(to: ringFile)
        var shards: [FanoutServerProcess] = []
        do {
            for (i, port) in ports.enumerated() {
                var arguments = ["shard", "--id", "s\(i + 1)", "--ring", ringFile.path, "--port", String(port.client),
                                 "--admin-port", String(port.admin), "--rate", "1000000", "--burst", "1000000",
                                 "--joins-per-second", "100000", "--event-loops", "1", "--log-level", "warning",
                                 "--mode", mode.rawValue]
                if let redis { arguments += ["--redis", "redis://127.0.0.1:\(redis.port)"] }
                shards.append(try FanoutServerProcess.launch(
                    name: "roomring shard s\(i + 1) (\(mode.rawValue))", port: port.client,
                    executable: FanoutTools.current, arguments: arguments,
                    environment: ["ROOMRING_PARENT_PID": String(getpid())], cpu: options.serverCPU))
            }
        } catch {
            for shard in shards { await shard.stop() }
            redis?.stop()
            throw error
        }
        let clientPorts = ports.map(\.client)
        let route: @Sendable (Int, Int) -> Int
        switch mode {
        case .sticky:
            let ring = HashRing(document)
            let owners = (0..<rooms).map { room in
                ring.owner(ofKey: "bench-\(room)").flatMap { owner in
                    document.shards.firstIndex { $0.id == owner.id }.map { clientPorts[$0] }
                } ?? clientPorts[0]
            }
            route = { room, _ in owners[room] }
        case .pubsub:
            route = { room, member in clientPorts[(room + member) % clientPorts.count] }
        }
        return Fleet(shards: shards, redis: redis, route: route)
    }
}

import Foundation
import RoomRingClient
import RoomRingCore
import RoomRingRedis
import Synchronization
import RoomRingSpawn

/// The figures of issue 4: rooms moved when a shard is added (against the ideal 1/(N+1)), and a drain under load
/// with real processes: how long a shard holding N connections takes to empty, members' reconnect times, and
/// messages lost or duplicated (which must be 0).
public enum RebalanceBenchmark {
    /// The drain run's knobs.
    public struct Options: Sendable {
        /// The `roomring` binary started for the shards and proxies.
        public var binary: String
        /// Member connections, all in rooms the drained shard owns.
        public var connections: Int
        public var rooms: Int
        /// Chats per second over all rooms (one sender per room).
        public var rate: Double
        /// Proxies the members are spread over (a proxied connection costs a proxy two descriptors).
        public var proxies: Int
        /// `--joins-per-second` of the shards (nil: the shard's default).
        public var joinsPerSecond: Double?
        public var workDirectory: String
        /// Sticky (the proxy routes by ring) or pub/sub (a redis-server child, the proxy balances round robin).
        public var mode: ScalingMode = .sticky
        /// Also start s3, running but not in the ring, for a `ring add` during the run.
        public var spareShard = false

        public init(binary: String, connections: Int = 10_000, rooms: Int = 1_000, rate: Double = 200,
                    proxies: Int = 2, joinsPerSecond: Double? = nil, workDirectory: String) {
            self.binary = binary
            self.connections = connections
            self.rooms = rooms
            self.rate = rate
            self.proxies = proxies
            self.joinsPerSecond = joinsPerSecond
            self.workDirectory = workDirectory
        }
    }

    static var buildKind: String {
        #if DEBUG
        "DEBUG build: times are not representative"
        #else
        "release build"
        #endif
    }

    /// Rooms that change owner when shard N+1 joins N shards, against the ideal 1/(N+1), and whether every move
    /// lands on the new shard. Pure computation over `rooms` room ids.
    public static func movedFractions(shardCounts: [Int] = [1, 2, 3, 4, 5, 9, 19], rooms: Int = 100_000,
                                      vnodes: Int = RingDocument.defaultVNodes) -> String {
        let ids = (0..<rooms).map { RoomID("room-\($0)")! }
        var lines = ["rooms moved when a shard is added (\(rooms) rooms, \(vnodes) vnodes per shard)",
                     "  N → N+1   moved     ideal 1/(N+1)   moved/ideal   all onto the new shard"]
        for count in shardCounts {
            func ring(_ n: Int) -> HashRing {
                HashRing(RingDocument(epoch: 1, vnodes: vnodes, shards: (1...n).map {
                    .init(id: "s\($0)", address: "127.0.0.1:\(9000 + $0)", admin: "127.0.0.1:\(9100 + $0)")
                }))
            }
            let before = ring(count)
            let after = ring(count + 1)
            var moved = 0
            var elsewhere = 0
            for room in ids where before.owner(of: room)?.id != after.owner(of: room)?.id {
                moved += 1
                if after.owner(of: room)?.id != "s\(count + 1)" { elsewhere += 1 }
            }
            let fraction = Double(moved) / Double(rooms)
            let ideal = 1 / Double(count + 1)
            lines.append(String(format: "  %2d → %-3d  %6.2f %%  %8.2f %%       %6.3f        ", count, count + 1,
                                fraction * 100, ideal * 100, fraction / ideal)
                + (elsewhere == 0 ? "yes" : "NO (\(elsewhere) elsewhere)"))
        }
        return lines.joined(separator: "\n")
    }

    /// Starts two shards and `proxies` proxies, puts `connections` members in rooms of s1, chats, drains s1 with
    /// `FleetAdmin` (as `roomring ring drain s1 --wait` does), and measures. Returns the report.
    public static func drain(_ options: Options, log: @escaping @Sendable (String) -> Void) async throws -> String {
        ProxyBenchChildren.shared.installSignalHandlers()
        let fleet = try await RebalanceFleet.start(options, log: log)
        do {
            let report = try await measureDrain(options, fleet: fleet, log: log)
            await fleet.stop()
            return report
        } catch {
            await fleet.stop()
            throw error
        }
    }

    private static func measureDrain(_ options: Options, fleet: RebalanceFleet,
                                     log: @escaping @Sendable (String) -> Void) async throws -> String {
        let ring = HashRing(fleet.ring)
        let roomIDs = Array((0..<Int.max).lazy.map { "drain-\($0)" }.filter { ring.owner(ofKey: $0)?.id == "s1" }
            .prefix(options.rooms).map { RoomID($0)! })
        let members = (0..<options.connections).map { i in
            DrainMember(index: i, room: roomIDs[i % roomIDs.count], proxy: fleet.proxyPorts[i % fleet.proxyPorts.count])
        }
        let connectStart = ContinuousClock.now
        for member in members { await member.client.start() }
        try await waitUntil("every member connected", timeout: .seconds(300), log: log) {
            members.allSatisfy { $0.recorder.connectedShard != nil }
        }
        log("\(members.count) members connected in \(ContinuousClock.now - connectStart)")

        let senders = Array(members.prefix(roomIDs.count))
        let sending = startSending(senders, rate: options.rate)
        try await Task.sleep(for: .seconds(2))

        let admin = FleetAdmin(proxies: fleet.proxyAdmins, token: fleet.token, log: { _ in })
        let drainStart = ContinuousClock.now
        for member in members { member.recorder.mark(drainStart) }
        try await admin.change(.drain(id: "s1"), dryRun: false, wait: (shard: "s1", timeout: 300))
        let handedOff = ContinuousClock.now - drainStart
        try await waitUntil("every member reconnected on s2", timeout: .seconds(300), log: log) {
            members.allSatisfy { $0.recorder.connectedShard == "s2" }
        }
        let reconnected = ContinuousClock.now - drainStart
        try await Task.sleep(for: .seconds(2))
        for member in senders { member.stopFlag.set() }
        await sending.value
        var unacked = 0
        for member in members { unacked += await member.client.unacknowledged }

        // Catch-up: every member reaches its room's final seq on s2.
        let s2 = fleet.ring.shard(id: "s2")!
        var finalSeq: [String: UInt64] = [:]
        let caughtUp = (try? await waitUntil("every member caught up", timeout: .seconds(60), log: log) {
            finalSeq = Dictionary((try? await admin.rooms(of: s2))?.map { ($0.room, $0.seq) } ?? [],
                                  uniquingKeysWith: { $1 })
            return members.allSatisfy { finalSeq[$0.room.rawValue] == $0.recorder.lastSeq }
        }) != nil
        let tally = DrainTally(members: members, finalSeq: finalSeq)
        let waits = members.compactMap(\.recorder.reconnectTime).sorted()
        for member in members { await member.client.close() }

        func percentile(_ p: Double) -> String {
            guard !waits.isEmpty else { return "-" }
            return waits[min(waits.count - 1, Int(Double(waits.count) * p))].milliseconds.formatted() + " ms"
        }
        return """
            drain of a shard holding \(members.count) connections in \(roomIDs.count) rooms \
            (\(fleet.proxyPorts.count) proxies, \(options.rate.formatted()) chats/s) — \(buildKind)
              ring push → s1 holds no rooms          \(handedOff.seconds) s
              ring push → every member on s2         \(reconnected.seconds) s
              reconnect per member (1012 → hello)    p50 \(percentile(0.5)), p99 \(percentile(0.99)), \
            max \(percentile(1))  (\(waits.count) measured)
              messages acked \(tally.acked), delivered \(tally.deliveries); lost \(tally.lost), duplicated \
            \(tally.duplicated), unacknowledged at the end \(unacked), resumed:false \(tally.resets)\
            \(caughtUp ? "" : ", NOT all members caught up")
            """
    }

    /// One sender per room (its first member), paced so the rooms together send `rate` chats per second, each
    /// recording the seq its chats were acknowledged with; until each sender's stop flag is set.
    static func startSending(_ senders: [DrainMember], rate: Double) -> Task<Void, Never> {
        let interval = Duration.milliseconds(Int64(Double(senders.count) / rate * 1000))
        return Task {
            await withTaskGroup(of: Void.self) { group in
                for member in senders {
                    group.addTask {
                        try? await Task.sleep(for: .milliseconds(Int64.random(in: 0...max(1, interval.milliseconds))))
                        var n = 0
                        while !member.stopFlag.isSet {
                            n += 1
                            let text = "m\(member.index)#\(n)"
                            guard let seq = try? await member.client.send(text) else { return }
                            member.recorder.acked(text, seq: seq)
                            try? await Task.sleep(for: interval)
                        }
                    }
                }
            }
        }
    }

    static func waitUntil(_ what: String, timeout: Duration, log: @Sendable (String) -> Void,
                          _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        var lastLog = ContinuousClock.now
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw ProxyBenchError("timed out: \(what)") }
            if ContinuousClock.now - lastLog > .seconds(10) {
                log("  still waiting: \(what)")
                lastLog = ContinuousClock.now
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// Counts over every member's history: a gap in seq or an acked message missing at its sender is lost; a seq
/// seen twice or a text seen twice is duplicated.
struct DrainTally {
    var acked = 0
    var deliveries = 0
    var lost = 0
    var duplicated = 0
    var resets = 0

    init(members: [DrainMember], finalSeq: [String: UInt64]) {
        for member in members {
            let history = member.recorder.snapshot
            resets += history.resets
            deliveries += history.deliveries.count
            var previous = history.firstSeq
            var texts = Set<String>()
            for delivery in history.deliveries {
                if delivery.seq <= previous || !texts.insert(delivery.text).inserted { duplicated += 1 }
                if delivery.seq > previous + 1 { lost += Int(delivery.seq - previous - 1) }
                previous = max(previous, delivery.seq)
            }
            if let target = finalSeq[member.room.rawValue], target > previous { lost += Int(target - previous) }
            acked += history.acked.count
            for text in history.acked.keys where !texts.contains(text) { lost += 1 }
        }
    }
}

final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

/// One member: its client and what it saw.
final class DrainMember: Sendable {
    let index: Int
    let room: RoomID
    let recorder = DrainRecorder()
    let client: RoomClient
    let stopFlag = StopFlag()

    init(index: Int, room: RoomID, proxy: Int) {
        self.index = index
        self.room = room
        let recorder = self.recorder
        client = RoomClient(host: "127.0.0.1", port: proxy, room: room,
                            options: .init(name: "m\(index)", clientID: "m\(index)"),
                            onMessage: { recorder.delivered($0) }, onState: { recorder.state($0) })
    }
}

/// Thread-safe record of one member's deliveries and connection changes, with times.
final class DrainRecorder: Sendable {
    struct History: Sendable {
        var deliveries: [(seq: UInt64, text: String)] = []
        var acked: [String: UInt64] = [:]
        var firstSeq: UInt64 = 0
        var started = false
        var resets = 0
        var shard: String?
        var drainStart: ContinuousClock.Instant?
        /// Every reconnect: when the connection was lost and when the next `hello` arrived.
        var reconnects: [(left: ContinuousClock.Instant, back: ContinuousClock.Instant)] = []
        var leftAt: ContinuousClock.Instant?

        /// The first reconnect that began at or after `instant`.
        func reconnect(after instant: ContinuousClock.Instant) -> Duration? {
            reconnects.first { $0.left >= instant }.map { $0.back - $0.left }
        }
    }

    private let history = Mutex(History())

    func mark(_ instant: ContinuousClock.Instant) { history.withLock { $0.drainStart = instant } }
    func acked(_ text: String, seq: UInt64) { history.withLock { $0.acked[text] = seq } }
    func delivered(_ chat: ServerMessage.Chat) {
        history.withLock { $0.deliveries.append((chat.seq, chat.message)) }
    }

    func state(_ state: RoomClient.State) {
        let now = ContinuousClock.now
        history.withLock { history in
            switch state {
            case .connected(let shard, let seq, let resumed):
                if !history.started {
                    history.started = true
                    history.firstSeq = seq
                } else if !resumed {
                    history.resets += 1
                }
                history.shard = shard
                if let left = history.leftAt {
                    history.reconnects.append((left, now))
                    history.leftAt = nil
                }
            case .reconnecting:
                if history.leftAt == nil { history.leftAt = now }
                history.shard = nil
            case .connecting, .closed:
                break
            }
        }
    }

    var snapshot: History { history.withLock { $0 } }
    var connectedShard: String? { history.withLock { $0.shard } }
    var reconnectTime: Duration? { history.withLock { $0.drainStart.flatMap($0.reconnect(after:)) } }
    /// Reconnects that began in `start..<end`, each with its duration.
    func reconnects(from start: ContinuousClock.Instant, to end: ContinuousClock.Instant) -> [Duration] {
        history.withLock { $0.reconnects.filter { $0.left >= start && $0.left < end }.map { $0.back - $0.left } }
    }
    var lastSeq: UInt64 { history.withLock { $0.deliveries.last?.seq ?? $0.firstSeq } }
}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
    var seconds: String { String(format: "%.2f", Double(milliseconds) / 1000) }
}

/// Two shards (s1, s2; both active) and the proxies, as child processes of `roomring`.
struct RebalanceFleet: Sendable {
    let token = "rebalance-bench-token"
    var ring: RingDocument
    var proxyPorts: [Int]
    var proxyAdmins: [HostPort]
    var processes: [ProxyBenchProcess]
    /// s3, running but not in the ring, when the options asked for a spare.
    var spare: RingDocument.Shard?
    var redis: RedisServerProcess?

    static func start(_ options: RebalanceBenchmark.Options, log: @Sendable (String) -> Void) async throws
        -> RebalanceFleet
    {
        // s1, s2 and the spare s3: a client and an admin port each, all different.
        let ports = try LoopbackPort.free(6)
        func shard(_ i: Int) -> RingDocument.Shard {
            .init(id: "s\(i + 1)", address: "127.0.0.1:\(ports[2 * i])", admin: "127.0.0.1:\(ports[2 * i + 1])")
        }
        let ring = RingDocument(epoch: 1, shards: [shard(0), shard(1)])
        let ringPath = options.workDirectory + "/rebalance-ring.json"
        try ring.encoded().write(to: URL(fileURLWithPath: ringPath))
        var fleet = RebalanceFleet(ring: ring, proxyPorts: [], proxyAdmins: [], processes: [])
        if options.spareShard {
            fleet.spare = shard(2)
        }
        var environment = ["ROOMRING_ADMIN_TOKEN": fleet.token, "ROOMRING_PARENT_PID": String(getpid())]
        var modeArguments = ["--mode", options.mode.rawValue]
        do {
            if options.mode == .pubsub {
                let redis = try await RedisServerProcess.start()
                fleet.redis = redis
                environment["ROOMRING_REDIS_URL"] = "redis://127.0.0.1:\(redis.port)"
            }
            for shard in ring.shards + (fleet.spare.map { [$0] } ?? []) {
                let joins = options.joinsPerSecond.map { ["--joins-per-second", String($0)] } ?? []
                let process = try ProxyBenchProcess.start(
                    name: shard.id, arguments: [options.binary, "shard", "--id", shard.id, "--ring", ringPath,
                                                "--port", shard.address, "--admin-port", shard.admin,
                                                "--event-loops", "1", "--log-level", "warning",
                                                "--max-connections", "100000"] + joins + modeArguments,
                    cpu: nil, environment: environment, logPath: options.workDirectory + "/rebalance-\(shard.id).log")
                fleet.processes.append(process)
                try await waitForPort(HostPort(shard.address)!.port, process: process)
            }
            modeArguments = options.mode == .pubsub ? ["--balance", "round-robin"] : []
        for i in 0..<max(1, options.proxies) {
                let (port, admin) = try LoopbackPort.freePair()
                let process = try ProxyBenchProcess.start(
                    name: "proxy\(i)", arguments: [options.binary, "proxy", "--ring", ringPath, "--port", String(port),
                                                   "--admin-port", String(admin), "--event-loops", "1",
                                                   "--log-level", "warning", "--drain-timeout", "1"] + modeArguments,
                    cpu: nil, environment: environment, logPath: options.workDirectory + "/rebalance-proxy\(i).log")
                fleet.processes.append(process)
                try await waitForPort(port, process: process)
                fleet.proxyPorts.append(port)
                fleet.proxyAdmins.append(HostPort(host: "127.0.0.1", port: admin))
            }
        } catch {
            await fleet.stop()
            throw error
        }
        log("started s1, s2\(fleet.spare == nil ? "" : ", s3 (not in the ring)") and \(fleet.proxyPorts.count) proxies"
            + (fleet.redis.map { " on redis-server :\($0.port)" } ?? ""))
        return fleet
    }

    private static func waitForPort(_ port: Int, process: ProxyBenchProcess) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !ProxyBenchSystem.accepts(port: port) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                throw ProxyBenchError("\(process.name) did not start:\n\(process.logTail())")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func stop() async {
        for process in processes.reversed() { await process.stop() }
        redis?.stop()
    }
}

import Foundation
import RoomRingClient
import RoomRingSpawn
import RoomRingCore
import Synchronization
import Testing

// Nested in the serialized `UpCommandTests`: two fleets of processes never run at once on a small machine, and
// one fleet's client sockets cannot take the ports another is about to listen on.
extension UpCommandTests {
    /// The rebalancing chaos test (issue 4): real `roomring shard` and `roomring proxy` processes, many ``RoomClient``s
    /// chatting through the proxy at a steady rate, and during the run: add a 4th shard, drain one, restart the proxy,
    /// SIGTERM a shard (restarted, as a supervisor would). ``ChaosChecker`` then verifies every client's history. Then
    /// a shard is SIGKILLed and removed: its rooms come back on new owners and every member is told `resumed: false`.
    ///
    /// Default size: 40 rooms × 5 clients, one message per client per second. `ROOMRING_CHAOS_FULL=1` runs the size of
    /// the issue: 200 rooms × 10 clients (2,000), one message per client every 10 s (200 messages/s through the
    /// proxy).
    @Suite(.serialized) struct ChaosTests {
        struct Size: Sendable {
            var rooms: Int
            var perRoom: Int
            var interval: Duration

            static var current: Size {
                ProcessInfo.processInfo.environment["ROOMRING_CHAOS_FULL"] == "1"
                    ? Size(rooms: 200, perRoom: 10, interval: .seconds(10))
                    : Size(rooms: 40, perRoom: 5, interval: .seconds(1))
            }
        }

        @Test(.timeLimit(.minutes(5)))
        func rebalancingUnderLoadLosesAndDuplicatesNothing() async throws {
            let size = Size.current
            let fleet = try ChaosFleet()
            defer { fleet.stopAll() }
            for id in ["s1", "s2", "s3", "s4"] { try await fleet.startShard(id) }
            try await fleet.startProxy()
            let started = ContinuousClock.now
            func log(_ line: String) { print("chaos [\(ContinuousClock.now - started)] \(line)") }

            let recorders = (0..<(size.rooms * size.perRoom)).map {
                ChaosRecorder(client: "k\($0)", room: "chaos-\($0 % size.rooms)")
            }
            let clients = recorders.map { fleet.client(for: $0) }
            for client in clients { await client.start() }
            try await waitFor("every client connected", within: .seconds(90)) {
                recorders.allSatisfy { $0.eventCount > 0 }
            }
            log("\(clients.count) clients connected in \(size.rooms) rooms")

            let stop = Flag()
            let senders = Task {
                await withTaskGroup(of: Void.self) { group in
                    for (client, recorder) in zip(clients, recorders) {
                        group.addTask {
                            let step = size.interval.components.seconds * 1000
                            try? await Task.sleep(for: .milliseconds(Int64.random(in: 0..<max(1, step))))
                            var n = 0
                            while !stop.isSet {
                                n += 1
                                let text = "\(recorder.client)#\(n)"
                                guard let seq = try? await client.send(text) else { return }
                                recorder.acked(text, seq: seq)
                                try? await Task.sleep(for: size.interval)
                            }
                        }
                    }
                }
            }

            try await Task.sleep(for: .seconds(3))
            var timer = ContinuousClock.now
            try await fleet.ring(["add", "s4", fleet.address("s4"), "--shard-admin", fleet.admin("s4")])
            log("ring add s4: \(ContinuousClock.now - timer)")
            try await Task.sleep(for: .seconds(3))

            timer = ContinuousClock.now
            try await fleet.ring(["drain", "s1", "--wait", "--timeout", "60"])
            log("ring drain s1 --wait: \(ContinuousClock.now - timer)")
            try await Task.sleep(for: .seconds(3))

            timer = ContinuousClock.now
            try await fleet.restartProxy()
            log("proxy restarted: \(ContinuousClock.now - timer)")
            // Its ring file says epoch 1; it starts from the newest ring the shards hold.
            #expect(try await fleet.ringEpoch(admin: "127.0.0.1:\(fleet.ports[1])") == 3)
            try await Task.sleep(for: .seconds(3))

            timer = ContinuousClock.now
            try await fleet.restartShard("s2", signal: SIGTERM)
            log("s2 SIGTERMed and restarted: \(ContinuousClock.now - timer)")
            #expect(try await fleet.ringEpoch(admin: fleet.admin("s2")) == 3, "s2 restarted with an outdated ring")
            try await Task.sleep(for: .seconds(5))

            stop.set()
            let drained = await withTaskGroup(of: Bool.self) { group in
                group.addTask { await senders.value; return true }
                group.addTask { try? await Task.sleep(for: .seconds(60)); return false }
                let first = await group.next() ?? false
                group.cancelAll()
                return first
            }
            var unacked = 0
            for client in clients { unacked += await client.unacknowledged }
            #expect(drained && unacked == 0, "\(unacked) messages still unacknowledged 60 s after the senders stopped")

            // Convergence: each room on exactly one shard, its ring owner; every client caught up with it.
            let ring = try await fleet.admin.currentRing()
            var holders: [String: [String]] = [:]
            var finalSeq: [String: UInt64] = [:]
            try await waitFor("every client caught up with its room", within: .seconds(30)) {
                holders = [:]
                finalSeq = [:]
                for shard in ring.shards {
                    for room in (try? await fleet.admin.rooms(of: shard)) ?? [] where room.room.hasPrefix("chaos-") {
                        holders[room.room, default: []].append(shard.id)
                        finalSeq[room.room] = room.seq
                    }
                }
                return recorders.allSatisfy { finalSeq[$0.room] == $0.lastSeq }
            }
            for (room, shards) in holders {
                let owner = HashRing(ring).owner(ofKey: room)?.id
                #expect(shards == [owner ?? "?"], "\(room) held by \(shards), owner \(owner ?? "none")")
            }
            #expect(ring.shard(id: "s1")?.state == .draining && ring.shard(id: "s4") != nil)

            let report = ChaosChecker.check(recorders.map(\.snapshot), finalSeq: finalSeq)
            log("checked \(report.acked) acked messages, \(report.deliveries) deliveries, \(report.connections) "
                + "connections, \(report.resets) resumed:false notices (SIGTERM'd s2's rooms): "
                + "\(report.problems.count) problems")
            #expect(report.problems.isEmpty, "\(report.problems.prefix(20).joined(separator: "\n"))")
            #expect(report.acked > clients.count, "too few messages were exchanged to mean anything")

            // SIGKILL s3, then `ring remove s3`: its rooms come back elsewhere and every member is told.
            let victim = "s3"
            let affected = recorders.filter { HashRing(ring).owner(ofKey: $0.room)?.id == victim && $0.lastSeq > 0 }
            let others = recorders.filter { HashRing(ring).owner(ofKey: $0.room)?.id != victim }
            let marks = Dictionary(uniqueKeysWithValues: recorders.map { ($0.client, $0.eventCount) })
            #expect(!affected.isEmpty)
            timer = ContinuousClock.now
            await fleet.kill(victim)
            try await fleet.ring(["remove", victim])
            try await waitFor("every member of \(victim)'s rooms told resumed: false", within: .seconds(60)) {
                affected.allSatisfy { recorder in
                    recorder.connections(after: marks[recorder.client]!).contains {
                        if case .connected(let shard, _, false) = $0 { shard != victim } else { false }
                    }
                }
            }
            log("SIGKILL \(victim) + ring remove: \(affected.count) clients resumed (false) elsewhere in "
                + "\(ContinuousClock.now - timer)")
            for recorder in others {
                #expect(recorder.connections(after: marks[recorder.client]!).isEmpty,
                        "\(recorder.client) in \(recorder.room) reconnected although its room did not move")
            }
            // They chat on: a message sent now is acknowledged and reaches the sender.
            for (client, recorder) in zip(clients, recorders) where affected.contains(where: { $0 === recorder }) {
                let text = "\(recorder.client)#after-kill"
                recorder.acked(text, seq: try await client.send(text))
            }
            let after = try await fleet.admin.currentRing()
            var afterSeq: [String: UInt64] = [:]
            try await waitFor("every client caught up after the kill", within: .seconds(30)) {
                afterSeq = [:]
                for shard in after.shards {
                    for room in (try? await fleet.admin.rooms(of: shard)) ?? [] where room.room.hasPrefix("chaos-") {
                        afterSeq[room.room] = room.seq
                    }
                }
                return recorders.allSatisfy { afterSeq[$0.room] == $0.lastSeq }
            }
            let final = ChaosChecker.check(recorders.map(\.snapshot), finalSeq: afterSeq)
            #expect(final.problems.isEmpty, "\(final.problems.prefix(20).joined(separator: "\n"))")
            #expect(final.resets >= report.resets + affected.count)
            for client in clients { await client.close() }
        }

        func waitFor(_ what: String, within timeout: Duration, _ condition: () async throws -> Bool) async throws {
            let deadline = ContinuousClock.now + timeout
            while try await !condition() {
                guard ContinuousClock.now < deadline else { throw ProcessFailure("timed out waiting: \(what)") }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }
}

/// A flag the senders poll.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

/// Four `roomring shard` processes (s4 starts outside the ring) and one `roomring proxy`, on free loopback ports.
final class ChaosFleet: Sendable {
    static let token = "chaos-token"
    let ports: [Int]
    let ringPath: String
    let admin: FleetAdmin
    private let processes = Mutex<[String: RoomRingProcess]>([:])

    init() throws {
        ports = try Self.portsBelowTheEphemeralRange(10)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("roomring-chaos-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        ringPath = directory.appendingPathComponent("ring.json").path
        admin = FleetAdmin(proxies: [HostPort(host: "127.0.0.1", port: ports[1])], token: Self.token, log: { _ in })
        let ring = RingDocument(epoch: 1, shards: ["s1", "s2", "s3"].map { id in
            .init(id: id, address: Self.address(id, ports), admin: Self.admin(id, ports))
        })
        try ring.encoded().write(to: URL(fileURLWithPath: ringPath))
    }

    /// Free ports under 32768. The proxy and s2 are restarted on their ports while thousands of clients reconnect,
    /// and a client socket given one of them as its ephemeral port (32768-60999) would make the restart fail.
    static func portsBelowTheEphemeralRange(_ count: Int) throws -> [Int] {
        for _ in 0..<200 {
            let base = Int.random(in: 20_000..<(32_000 - count))
            let ports = Array(base..<(base + count))
            if ports.allSatisfy(canBind) { return ports }
        }
        throw ProcessFailure("no block of \(count) free ports under 32000")
    }

    static func index(_ id: String) -> Int { Int(id.dropFirst())! }
    static func address(_ id: String, _ ports: [Int]) -> String { "127.0.0.1:\(ports[2 * index(id)])" }
    static func admin(_ id: String, _ ports: [Int]) -> String { "127.0.0.1:\(ports[2 * index(id) + 1])" }
    func address(_ id: String) -> String { Self.address(id, ports) }
    func admin(_ id: String) -> String { Self.admin(id, ports) }

    private func launch(_ name: String, _ arguments: [String]) throws -> RoomRingProcess {
        let process = try RoomRingProcess(arguments, environment: ["ROOMRING_ADMIN_TOKEN": Self.token])
        processes.withLock { $0[name] = process }
        return process
    }

    func startShard(_ id: String) async throws {
        _ = try launch(id, ["shard", "--id", id, "--ring", ringPath, "--port", address(id), "--admin-port", admin(id),
                            "--event-loops", "1", "--log-level", "warning", "--rate", "1000", "--burst", "1000",
                            "--handoff-wait", "2"])
        try await waitListening(HostPort(admin(id))!.port, what: id)
    }

    func startProxy() async throws {
        _ = try launch("proxy", ["proxy", "--ring", ringPath, "--port", String(ports[0]), "--admin-port",
                                 String(ports[1]), "--event-loops", "1", "--log-level", "warning",
                                 "--drain-timeout", "1", "--health-interval", "0.5"])
        try await waitListening(ports[1], what: "proxy")
    }

    private func waitListening(_ port: Int, what: String) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while await !isListening(port) {
            guard ContinuousClock.now < deadline else { throw ProcessFailure("\(what) did not start") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// SIGTERM the proxy, wait for it to exit, start it again on the same ports from the (outdated) ring file.
    func restartProxy() async throws {
        let old = processes.withLock { $0["proxy"] }
        _ = await old?.stop(SIGTERM)
        try await startProxy()
    }

    func restartShard(_ id: String, signal: Int32) async throws {
        let old = processes.withLock { $0[id] }
        _ = await old?.stop(signal)
        try await startShard(id)
    }

    func kill(_ id: String) async {
        guard let process = processes.withLock({ $0[id] }) else { return }
        _ = await process.stop(SIGKILL)
    }

    /// The epoch of the ring the process with this admin address holds.
    func ringEpoch(admin address: String) async throws -> UInt64 {
        let admin = HostPort(address)!
        let response = try await HTTPClient.request("GET", host: admin.host, port: admin.port, path: "/ring",
                                                    headers: [("Authorization", "Bearer \(Self.token)")])
        return try RingDocument.decode(response.body).epoch
    }

    /// Runs `roomring ring ...` against the proxy; throws with its output unless it exits 0.
    func ring(_ arguments: [String]) async throws {
        let process = try RoomRingProcess(["ring"] + arguments + ["--proxy-admin", "http://127.0.0.1:\(ports[1])"],
                                          environment: ["ROOMRING_ADMIN_TOKEN": Self.token])
        let status = await process.stop(0, timeout: .seconds(90))
        guard status == 0 else {
            throw ProcessFailure("roomring ring \(arguments.joined(separator: " ")): \(process.text)")
        }
    }

    func client(for recorder: ChaosRecorder) -> RoomClient {
        RoomClient(host: "127.0.0.1", port: ports[0], room: RoomID(recorder.room)!,
                   options: .init(name: recorder.client, clientID: recorder.client, backoffBase: .milliseconds(100),
                                  backoffMax: .seconds(2)),
                   onMessage: { recorder.delivered(seq: $0.seq, text: $0.message) },
                   onState: { recorder.state($0) })
    }

    func stopAll() {
        let all = processes.withLock { Array($0.values) }
        for process in all where process.process.isRunning {
            Foundation.kill(process.process.processIdentifier, SIGKILL)
        }
    }
}

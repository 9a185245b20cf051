import Foundation
import RoomRingClient
import RoomRingCore

/// What adding and draining a shard mid-run did in one design.
public struct RebalanceOutcome: Sendable {
    public var mode: ScalingMode
    public var members: Int
    public var rooms: Int
    /// Rooms whose ring owner changed when s3 joined, and the members they held (pub/sub rooms have no owner).
    public var roomsMoved: Int
    public var membersInMovedRooms: Int
    /// Members that reconnected between the add and the drain, and how many sat on s3 before the drain.
    public var addReconnects: Int
    public var onNewShard: Int
    /// Ring push → s1 holds no rooms, and → every member connected elsewhere (seconds).
    public var drainEmptySeconds: Double
    public var drainSettledSeconds: Double
    public var drainReconnects: Int
    /// Reconnect times (connection lost → next `hello`) over both phases, in ms.
    public var reconnectP50: Double?
    public var reconnectP99: Double?
    public var acked: Int
    public var deliveries: Int
    public var lost: Int
    public var duplicated: Int
    public var resets: Int
    public var unacknowledged: Int
    public var caughtUp: Bool
}

/// `bench compare`'s third workload: 2 shards behind a proxy, members in rooms chatting through `RoomClient`; s3 is
/// added to the ring, then s1 is drained (`FleetAdmin`, as `roomring ring add` / `drain --wait` do). Sticky moves
/// the rooms that change owner, with their state; pub/sub moves nobody on add, and on drain sends s1's members to
/// the other shards, which resume them from Redis.
enum CompareRebalance {
    static func run(_ options: RebalanceBenchmark.Options, log: @escaping @Sendable (String) -> Void) async throws
        -> RebalanceOutcome
    {
        var options = options
        options.spareShard = true
        ProxyBenchChildren.shared.installSignalHandlers()
        let fleet = try await RebalanceFleet.start(options, log: log)
        do {
            let outcome = try await measure(options, fleet: fleet, log: log)
            await fleet.stop()
            return outcome
        } catch {
            await fleet.stop()
            throw error
        }
    }

    private static func measure(_ options: RebalanceBenchmark.Options, fleet: RebalanceFleet,
                                log: @escaping @Sendable (String) -> Void) async throws -> RebalanceOutcome {
        guard let spare = fleet.spare else { throw ProxyBenchError("no spare shard") }
        let roomIDs = (0..<options.rooms).map { RoomID("compare-\($0)")! }
        let members = (0..<options.connections).map { i in
            DrainMember(index: i, room: roomIDs[i % roomIDs.count], proxy: fleet.proxyPorts[i % fleet.proxyPorts.count])
        }
        for member in members { await member.client.start() }
        try await RebalanceBenchmark.waitUntil("every member connected", timeout: .seconds(300), log: log) {
            members.allSatisfy { $0.recorder.connectedShard != nil }
        }
        log("\(options.mode.rawValue): \(members.count) members connected in \(roomIDs.count) rooms")
        let senders = Array(members.prefix(roomIDs.count))
        let sending = RebalanceBenchmark.startSending(senders, rate: options.rate)
        try await Task.sleep(for: .seconds(2))

        let admin = FleetAdmin(proxies: fleet.proxyAdmins, token: fleet.token, log: { _ in })
        let before = HashRing(fleet.ring)
        let afterAdd = try fleet.ring.applying(.add(spare))
        let moved = options.mode == .sticky
            ? roomIDs.filter { before.owner(of: $0)?.id != HashRing(afterAdd).owner(of: $0)?.id } : []
        let addStart = ContinuousClock.now
        try await admin.change(.add(spare), dryRun: false, wait: nil)
        try await settle(members, log: log)
        let onNewShard = members.filter { $0.recorder.connectedShard == spare.id }.count
        log("\(options.mode.rawValue): s3 added; \(moved.count) rooms moved, \(onNewShard) members on s3")

        let drainStart = ContinuousClock.now
        try await admin.change(.drain(id: "s1"), dryRun: false, wait: (shard: "s1", timeout: 300))
        let emptied = ContinuousClock.now - drainStart
        try await RebalanceBenchmark.waitUntil("every member off s1", timeout: .seconds(300), log: log) {
            members.allSatisfy { $0.recorder.connectedShard.map { $0 != "s1" } ?? false }
        }
        let settled = ContinuousClock.now - drainStart
        log("\(options.mode.rawValue): s1 drained in \(emptied.seconds) s, every member elsewhere after \(settled.seconds) s")
        try await Task.sleep(for: .seconds(2))
        for member in senders { member.stopFlag.set() }
        await sending.value
        var unacked = 0
        for member in members { unacked += await member.client.unacknowledged }

        // Catch-up: every member reaches its room's final seq (the highest any active shard reports).
        var finalSeq: [String: UInt64] = [:]
        let active = try fleet.ring.applying(.add(spare)).applying(.drain(id: "s1")).shards.filter { $0.state == .active }
        let caughtUp = (try? await RebalanceBenchmark.waitUntil("every member caught up", timeout: .seconds(60),
                                                                log: log) {
            finalSeq = [:]
            for shard in active {
                for room in (try? await admin.rooms(of: shard)) ?? [] {
                    finalSeq[room.room] = max(finalSeq[room.room] ?? 0, room.seq)
                }
            }
            return members.allSatisfy { finalSeq[$0.room.rawValue] == $0.recorder.lastSeq }
        }) != nil
        let tally = DrainTally(members: members, finalSeq: finalSeq)
        let end = ContinuousClock.now
        let addWaits = members.flatMap { $0.recorder.reconnects(from: addStart, to: drainStart) }
        let drainWaits = members.flatMap { $0.recorder.reconnects(from: drainStart, to: end) }
        let waits = (addWaits + drainWaits).map { Double($0.milliseconds) }.sorted()
        for member in members { await member.client.close() }
        func percentile(_ p: Double) -> Double? { waits.isEmpty ? nil : waits[min(waits.count - 1, Int(Double(waits.count) * p))] }
        return RebalanceOutcome(
            mode: options.mode, members: members.count, rooms: roomIDs.count, roomsMoved: moved.count,
            membersInMovedRooms: members.filter { moved.contains($0.room) }.count, addReconnects: addWaits.count,
            onNewShard: onNewShard, drainEmptySeconds: Double(emptied.milliseconds) / 1000,
            drainSettledSeconds: Double(settled.milliseconds) / 1000, drainReconnects: drainWaits.count,
            reconnectP50: percentile(0.5), reconnectP99: percentile(0.99), acked: tally.acked,
            deliveries: tally.deliveries, lost: tally.lost, duplicated: tally.duplicated, resets: tally.resets,
            unacknowledged: unacked, caughtUp: caughtUp)
    }

    /// Waits until every member is connected and none has reconnected for a second (60 s at most), then 2 s more.
    private static func settle(_ members: [DrainMember], log: @escaping @Sendable (String) -> Void) async throws {
        try await Task.sleep(for: .seconds(1))
        var quietSince = ContinuousClock.now
        try await RebalanceBenchmark.waitUntil("members settled after the add", timeout: .seconds(60), log: log) {
            if !members.allSatisfy({ $0.recorder.connectedShard != nil }) { quietSince = ContinuousClock.now }
            return ContinuousClock.now - quietSince > .seconds(1)
        }
        try await Task.sleep(for: .seconds(2))
    }
}

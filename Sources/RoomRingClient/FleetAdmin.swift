import Foundation
import RoomRingCore

/// Talks to a running fleet's admin APIs: reads the ring from a proxy, the rooms from every shard, and pushes
/// new rings. `roomring ring ...` is a thin layer over this.
public struct FleetAdmin: Sendable {
    /// A failed admin call, worded for an operator.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// One room as a shard's `GET /rooms` lists it.
    public struct Room: Codable, Sendable, Hashable {
        public var room: String
        public var members: Int
        public var seq: UInt64
    }

    struct RoomsReply: Codable { var shard: String; var epoch: UInt64; var rooms: [Room] }
    struct ShardsReply: Codable { var shards: [ShardHealth] }
    struct ShardHealth: Codable { var id: String; var healthy: Bool; var tunnels: Int }

    public var proxies: [HostPort]
    public var token: String?
    /// Where progress lines go.
    public var log: @Sendable (String) -> Void

    public init(proxies: [HostPort], token: String?, log: @escaping @Sendable (String) -> Void = { print($0) }) {
        self.proxies = proxies
        self.token = token
        self.log = log
    }

    /// `http://host:port` or `host:port` → host:port.
    public static func address(ofURL text: String) throws -> HostPort {
        var trimmed = text
        if let range = trimmed.range(of: "://") { trimmed = String(trimmed[range.upperBound...]) }
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let address = HostPort(trimmed) else { throw Failure(description: "\"\(text)\" is not an admin URL") }
        return address
    }

    private var auth: [(String, String)] { token.map { [("Authorization", "Bearer \($0)")] } ?? [] }

    private func call(_ method: String, _ address: HostPort, _ path: String, body: [UInt8] = []) async throws
        -> HTTPClient.Response
    {
        do {
            return try await HTTPClient.request(method, host: address.host, port: address.port, path: path,
                                                headers: auth, body: body, timeout: .seconds(5))
        } catch {
            throw Failure(description: "\(address)\(path): \(error)")
        }
    }

    /// The ring the first reachable proxy holds.
    public func currentRing() async throws -> RingDocument {
        var problems: [String] = []
        for proxy in proxies {
            do {
                let response = try await call("GET", proxy, "/ring")
                guard response.status == 200 else {
                    problems.append("\(proxy): \(response.status) \(response.text.prefix(200))")
                    continue
                }
                return try RingDocument.decode(response.body)
            } catch {
                problems.append("\(error)")
            }
        }
        throw Failure(description: "no proxy answered GET /ring (\(problems.joined(separator: "; ")))"
            + (token == nil ? "; no admin token given (--admin-token or ROOMRING_ADMIN_TOKEN)" : ""))
    }

    /// The rooms shard `shard` holds now.
    public func rooms(of shard: RingDocument.Shard) async throws -> [Room] {
        guard let admin = HostPort(shard.admin) else { throw Failure(description: "bad admin address \(shard.admin)") }
        let response = try await call("GET", admin, "/rooms")
        guard response.status == 200 else { throw Failure(description: "\(shard.id) /rooms: \(response.status)") }
        return try JSONDecoder().decode(RoomsReply.self, from: Data(response.body)).rooms
    }

    /// A table of every shard: state, share of the ring, rooms, members, health as the proxy sees it.
    public func statusTable(_ ring: RingDocument) async throws -> String {
        let shares = HashRing(ring).shares()
        var health: [String: ShardHealth] = [:]
        if let proxy = proxies.first, let response = try? await call("GET", proxy, "/shards"), response.status == 200,
            let reply = try? JSONDecoder().decode(ShardsReply.self, from: Data(response.body)) {
            for shard in reply.shards { health[shard.id] = shard }
        }
        var out = "ring epoch \(ring.epoch), \(ring.vnodes) vnodes\n"
        out += "  shard  address            state     share   rooms  members  health   tunnels\n"
        for shard in ring.shards {
            let rooms = try? await self.rooms(of: shard)
            let columns: [String] = [
                shard.id.padding(toLength: 7, withPad: " ", startingAt: 0),
                shard.address.padding(toLength: 19, withPad: " ", startingAt: 0),
                shard.state.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0),
                String(format: "%5.1f%%  ", (shares[shard.id] ?? 0) * 100),
                (rooms.map { String($0.count) } ?? "?").padding(toLength: 7, withPad: " ", startingAt: 0),
                (rooms.map { String($0.reduce(0) { $0 + $1.members }) } ?? "?").padding(toLength: 9, withPad: " ",
                                                                                         startingAt: 0),
                (health[shard.id].map { $0.healthy ? "up" : "DOWN" } ?? "?").padding(toLength: 9, withPad: " ",
                                                                                     startingAt: 0),
                health[shard.id].map { String($0.tunnels) } ?? "?",
            ]
            out += "  " + columns.joined() + "\n"
        }
        return out
    }

    /// Applies `change`: prints the rooms that move; unless `dryRun`, pushes the next ring to every shard, then to
    /// every proxy, and with `wait` polls the named shard until it holds no rooms.
    public func change(_ change: RingChange, dryRun: Bool, wait: (shard: String, timeout: Double)?) async throws {
        let ring = try await currentRing()
        let next: RingDocument
        do { next = try ring.applying(change) } catch { throw Failure(description: "\(error)") }
        if case .add(let shard) = change {
            guard let admin = HostPort(shard.admin), (try? await call("GET", admin, "/healthz"))?.status == 200 else {
                throw Failure(description: "shard \(shard.id) does not answer at \(shard.admin); start it first")
            }
        }
        var held: [(room: RoomID, holder: String, members: Int)] = []
        for shard in ring.shards {
            guard let rooms = try? await rooms(of: shard) else {
                log("warning: could not list rooms of \(shard.id); its moves are not counted")
                continue
            }
            held += rooms.compactMap { room in RoomID(room.room).map { ($0, shard.id, room.members) } }
        }
        let moves = HashRing(ring).moves(to: HashRing(next), rooms: held)
        let members = moves.reduce(0) { $0 + $1.members }
        log("epoch \(ring.epoch) → \(next.epoch): \(moves.count) of \(held.count) rooms move (\(members) members)")
        for move in moves.prefix(20) { log("  \(move.room)  \(move.from) → \(move.to)  \(move.members) members") }
        if moves.count > 20 { log("  … and \(moves.count - 20) more") }
        if dryRun { return }

        // Order: the shards that gain rooms, then the proxies, then the shards that lose rooms. Members of a moving
        // room reconnect once its old owner has handed it off; by then the proxies route them straight to the new
        // owner, which already knows the ring (otherwise: a 421 from the new owner with an older epoch, and a retry).
        let all = Dictionary((ring.shards + next.shards).map { ($0.id, $0) }, uniquingKeysWith: { $1 }).values
            .sorted { $0.id < $1.id }
        let losing: Set<String>
        switch change {
        case .add(let shard): losing = Set(all.map(\.id)).subtracting([shard.id])
        case .drain(let id), .remove(let id): losing = [id]
        }
        let body = Array(next.encoded())
        try await push(body, next, to: all.filter { !losing.contains($0.id) })
        for proxy in proxies {
            let result = try await call("PUT", proxy, "/ring", body: body)
            if result.status == 409, let held = try? await call("GET", proxy, "/ring"), held.status == 200,
                let document = try? RingDocument.decode(held.body), document == next
            {
                // A client's reconnect already made it fetch this ring from a shard (the 421 path).
                log("  proxy \(proxy) already has epoch \(next.epoch)")
                continue
            }
            guard result.status == 200 else {
                throw Failure(description: "proxy \(proxy) refused the ring: \(result.status) \(result.text)")
            }
            log("  pushed epoch \(next.epoch) to proxy \(proxy)")
        }
        try await push(body, next, to: all.filter { losing.contains($0.id) })
        if let wait, let shard = next.shard(id: wait.shard) {
            try await waitUntilEmpty(shard, timeout: wait.timeout)
        }
    }

    private func push(_ body: [UInt8], _ next: RingDocument, to shards: [RingDocument.Shard]) async throws {
        for shard in shards {
            guard let admin = HostPort(shard.admin) else { continue }
            let result = try? await call("PUT", admin, "/ring", body: body)
            let removed = next.shard(id: shard.id) == nil
            let status = result.map { String($0.status) } ?? "unreachable"
            switch result?.status {
            case 200: log("  pushed epoch \(next.epoch) to shard \(shard.id)")
            case _ where removed: log("  shard \(shard.id) (removed) did not take the ring: \(status)")
            default:
                throw Failure(description: "shard \(shard.id) refused the ring: \(status) \(result?.text ?? "")")
            }
        }
    }

    /// Polls until `shard` holds no rooms, printing progress each second.
    public func waitUntilEmpty(_ shard: RingDocument.Shard, timeout: Double) async throws {
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
        var lastReport = ContinuousClock.now - .seconds(1)
        while true {
            let rooms = try await self.rooms(of: shard)
            if rooms.isEmpty {
                log("shard \(shard.id) holds no rooms")
                return
            }
            if ContinuousClock.now - lastReport >= .seconds(1) {
                log("  \(shard.id): \(rooms.count) rooms, \(rooms.reduce(0) { $0 + $1.members }) members left")
                lastReport = ContinuousClock.now
            }
            guard ContinuousClock.now < deadline else {
                throw Failure(description: "shard \(shard.id) still holds \(rooms.count) rooms after \(timeout) s")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

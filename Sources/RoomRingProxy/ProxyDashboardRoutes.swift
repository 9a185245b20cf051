import Foundation
import NIOCore
import NIOHTTP1
import RoomRingClient
import RoomRingCore
import RoomRingHTTP
import Synchronization

/// The ring dashboard on the proxy's admin port: the page at `GET /admin` (no token: it holds no data), and the
/// token-protected API it polls and acts through:
///
/// - `GET /fleet`: every shard with its state, health, tunnels, share of the ring, rooms, members and message
///   counters (from each shard's admin API), plus the ring as arcs for drawing.
/// - `POST /ring/add` `{"id","address","admin","weight"}`, `POST /ring/drain` `{"id"}`, `POST /ring/remove`
///   `{"id"}` (optional `"dryRun": true`): the same change as `roomring ring add | drain | remove`, made by
///   ``FleetAdmin`` against this proxy: the next ring goes to every shard, then to this proxy. Other proxies
///   converge through the shards' 421 answers.
enum ProxyDashboardRoutes {
    /// The answer for a dashboard route, or nil when `request` is not one.
    static func route(_ request: HTTPRequest, proxy: ProxyContext, channel: any Channel)
        -> EventLoopFuture<HTTPResponse>?
    {
        let loop = channel.eventLoop
        let method = request.head.method
        let change: String? = switch request.path {
        case "/ring/add": "add"
        case "/ring/drain": "drain"
        case "/ring/remove": "remove"
        default: nil
        }
        switch request.path {
        case "/admin", "/admin/":
            guard method == .GET || method == .HEAD else { return loop.makeSucceededFuture(methodNotAllowed) }
            return loop.makeSucceededFuture(DashboardPage.response())
        case "/fleet":
            guard method == .GET else { return loop.makeSucceededFuture(methodNotAllowed) }
            if let refusal = AdminAuth.check(request.head, token: proxy.configuration.adminToken, write: false) {
                return loop.makeSucceededFuture(refusal)
            }
            let promise = loop.makePromise(of: HTTPResponse.self)
            promise.completeWithTask { await fleet(proxy: proxy) }
            return promise.futureResult
        case _ where change != nil:
            guard method == .POST, let change else { return loop.makeSucceededFuture(methodNotAllowed) }
            if let refusal = AdminAuth.check(request.head, token: proxy.configuration.adminToken, write: true) {
                return loop.makeSucceededFuture(refusal)
            }
            let promise = loop.makePromise(of: HTTPResponse.self)
            let local = channel.localAddress
            promise.completeWithTask { await apply(change, body: request.body, proxy: proxy, local: local) }
            return promise.futureResult
        default:
            return nil
        }
    }

    static let methodNotAllowed = HTTPResponse.error(.methodNotAllowed, code: "method_not_allowed",
                                                     "method not allowed here")

    // MARK: - GET /fleet

    struct FleetReply: Codable {
        var epoch: UInt64
        var vnodes: Int
        var balance: String
        var shards: [Shard]
        var arcs: [RingArc]

        struct Shard: Codable {
            var id: String
            var address: String
            var admin: String
            var weight: Int
            var state: String
            var healthy: Bool
            var tunnels: Int
            var share: Double
            /// nil when the shard's admin API did not answer (see `error`).
            var roomCount: Int?
            var members: Int?
            /// The busiest rooms, at most ``roomLimit``.
            var rooms: [FleetAdmin.Room]?
            /// Counters from the shard's `/metrics`; the dashboard turns them into rates.
            var messagesIn: Double?
            var messagesOut: Double?
            var connections: Double?
            var error: String?
        }
    }

    static let roomLimit = 50

    static func fleet(proxy: ProxyContext) async -> HTTPResponse {
        let ring = proxy.ring
        let shares = ring.shares()
        let statuses = Dictionary(proxy.shardStatuses().map { ($0.id, $0) }, uniquingKeysWith: { $1 })
        let token = proxy.configuration.adminToken
        let shards = await withTaskGroup(of: (Int, FleetReply.Shard).self) { group in
            for (index, shard) in ring.document.shards.enumerated() {
                let status = statuses[shard.id]
                group.addTask {
                    var row = FleetReply.Shard(id: shard.id, address: shard.address, admin: shard.admin,
                                               weight: shard.weight, state: shard.state.rawValue,
                                               healthy: status?.healthy ?? false, tunnels: status?.tunnels ?? 0,
                                               share: shares[shard.id] ?? 0)
                    await fill(&row, shard: shard, token: token)
                    return (index, row)
                }
            }
            var rows: [(Int, FleetReply.Shard)] = []
            for await row in group { rows.append(row) }
            return rows.sorted { $0.0 < $1.0 }.map(\.1)
        }
        let reply = FleetReply(epoch: ring.epoch, vnodes: ring.document.vnodes,
                               balance: proxy.configuration.balance.rawValue, shards: shards, arcs: ring.arcs())
        return .json(JSONCoding.encode(reply))
    }

    /// Adds what the shard's own admin API says: rooms and metrics. Failures are shown, not fatal.
    private static func fill(_ row: inout FleetReply.Shard, shard: RingDocument.Shard, token: String?) async {
        do {
            let rooms = try await FleetAdmin(proxies: [], token: token).rooms(of: shard)
            row.roomCount = rooms.count
            row.members = rooms.reduce(0) { $0 + $1.members }
            row.rooms = Array(rooms.sorted { ($0.members, $1.room) > ($1.members, $0.room) }.prefix(roomLimit))
        } catch {
            row.error = "\(error)"
        }
        guard let admin = HostPort(shard.admin),
            let metrics = try? await HTTPClient.request(
                "GET", host: admin.host, port: admin.port, path: "/metrics",
                headers: token.map { [("Authorization", "Bearer \($0)")] } ?? [], timeout: .seconds(2)),
            metrics.status == 200
        else { return }
        let text = metrics.text
        row.messagesIn = sample(text, "roomring_shard_messages_in_total")
        row.messagesOut = sample(text, "roomring_shard_messages_out_total")
        row.connections = sample(text, "roomring_shard_connections")
    }

    /// The sum of a metric's samples in Prometheus text (shards label theirs with `shard`).
    static func sample(_ text: String, _ name: String) -> Double? {
        var total: Double?
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") || line.hasPrefix(name + "{") {
            guard let value = line.split(separator: " ").last.flatMap({ Double($0) }) else { continue }
            total = (total ?? 0) + value
        }
        return total
    }

    // MARK: - POST /ring/{add,drain,remove}

    struct ChangeRequest: Codable {
        var id: String
        var address: String?
        var admin: String?
        var weight: Int?
        var dryRun: Bool?
    }

    struct ChangeReply: Codable {
        var epoch: UInt64
        var dryRun: Bool
        var log: [String]
    }

    static func apply(_ kind: String, body: ByteBuffer, proxy: ProxyContext, local: SocketAddress?) async
        -> HTTPResponse
    {
        guard let request = try? JSONDecoder().decode(ChangeRequest.self, from: Data(body.readableBytesView)),
            !request.id.isEmpty
        else {
            return .error(.badRequest, code: "bad_request", "body must be JSON with at least \"id\"")
        }
        let change: RingChange
        switch kind {
        case "add":
            guard let address = request.address, HostPort(address) != nil, let admin = request.admin,
                HostPort(admin) != nil
            else {
                return .error(.badRequest, code: "bad_request", "add needs \"address\" and \"admin\" as host:port")
            }
            change = .add(RingDocument.Shard(id: request.id, address: address, admin: admin,
                                             weight: request.weight ?? 1))
        case "drain": change = .drain(id: request.id)
        default: change = .remove(id: request.id)
        }
        // This proxy's admin API, as the client reached it: FleetAdmin reads the ring here and pushes it back here.
        guard let local, let host = local.ipAddress, let port = local.port else {
            return .error(.internalServerError, code: "internal", "cannot tell this proxy's admin address")
        }
        let lines = Mutex<[String]>([])
        let admin = FleetAdmin(proxies: [HostPort(host: host, port: port)], token: proxy.configuration.adminToken,
                               log: { line in lines.withLock { $0.append(line) } })
        do {
            try await admin.change(change, dryRun: request.dryRun ?? false, wait: nil)
        } catch {
            return .error(.conflict, code: "ring_change_failed", "\(error)")
        }
        let reply = ChangeReply(epoch: proxy.ring.epoch, dryRun: request.dryRun ?? false,
                                log: lines.withLock { $0 })
        return .json(JSONCoding.encode(reply))
    }
}

/// The dashboard page (its HTML is in `DashboardPage+HTML.swift`).
enum DashboardPage {
    static let html: [UInt8] = Array(source.utf8)

    static func response() -> HTTPResponse {
        var response = HTTPResponse(.ok, body: ByteBuffer(bytes: html), contentType: "text/html; charset=utf-8")
        response.headers.replaceOrAdd(name: "Cache-Control", value: "no-cache")
        // The page talks to this admin API only; say so to the browser too.
        response.headers.replaceOrAdd(name: "Content-Security-Policy",
                                      value: "default-src 'none'; script-src 'unsafe-inline'; "
                                          + "style-src 'unsafe-inline'; connect-src 'self'; img-src data:")
        response.headers.replaceOrAdd(name: "Referrer-Policy", value: "no-referrer")
        return response
    }
}

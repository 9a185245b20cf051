import NIOCore
import NIOHTTP1
import RoomRingCore

/// The shard's admin API (loopback by default, bearer token): `GET /ring`, `PUT /ring`, `GET /rooms`.
enum AdminRoutes {
    static func router(shard: ShardContext, hub: RoomHub) -> HTTPRouter {
        { request, channel in
            let loop = channel.eventLoop
            if request.path == "/healthz" { return loop.makeSucceededFuture(.text("ok\n")) }
            if let refusal = AdminAuth.check(request.head, token: shard.configuration.adminToken,
                                             write: request.head.method != .GET) {
                return loop.makeSucceededFuture(refusal)
            }
            switch (request.head.method, request.path) {
            case (.GET, "/ring"):
                return loop.makeSucceededFuture(.json(String(decoding: shard.ring.document.encoded(), as: UTF8.self)))
            case (.PUT, "/ring"):
                return loop.makeSucceededFuture(putRing(request, shard: shard))
            case (.GET, "/rooms"):
                return hub.snapshot().map { rooms in
                    let body = RoomsReply(shard: shard.configuration.id, epoch: shard.ring.epoch, rooms: rooms)
                    return .json(JSONCoding.encode(body))
                }
            case (.GET, "/metrics"):
                return loop.makeSucceededFuture(HTTPResponse(.ok, body: ByteBuffer(bytes: shard.metrics.render()),
                                                             contentType: "text/plain; version=0.0.4"))
            case (_, "/ring"), (_, "/rooms"):
                return loop.makeSucceededFuture(ShardRoutes.methodNotAllowed)
            default:
                return loop.makeSucceededFuture(.error(.notFound, code: "not_found", "no such admin endpoint"))
            }
        }
    }

    static func putRing(_ request: HTTPRequest, shard: ShardContext) -> HTTPResponse {
        do {
            let document = try RingDocument.decode(request.body.readableBytesView)
            try shard.install(document)
            return .json(String(decoding: document.encoded(), as: UTF8.self))
        } catch {
            let status: HTTPResponseStatus = error.code == "stale_epoch" ? .conflict : .badRequest
            return .error(status, code: error.code, error.description)
        }
    }

    struct RoomsReply: Codable {
        var shard: String
        var epoch: UInt64
        var rooms: [RoomSnapshot]
    }
}

/// Bearer-token checks shared by every admin API.
enum AdminAuth {
    /// nil when allowed, else the refusal. Without a configured token, reads are open and writes refused.
    static func check(_ head: HTTPRequestHead, token: String?, write: Bool) -> HTTPResponse? {
        guard let token, !token.isEmpty else {
            return write ? .error(.forbidden, code: "no_admin_token",
                                  "this process was started without an admin token; writes are disabled") : nil
        }
        let offered = head.headers.first(name: "authorization") ?? ""
        guard offered.hasPrefix("Bearer "), constantTimeEqual(Array(offered.utf8.dropFirst(7)), Array(token.utf8))
        else {
            return .error(.unauthorized, code: "unauthorized", "missing or wrong bearer token",
                          headers: ["WWW-Authenticate": "Bearer"])
        }
        return nil
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}

import Foundation
import NIOCore
import Prometheus
import RoomRingHTTP
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
                let response = putRing(request, shard: shard)
                if response.status == .ok { hub.rebalance() }
                return loop.makeSucceededFuture(response)
            case (.POST, "/handoff"):
                guard let handoff = try? JSONDecoder().decode(RoomHandoff.self, from: Data(request.body.readableBytesView))
                else {
                    return loop.makeSucceededFuture(.error(.badRequest, code: "bad_handoff", "body is not a room handoff"))
                }
                return hub.receiveHandoff(handoff).map { accepted in
                    if accepted { shard.metrics.handoffsReceived.increment() }
                    return accepted ? .json("{\"accepted\":true}")
                        : .error(.conflict, code: "newer_state", "this shard already has newer state for the room")
                }
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


import NIOCore
import NIOHTTP1
import RoomRingCore
import RoomRingHTTP

/// The proxy's admin API (loopback by default, bearer token): `GET /ring`, `PUT /ring`, `GET /shards`.
enum ProxyAdminRoutes {
    static func router(proxy: ProxyContext) -> HTTPRouter {
        { request, channel in
            ProxyDashboardRoutes.route(request, proxy: proxy, channel: channel)
                ?? channel.eventLoop.makeSucceededFuture(route(request, proxy: proxy))
        }
    }

    static func route(_ request: HTTPRequest, proxy: ProxyContext) -> HTTPResponse {
        if request.path == "/healthz" { return .text("ok\n") }
        if let refusal = AdminAuth.check(request.head, token: proxy.configuration.adminToken,
                                         write: request.head.method != .GET) {
            return refusal
        }
        switch (request.head.method, request.path) {
        case (.GET, "/ring"):
            return .json(String(decoding: proxy.ring.document.encoded(), as: UTF8.self))
        case (.PUT, "/ring"):
            do {
                let document = try RingDocument.decode(request.body.readableBytesView)
                try proxy.install(document)
                return .json(String(decoding: document.encoded(), as: UTF8.self))
            } catch {
                return .error(error.code == "stale_epoch" ? .conflict : .badRequest, code: error.code,
                              error.description)
            }
        case (.GET, "/shards"):
            return .json(JSONCoding.encode(ShardsReply(epoch: proxy.ring.epoch, balance: proxy.configuration.balance.rawValue,
                                                       shards: proxy.shardStatuses())))
        case (.GET, "/metrics"):
            return HTTPResponse(.ok, body: ByteBuffer(bytes: proxy.metrics.render(shards: proxy.shardStatuses())),
                                contentType: "text/plain; version=0.0.4")
        case (_, "/ring"), (_, "/shards"):
            return .error(.methodNotAllowed, code: "method_not_allowed", "method not allowed here")
        default:
            return .error(.notFound, code: "not_found", "no such admin endpoint")
        }
    }

    struct ShardsReply: Codable {
        var epoch: UInt64
        var balance: String
        var shards: [ProxyContext.ShardStatus]
    }
}

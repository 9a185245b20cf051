import Foundation
import NIOCore
import RoomRingHTTP
import Prometheus
import NIOHTTP1
import RoomRingCore

/// Plain-HTTP answers on the shard's client port: the demo page, health, metrics, and refusals of bad upgrades.
enum ShardRoutes {
    static func router(shard: ShardContext) -> HTTPRouter {
        { request, channel in
            channel.eventLoop.makeSucceededFuture(route(request, shard: shard))
        }
    }

    static func route(_ request: HTTPRequest, shard: ShardContext) -> HTTPResponse {
        let path = request.path
        switch path {
        case "/healthz":
            return .text("ok\n")
        case "/readyz":
            return shard.isReady ? .text("ready\n") : .text("not ready\n", status: .serviceUnavailable)
        case "/metrics":
            return HTTPResponse(.ok, body: ByteBuffer(bytes: shard.metrics.render()),
                                contentType: "text/plain; version=0.0.4")
        case "/", "/index.html", "/roomring.js":
            guard request.head.method == .GET || request.head.method == .HEAD else { return methodNotAllowed }
            return WebAssets.response(for: path)
        default:
            break
        }
        if path == "/ws" || path.hasPrefix("/rooms/") {
            shard.metrics.rejectedUpgrades.increment()
            switch UpgradeDecision.decide(request.head, shard: shard) {
            case .reject(let response): return response
            case .upgrade:
                // Everything but the join rate limit allowed it.
                return UpgradeDecision.busy
            }
        }
        return .error(.notFound, code: "not_found", "no such endpoint: \(path)")
    }

    static let methodNotAllowed = HTTPResponse.error(.methodNotAllowed, code: "method_not_allowed",
                                                     "method not allowed here")
}

/// Files served from the shard's resources.
enum WebAssets {
    static let index: [UInt8] = load("index.html")

    static func load(_ name: String) -> [UInt8] {
        guard let url = Bundle.module.url(forResource: "Resources/\(name)", withExtension: nil)
            ?? Bundle.module.url(forResource: name, withExtension: nil),
            let data = try? Data(contentsOf: url)
        else { return Array("missing asset \(name)\n".utf8) }
        return Array(data)
    }
}

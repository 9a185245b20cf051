import NIOHTTP1
import RoomRingHTTP
import RoomRingCore

/// Whether a request to the shard's client port becomes a room member, and if not, the documented answer.
/// Used both by the WebSocket upgrader (to accept) and by the HTTP router (to explain a refusal).
enum UpgradeDecision {
    case upgrade(WebSocketRoomHandler.Request)
    case reject(HTTPResponse)

    static let maxNameLength = 64

    /// The answer when only the shard-wide join rate limit stands in the way (taken in `shouldUpgrade`, once per
    /// handshake, so deciding stays free of side effects).
    static let busy = HTTPResponse.error(.serviceUnavailable, code: "busy", "too many joins per second; retry shortly",
                                         headers: ["Retry-After": "1"])

    static func decide(_ head: HTTPRequestHead, shard: ShardContext) -> UpgradeDecision {
        let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts.first ?? "")
        var room: RoomID?
        if path != "/ws" {
            switch RoomPath.parse(path) {
            case .noRoom:
                return .reject(.error(.notFound, code: "not_found", "WebSocket endpoints are /rooms/<id> and /ws"))
            case .invalid(let reason):
                return .reject(.error(.badRequest, code: reason.rawValue, RequestHeadError(reason).description))
            case .room(let id, let rest):
                guard rest.isEmpty || rest == "/" else {
                    return .reject(.error(.notFound, code: "not_found", "no WebSocket endpoint at \(path)"))
                }
                room = id
            }
        }
        var versionHeader = HTTPHeaders()
        versionHeader.add(name: "Sec-WebSocket-Version", value: "13")
        let isUpgrade = head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }
            && head.headers[canonicalForm: "upgrade"].contains { $0.lowercased() == "websocket" }
        guard head.method == .GET, isUpgrade else {
            versionHeader.add(name: "Upgrade", value: "websocket")
            return .reject(.error(.upgradeRequired, code: "upgrade_required",
                                  "\(path) is a WebSocket endpoint: send GET with Upgrade: websocket",
                                  headers: versionHeader))
        }
        guard head.headers.first(name: "sec-websocket-version") == "13" else {
            return .reject(.error(.upgradeRequired, code: "unsupported_version",
                                  "only WebSocket version 13 is supported", headers: versionHeader))
        }
        guard let key = head.headers.first(name: "sec-websocket-key"), !key.isEmpty else {
            return .reject(.error(.badRequest, code: "bad_handshake", "missing Sec-WebSocket-Key",
                                  headers: versionHeader))
        }
        if let room, !shard.owns(room) {
            var headers = HTTPHeaders()
            headers.add(name: "RoomRing-Epoch", value: String(shard.ring.epoch))
            return .reject(.error(.misdirectedRequest, code: "not_owner",
                                  "room \(room) is not owned by shard \(shard.configuration.id)", headers: headers))
        }
        if shard.configuration.mode == .pubsub, !shard.isBrokerReady {
            return .reject(.error(.serviceUnavailable, code: "broker_unavailable",
                                  "pub/sub mode: Redis is unreachable; retry shortly", headers: ["Retry-After": "1"]))
        }
        if shard.connections >= shard.configuration.maxConnections {
            return .reject(.error(.serviceUnavailable, code: "full", "shard is at its connection limit",
                                  headers: ["Retry-After": "1"]))
        }
        var query: [String: String] = [:]
        if parts.count > 1 {
            for (name, value) in RequestHead.decodeQuery(String(parts[1])) where query[name] == nil {
                query[name] = value
            }
        }
        var since: UInt64?
        if let text = query["since"] {
            guard let value = UInt64(text) else {
                return .reject(.error(.badRequest, code: "bad_since", "since must be a non-negative integer"))
            }
            since = value
        }
        let name = String((query["name"].flatMap { $0.isEmpty ? nil : $0 } ?? "anonymous").prefix(maxNameLength))
        let client = query["client"].flatMap { $0.isEmpty ? nil : String($0.prefix(ClientMessage.maxIDLength)) }
        let requestID = RequestIDGenerator.sanitized(head.headers.first(name: RequestIDGenerator.header))
        return .upgrade(.init(room: room, name: name, client: client, since: since, requestID: requestID))
    }
}

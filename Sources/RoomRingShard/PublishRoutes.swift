import Foundation
import NIOCore
import NIOHTTP1
import RoomRingCore
import RoomRingHTTP

/// The room endpoints besides the WebSocket (DESIGN.md §4), answered by ``RoomHTTPHandler``:
/// `POST /rooms/<id>/messages` (publish), `GET /rooms/<id>/messages?since=<seq>` (polling) and
/// `GET /rooms/<id>/events` (Server-Sent Events), and `GET /rooms/<id>/members` (who is connected).
enum PublishRoutes {
    enum Endpoint: Equatable {
        case messages
        case events
        case members
    }

    /// The room and endpoint `head` names, or nil when it names none (the plain router answers it, invalid room
    /// ids included: 400 there as for WebSocket paths).
    static func endpoint(_ head: HTTPRequestHead) -> (RoomID, Endpoint)? {
        let path = String(head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        guard case .room(let room, let rest) = RoomPath.parse(path) else { return nil }
        switch rest {
        case "/messages": return (room, .messages)
        case "/events": return (room, .events)
        case "/members": return (room, .members)
        default: return nil
        }
    }

    /// Everything decided from the head alone, before any body is read: method, token, ownership, size, `since`.
    static func checkHead(_ head: HTTPRequestHead, room: RoomID, endpoint: Endpoint, shard: ShardContext)
        -> HTTPResponse?
    {
        switch (endpoint, head.method) {
        case (.messages, .POST):
            if let refusal = authorize(head, shard: shard) { return refusal }
            guard shard.owns(room) else { return notOwner(room, shard: shard) }
            if let refusal = brokerRefusal(shard) { return refusal }
            if let length = head.headers.first(name: "content-length").flatMap(Int.init),
                length > shard.configuration.maxMessageBytes
            {
                return tooLarge(shard)
            }
            return nil
        case (.members, .GET):
            guard shard.owns(room) else { return notOwner(room, shard: shard) }
            return nil
        case (.messages, .GET), (.events, .GET):
            guard shard.owns(room) else { return notOwner(room, shard: shard) }
            if let refusal = brokerRefusal(shard) { return refusal }
            do { _ = try since(head) } catch { return badSince }
            return nil
        case (.messages, _):
            return methodNotAllowed(allow: "GET, POST")
        case (.events, _), (.members, _):
            return methodNotAllowed(allow: "GET")
        }
    }

    /// 401 without a bearer token, 403 with a wrong one, 403 when the shard has no token to check against.
    static func authorize(_ head: HTTPRequestHead, shard: ShardContext) -> HTTPResponse? {
        let configured = shard.configuration.publishToken ?? shard.configuration.adminToken
        guard let token = configured, !token.isEmpty else {
            return .error(.forbidden, code: "publish_disabled",
                          "this shard was started without --publish-token or --admin-token; publishing is disabled")
        }
        guard let offered = head.headers.first(name: "authorization"), offered.hasPrefix("Bearer "),
            offered.utf8.count > 7
        else {
            return .error(.unauthorized, code: "unauthorized", "publishing needs Authorization: Bearer <token>",
                          headers: ["WWW-Authenticate": "Bearer"])
        }
        guard AdminAuth.constantTimeEqual(Array(offered.utf8.dropFirst(7)), Array(token.utf8)) else {
            return .error(.forbidden, code: "forbidden", "wrong bearer token")
        }
        return nil
    }

    static func notOwner(_ room: RoomID, shard: ShardContext) -> HTTPResponse {
        .error(.misdirectedRequest, code: "not_owner", "room \(room) is not owned by shard \(shard.configuration.id)",
               headers: ["RoomRing-Epoch": String(shard.ring.epoch)])
    }

    static func tooLarge(_ shard: ShardContext) -> HTTPResponse {
        .error(.payloadTooLarge, code: "too_large",
               "body is larger than the message limit of \(shard.configuration.maxMessageBytes) bytes")
    }

    static func methodNotAllowed(allow: String) -> HTTPResponse {
        .error(.methodNotAllowed, code: "method_not_allowed", "allowed here: \(allow)", headers: ["Allow": allow])
    }

    /// Pub/sub mode while Redis is unreachable: 503, retry shortly.
    static func brokerRefusal(_ shard: ShardContext) -> HTTPResponse? {
        guard shard.configuration.mode == .pubsub, !shard.isBrokerReady else { return nil }
        return retryLater(code: "broker_unavailable", "pub/sub mode: Redis is unreachable; retry shortly")
    }

    static func retryLater(code: String, _ message: String) -> HTTPResponse {
        .error(.serviceUnavailable, code: code, message, headers: ["Retry-After": "1"])
    }

    /// Where a reader resumes: `Last-Event-ID` (what a reconnecting `EventSource` sends) or else `?since=`.
    static func since(_ head: HTTPRequestHead) throws(BadSince) -> UInt64? {
        var text = head.headers.first(name: "last-event-id").flatMap { $0.isEmpty ? nil : $0 }
        if text == nil, let query = head.uri.split(separator: "?", maxSplits: 1).dropFirst().first {
            text = RequestHead.decodeQuery(String(query)).first { $0.name == "since" }?.value
        }
        guard let text else { return nil }
        guard let seq = ServerSentEvent.parseSeq(text) else { throw BadSince() }
        return seq
    }

    struct BadSince: Error {}

    static let badSince = HTTPResponse.error(.badRequest, code: "bad_since",
                                             "since / Last-Event-ID must be a non-negative integer")

    // MARK: - Answers

    /// Publishes a complete body: 201 with its seq, 200 for a resend, 400 for a body that is not a publish.
    static func publish(_ body: ByteBuffer, head: HTTPRequestHead, room: RoomID, hub: RoomHub,
                        shard: ShardContext, on loop: any EventLoop) -> EventLoopFuture<HTTPResponse> {
        let request: PublishRequest
        do {
            request = try PublishRequest.decode(body.readableBytesView)
        } catch {
            let message = error.code == "bad_json" ? "body must be a JSON object like {\"message\":\"...\"}"
                : error.description
            return loop.makeSucceededFuture(.error(.badRequest, code: error.code, message))
        }
        let client = request.client ?? head.headers.first(name: "roomring-client").map {
            String($0.prefix(ClientMessage.maxIDLength))
        } ?? ""
        // Publishers dedup in their own namespace, apart from WebSocket clients' ids.
        let publish = RoomPublish(room: room, message: request.message, from: request.resolvedFrom,
                                  dedup: request.id.map { RoomLog.DedupKey(client: "http:" + client, id: $0) },
                                  ts: Int64(Date().timeIntervalSince1970 * 1000))
        return hub.publish(publish).map { outcome in
            switch outcome {
            case .accepted(let seq):
                return .json(JSONCoding.encode(PublishReply(room: room.rawValue, seq: seq, duplicate: false)),
                             status: .created)
            case .duplicate(let seq):
                return .json(JSONCoding.encode(PublishReply(room: room.rawValue, seq: seq, duplicate: true)))
            case .notOwner:
                return notOwner(room, shard: shard)
            case .moving:
                return retryLater(code: "moving", "room \(room) is moving to another shard; retry")
            case .arriving:
                return retryLater(code: "arriving", "room \(room) is arriving from another shard; retry")
            case .unavailable:
                return retryLater(code: "broker_unavailable", "pub/sub mode: Redis did not accept the message; retry")
            }
        }
    }

    /// The kept messages after `since` (0 when absent).
    static func poll(_ head: HTTPRequestHead, room: RoomID, hub: RoomHub) -> EventLoopFuture<HTTPResponse> {
        let since = ((try? since(head)) ?? nil) ?? 0
        return hub.history(of: room, since: since).map { outcome in
            switch outcome {
            case .page(let seq, let resumed, let entries):
                let page = MessagesPage(room: room.rawValue, seq: seq, resumed: resumed, messages: entries.map(\.chat))
                return .json(JSONCoding.encode(page))
            case .arriving:
                return retryLater(code: "arriving", "room \(room) is arriving from another shard; retry")
            case .unavailable:
                return retryLater(code: "broker_unavailable", "pub/sub mode: Redis is unreachable; retry shortly")
            }
        }
    }
}

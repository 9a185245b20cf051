import NIOCore
import RoomRingCore
import RoomRingHTTP

/// `GET /rooms/<id>/members`: who is in a room on this shard, for the chat page's member list.
///
/// Members live on the event loop of their connection, so the answer asks every loop once and merges; it reads only
/// the per-loop tables the broadcasts already use, and costs nothing while nobody asks.
extension RoomHub {
    func members(of room: RoomID) -> EventLoopFuture<[MemberPresence]> {
        let asks = loops.enumerated().map { index, loop in
            let bound = hubs[index]
            return loop.submit { bound.value.presence(of: room) }
        }
        return EventLoopFuture.whenAllSucceed(asks, on: loops[homeIndex(of: room)]).map { perLoop in
            perLoop.flatMap { $0 }.sorted { ($0.name, $0.client ?? "") < ($1.name, $1.client ?? "") }
        }
    }
}

/// The answer of `GET /rooms/<id>/members`.
struct MembersPage: Codable, Sendable {
    var room: String
    var count: Int
    var members: [MemberPresence]
}

extension PublishRoutes {
    static func members(room: RoomID, hub: RoomHub) -> EventLoopFuture<HTTPResponse> {
        hub.members(of: room).map { members in
            .json(JSONCoding.encode(MembersPage(room: room.rawValue, count: members.count, members: members)))
        }
    }
}

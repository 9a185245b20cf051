import Foundation
import NIOCore
import NIOHTTP1
import RoomRingClient
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
    /// Pub/sub mode: shards of the ring that did not answer in time, so their members are missing.
    var unreachable: [String]?
}

extension PublishRoutes {
    /// How long a pub/sub shard waits for each other shard's members.
    static let membersTimeout: Duration = .seconds(1)

    /// This shard's members of `room`; in pub/sub mode, where a room's members are spread over the fleet, also every
    /// other shard's (asked with `?scope=local`, in parallel), naming the shards that did not answer.
    static func members(room: RoomID, head: HTTPRequestHead, hub: RoomHub, shard: ShardContext,
                        on loop: any EventLoop) -> EventLoopFuture<HTTPResponse> {
        let local = hub.members(of: room)
        let query = head.uri.split(separator: "?", maxSplits: 1).dropFirst().first.map { $0.split(separator: "&") } ?? []
        guard shard.configuration.mode == .pubsub, !query.contains("scope=local") else {
            return local.map { .json(JSONCoding.encode(MembersPage(room: room.rawValue, count: $0.count, members: $0))) }
        }
        let others = shard.ring.document.shards.filter { $0.id != shard.configuration.id }
        let promise = loop.makePromise(of: HTTPResponse.self)
        promise.completeWithTask {
            var members = try await local.get()
            var unreachable: [String] = []
            await withTaskGroup(of: (String, [MemberPresence]?).self) { group in
                for other in others {
                    group.addTask { (other.id, await Self.localMembers(of: room, at: other)) }
                }
                for await (id, found) in group {
                    if let found { members += found } else { unreachable.append(id) }
                }
            }
            members.sort { ($0.name, $0.client ?? "") < ($1.name, $1.client ?? "") }
            let page = MembersPage(room: room.rawValue, count: members.count, members: members,
                                   unreachable: unreachable.isEmpty ? nil : unreachable.sorted())
            return .json(JSONCoding.encode(page))
        }
        return promise.futureResult
    }

    private static func localMembers(of room: RoomID, at other: RingDocument.Shard) async -> [MemberPresence]? {
        guard let address = HostPort(other.address),
            let response = try? await HTTPClient.request("GET", host: address.host, port: address.port,
                                                         path: "/rooms/\(room.rawValue)/members?scope=local",
                                                         timeout: membersTimeout),
            response.status == 200
        else { return nil }
        return try? JSONDecoder().decode(MembersPage.self, from: Data(response.body)).members
    }
}

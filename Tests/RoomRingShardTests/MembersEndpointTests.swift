import Foundation
import RoomRingClient
import RoomRingCore
import RoomRingShard
import Testing

/// `GET /rooms/<id>/members`: who is connected to a room, for the chat page's member list.
@Suite(.serialized) struct MembersEndpointTests {
    struct Page: Decodable, Equatable {
        struct Member: Decodable, Equatable {
            var name: String
            var client: String?
        }
        var room: String
        var count: Int
        var members: [Member]
    }

    func members(_ shard: ShardServer, _ room: String) async throws -> Page {
        let response = try await shard.http("GET", "/rooms/\(room)/members")
        #expect(response.status == 200 && response.header("Content-Type") == "application/json", "\(response.text)")
        return try JSONDecoder().decode(Page.self, from: Data(response.body))
    }

    @Test(.timeLimit(.minutes(1)))
    func listsTheRoomsParticipantsOnEveryLoopAndForgetsThoseWhoLeave() async throws {
        try await TestShard.with(eventLoops: 2) { shard in
            #expect(try await members(shard, "hall") == Page(room: "hall", count: 0, members: []))
            // Four connections spread over both loops; one in another room, one only reading the event stream.
            let alice = try await shard.join("hall", name: "alice", client: "c-a")
            let bob = try await shard.join("hall", name: "bob")
            let carol = try await shard.join("hall", name: "carol", client: "c-c")
            let other = try await shard.join("other", name: "dave")
            for member in [alice, bob, carol, other] { _ = try await member.hello() }
            let stream = try await EventStreamConnection.connect(host: "127.0.0.1", port: shard.port,
                                                                 path: "/rooms/hall/events")
            #expect(try await eventually(within: .seconds(10)) {
                (try? await members(shard, "hall").count) == 3
            })
            let page = try await members(shard, "hall")
            #expect(page.members.map(\.name) == ["alice", "bob", "carol"])
            #expect(page.members.first { $0.name == "alice" }?.client == "c-a")
            #expect(page.members.first { $0.name == "bob" }?.client == nil)
            #expect(try await members(shard, "other").members.map(\.name) == ["dave"])

            await bob.close()
            #expect(try await eventually(within: .seconds(10)) {
                (try? await members(shard, "hall").members.map(\.name)) == ["alice", "carol"]
            })
            for member in [alice, carol, other] { await member.close() }
            await stream.close()
            #expect(try await eventually(within: .seconds(10)) { (try? await members(shard, "hall").count) == 0 })
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func refusesWhatItCannotAnswer() async throws {
        let ring = RingDocument(epoch: 3, shards: [.init(id: "s1", address: "127.0.0.1:1", admin: "127.0.0.1:1"),
                                                   .init(id: "s2", address: "127.0.0.1:2", admin: "127.0.0.1:2")])
        try await TestShard.with(ring: ring) { shard in
            let theirs = room(ownedBy: "s2", in: ring)
            let notOwner = try await shard.http("GET", "/rooms/\(theirs)/members")
            #expect(notOwner.status == 421 && notOwner.header("RoomRing-Epoch") == "3")
            let ours = room(ownedBy: "s1", in: ring)
            let post = try await shard.http("POST", "/rooms/\(ours)/members", body: Array("{}".utf8))
            #expect(post.status == 405 && post.header("Allow") == "GET" && ErrorBody.code(of: post) == "method_not_allowed")
            let invalid = try await shard.http("GET", "/rooms/bad%zz/members")
            #expect(invalid.status == 400)
            let tooLong = try await shard.http("GET", "/rooms/\(String(repeating: "r", count: 129))/members")
            #expect(tooLong.status == 400)
            // Still serving.
            let member = try await shard.join(ours, name: "after")
            _ = try await member.hello()
            let page = try await shard.http("GET", "/rooms/\(ours)/members")
            #expect(page.status == 200 && page.text.contains(#""name":"after""#))
        }
    }
}

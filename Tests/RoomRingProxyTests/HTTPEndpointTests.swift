import Foundation
import RoomRingClient
import RoomRingCore
import RoomRingProxy
import RoomRingShard
import Testing

extension ProxyTests {
    /// Publish, polling and Server-Sent Events through the proxy, routed by the room in the path like WebSockets.
    @Suite struct HTTPEndpoints {
        static func publish(_ fleet: TestFleet, _ room: String, _ body: PublishRequest, token: String? = TestFleet.token)
            async throws -> HTTPClient.Response
        {
            try await HTTPClient.request("POST", host: "127.0.0.1", port: fleet.proxy.port, path: "/rooms/\(room)/messages",
                                         headers: token.map { [("Authorization", "Bearer \($0)")] } ?? [],
                                         body: Array(body.encoded().utf8), timeout: .seconds(10))
        }

        static func events(_ fleet: TestFleet, _ room: String, lastEventID: String? = nil) async throws
            -> EventStreamConnection
        {
            try await EventStreamConnection.connect(host: "127.0.0.1", port: fleet.proxy.port,
                                                    path: "/rooms/\(room)/events", lastEventID: lastEventID,
                                                    timeout: .seconds(10))
        }

        static func hello(_ stream: EventStreamConnection) async throws -> ServerMessage.Hello {
            let event = try await stream.nextEvent(timeout: .seconds(10))
            guard event.event == "hello" else { throw TestFailure("expected hello, got \(event)") }
            return try JSONDecoder().decode(ServerMessage.Hello.self, from: Data(event.data.utf8))
        }

        @Test(.timeLimit(.minutes(1)))
        func publishPollAndStreamReachTheRoomsOwner() async throws {
            try await TestFleet.with { fleet in
                let room = TestFleet.room(ownedBy: "s2", in: fleet.ring, prefix: "http")
                let stream = try await Self.events(fleet, room)
                #expect(try await Self.hello(stream).shard == "s2")
                let member = try await fleet.join(room, name: "alice")
                #expect(try await member.hello().shard == "s2")

                let published = try await Self.publish(fleet, room, PublishRequest(message: "via the proxy", from: "svc"))
                #expect(published.status == 201, "\(published.status) \(published.text)")
                #expect(try JSONDecoder().decode(PublishReply.self, from: Data(published.body)).seq == 1)
                let event = try await stream.nextEvent()
                #expect(event.id == "1" && event.event == "chat" && event.data.contains("via the proxy"))
                #expect(try await member.chat().message == "via the proxy")
                member.send(text: ClientMessage.chat(message: "and back", id: nil).encoded())
                #expect(try await stream.nextEvent().id == "2")

                let poll = try await fleet.get("/rooms/\(room)/messages?since=1")
                #expect(poll.status == 200)
                let page = try JSONDecoder().decode(MessagesPage.self, from: Data(poll.body))
                #expect(page.seq == 2 && page.resumed && page.messages.map(\.message) == ["and back"])
                // Only the owner holds the room.
                for shard in ["s1", "s3"] {
                    let rooms = try await HTTPClient.request("GET", host: "127.0.0.1", port: fleet.shard(shard).adminPort,
                                                             path: "/rooms",
                                                             headers: [("Authorization", "Bearer \(TestFleet.token)")])
                    #expect(!rooms.text.contains(room), "\(shard) must not hold \(room)")
                }

                // Refusals pass through as the shard's JSON errors.
                let anonymous = try await Self.publish(fleet, room, PublishRequest(message: "x"), token: nil)
                #expect(anonymous.status == 401 && anonymous.text.contains("unauthorized"))
                let invalid = try await fleet.get("/rooms/bad%2Fid/messages")
                #expect(invalid.status == 400)
                await stream.close()
                await member.close()
            }
        }

        @Test(.timeLimit(.minutes(1)))
        func aPublishRoutedWithAStaleRingIsRetriedWithItsBody() async throws {
            try await TestFleet.with(shard: { $0.handoffWait = 0.3 }) { fleet in
                // Epoch 3 reaches the shards only: s2 drains, so the proxy still routes s2's rooms to it.
                var next = fleet.ring
                next.epoch = 3
                next.shards[1].state = .draining
                let room = TestFleet.room(ownedBy: "s2", in: fleet.ring, prefix: "stale")
                let owner = HashRing(next).owner(of: RoomID(room)!)!.id
                for shard in fleet.shards { try await TestFleet.push(next, to: shard) }
                #expect(fleet.proxy.context.ring.epoch == 2)

                let published = try await Self.publish(fleet, room, PublishRequest(message: "resent whole", id: "r-1"))
                #expect(published.status == 201, "\(published.status) \(published.text)")
                #expect(fleet.proxy.context.ring.epoch == 3)
                let page = try await HTTPClient.request("GET", host: "127.0.0.1", port: fleet.shard(owner).port,
                                                        path: "/rooms/\(room)/messages")
                #expect(page.text.contains("resent whole"), "\(owner): \(page.text)")
            }
        }

        @Test(.timeLimit(.minutes(1)))
        func aMovedRoomEndsItsStreamsAndTheyResumeAtTheNewOwner() async throws {
            try await TestFleet.with { fleet in
                let room = TestFleet.room(ownedBy: "s2", in: fleet.ring, prefix: "moving")
                let stream = try await Self.events(fleet, room)
                _ = try await Self.hello(stream)
                for i in 1...3 {
                    #expect(try await Self.publish(fleet, room, PublishRequest(message: "m\(i)")).status == 201)
                    #expect(try await stream.nextEvent().id == String(i))
                }
                var next = fleet.ring
                next.epoch = 3
                next.shards[1].state = .draining
                let owner = HashRing(next).owner(of: RoomID(room)!)!.id
                for shard in fleet.shards { try await TestFleet.push(next, to: shard) }
                let pushed = try await fleet.admin("/ring", method: "PUT", body: Array(next.encoded()))
                #expect(pushed.status == 200)

                // The old owner hands the room over, then ends the stream: EventSource would reconnect now.
                let ended = try await eventually(within: .seconds(10)) {
                    if case .ended = try await stream.next(timeout: .seconds(10)) { return true }
                    return false
                }
                #expect(ended)
                let resumed = try await Self.events(fleet, room, lastEventID: "2")
                let hello = try await Self.hello(resumed)
                #expect(hello.shard == owner && hello.seq == 3 && hello.resumed, "\(hello)")
                #expect(try await resumed.nextEvent().id == "3")
                let after = try await Self.publish(fleet, room, PublishRequest(message: "m4"))
                #expect(try JSONDecoder().decode(PublishReply.self, from: Data(after.body)).seq == 4)
                #expect(try await resumed.nextEvent().id == "4")
                await resumed.close()
            }
        }
    }
}

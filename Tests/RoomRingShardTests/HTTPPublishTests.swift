import Foundation
import Testing
import RoomRingClient
import RoomRingCore
import RoomRingShard

/// `POST /rooms/<id>/messages` (publish) and `GET /rooms/<id>/messages?since=` (polling) on the client port.
@Suite(.serialized) struct HTTPPublishTests {
    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func publishReturnsTheSeqAndEveryMemberGetsItWithThatSeq(mode: ScalingMode) async throws {
        try await TestShard.with(eventLoops: 2, mode: mode) { shard in
            let alice = try await shard.join("news", name: "alice")
            let bob = try await shard.join("news", name: "bob")
            _ = try await alice.hello()
            _ = try await bob.hello()
            alice.sendChat("first")
            #expect(try await alice.chat().seq == 1)
            #expect(try await bob.chat().seq == 1)

            let published = try await shard.publish("news", #"{"message":"deploy finished","from":"ci"}"#)
            #expect(published.status == 201 && published.header("Content-Type") == "application/json")
            let reply = try JSONDecoder().decode(PublishReply.self, from: Data(published.body))
            #expect(reply == PublishReply(room: "news", seq: 2, duplicate: false))
            for member in [alice, bob] {
                let chat = try await member.chat()
                #expect(chat.seq == 2 && chat.message == "deploy finished" && chat.from == "ci")
            }
            // Without `from`, the sender is "server"; a member's next chat continues the same sequence.
            let anonymous = try await shard.publish("news", PublishRequest(message: "line\nbreak \"quoted\"").encoded())
            #expect(try JSONDecoder().decode(PublishReply.self, from: Data(anonymous.body)).seq == 3)
            let third = try await bob.chat()
            #expect(third == ServerMessage.Chat(message: "line\nbreak \"quoted\"", from: "server", seq: 3, ts: third.ts))
            _ = try await alice.chat()
            bob.sendChat("after")
            #expect(try await alice.chat().seq == 4)
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func aRetriedPublishIsAnsweredWithTheOriginalSeqAndNotBroadcastTwice(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode) { shard in
            let member = try await shard.join("orders", name: "watcher")
            _ = try await member.hello()
            let body = PublishRequest(message: "order 17 shipped", id: "evt-17").encoded()
            let first = try await shard.publish("orders", body, headers: [("RoomRing-Client", "shipping")])
            #expect(first.status == 201)
            let retry = try await shard.publish("orders", body, headers: [("RoomRing-Client", "shipping")])
            #expect(retry.status == 200)
            #expect(try JSONDecoder().decode(PublishReply.self, from: Data(retry.body))
                == PublishReply(room: "orders", seq: 1, duplicate: true))
            // The same id from another client (header or body field) is another message.
            let other = try await shard.publish("orders", PublishRequest(message: "x", id: "evt-17", client: "billing").encoded(),
                                                headers: [("RoomRing-Client", "shipping")])
            #expect(other.status == 201)
            #expect(try JSONDecoder().decode(PublishReply.self, from: Data(other.body)).seq == 2)
            // The member saw each message exactly once.
            #expect(try await member.chat().message == "order 17 shipped")
            #expect(try await member.chat().seq == 2)
            #expect(try await member.quiet(for: .milliseconds(200)) == nil)
            #expect(try await shard.metric("roomring_shard_duplicates_total") == 1)
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func pollingReturnsWhatCameAfterSince(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode) { shard in
            for i in 1...5 { #expect(try await shard.publish("feed", PublishRequest(message: "m\(i)").encoded()).status == 201) }
            let page = try await shard.poll("feed", since: 2)
            #expect(page.room == "feed" && page.seq == 5 && page.resumed)
            #expect(page.messages.map(\.seq) == [3, 4, 5] && page.messages.map(\.message) == ["m3", "m4", "m5"])
            #expect(page.messages.allSatisfy { $0.from == "server" && $0.ts > 0 })
            #expect(try await shard.poll("feed").messages.count == 5)
            let upToDate = try await shard.poll("feed", since: 5)
            #expect(upToDate.messages.isEmpty && upToDate.resumed && upToDate.seq == 5)
            // Ahead of the room (it lost its state): told, not silently empty.
            #expect(try await shard.poll("feed", since: 9).resumed == false)
            // A room nobody created answers an empty page, and is not created by asking.
            let unknown = try await shard.poll("nobody-here")
            #expect(unknown == MessagesPage(room: "nobody-here", seq: 0, resumed: true, messages: []))
            #expect(try await shard.rooms().room("nobody-here") == nil)
            // A member joining later resumes from the published history too.
            let late = try await shard.join("feed", since: 3)
            #expect(try await late.hello().resumed)
            #expect(try await late.chat().message == "m4")
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func pollingSaysWhenHistoryNoLongerReachesBack(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode, configure: { $0.roomLog = .init(maxMessages: 3) }) { shard in
            for i in 1...6 { _ = try await shard.publish("short", PublishRequest(message: "m\(i)").encoded()) }
            let page = try await shard.poll("short", since: 1)
            #expect(page.resumed == false && page.seq == 6 && page.messages.map(\.seq) == [4, 5, 6])
            #expect(try await shard.poll("short", since: 3).resumed)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aPublishToARoomStillArrivingWaitsForItsStateAndContinuesItsSeq() async throws {
        let before = ShardHTTPTests.twoShardRing(epoch: 1)
        try await TestShard.with(ring: before, configure: { $0.handoffWait = 8 }) { shard in
            let gained = room(ownedBy: "s2", in: before)
            #expect(try await shard.admin("PUT", "/ring", body: Array(TestShard.soloRing(epoch: 2).encoded())).status == 200)
            // Until the previous owner's state arrives, a poll would tell the wrong seq: retry later.
            let poll = try await shard.http("GET", "/rooms/\(gained)/messages")
            #expect(poll.status == 503 && poll.header("Retry-After") == "1" && ErrorBody.code(of: poll) == "arriving")

            let started = ContinuousClock.now
            let held = Task {
                try await shard.publish(gained, PublishRequest(message: "held", id: "h-1", client: "svc").encoded())
            }
            #expect(try await eventually { try await shard.rooms().room(gained) != nil })
            var log = RoomLog()
            for i in 1...5 {
                _ = log.append(message: "old \(i)", from: "x", ts: 0,
                               dedup: i == 5 ? .init(client: "http:svc", id: "h-0") : nil)
            }
            let handoff = RoomHandoff(room: RoomID(gained)!, from: "s2", epoch: 2, log: log)
            #expect(try await shard.admin("POST", "/handoff", body: Array(try JSONEncoder().encode(handoff))).status == 200)
            let reply = try await held.value
            #expect(reply.status == 201 && (try? JSONDecoder().decode(PublishReply.self, from: Data(reply.body)))?.seq == 6,
                    "\(reply.status) \(reply.text)")
            #expect(ContinuousClock.now - started < .seconds(6), "answered when the state arrived, not after the wait")
            // The dedup table came along: a resend of what the old owner accepted is recognized.
            let resend = try await shard.publish(gained, PublishRequest(message: "x", id: "h-0", client: "svc").encoded())
            #expect(resend.status == 200 && (try? JSONDecoder().decode(PublishReply.self, from: Data(resend.body)))?.seq == 5)
            #expect(try await shard.poll(gained, since: 4).messages.map(\.message) == ["old 5", "held"])
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func keepAliveConnectionsCarrySeveralRequests(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode) { shard in
            let body = PublishRequest(message: "one").encoded()
            let requests = "POST /rooms/ka/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
                + "GET /rooms/ka/messages?since=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            let raw = try await HTTPClient.exchange(host: "127.0.0.1", port: shard.port, send: Array(requests.utf8))
            let text = String(decoding: raw, as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 201"))
            #expect(text.contains("HTTP/1.1 200") && text.contains(#""message":"one""#), "\(text)")
        }
    }
}

extension ShardServer {
    /// `POST /rooms/<room>/messages` with the test token (or `token`).
    func publish(_ room: String, _ body: String, token: String? = "test-token", headers: [(String, String)] = [])
        async throws -> HTTPClient.Response
    {
        try await http("POST", "/rooms/\(room)/messages",
                       headers: (token.map { [("Authorization", "Bearer \($0)")] } ?? []) + headers,
                       body: Array(body.utf8))
    }

    /// `GET /rooms/<room>/messages[?since=]`, decoded.
    func poll(_ room: String, since: UInt64? = nil) async throws -> MessagesPage {
        let response = try await http("GET", "/rooms/\(room)/messages" + (since.map { "?since=\($0)" } ?? ""))
        guard response.status == 200 else { throw TestFailure("poll: \(response.status) \(response.text)") }
        return try JSONDecoder().decode(MessagesPage.self, from: Data(response.body))
    }
}

import Foundation
import NIOCore
import Testing
import RoomRingClient
import RoomRingCore
import RoomRingRedis
import RoomRingShard
import RoomRingSpawn
import Synchronization

/// Pub/sub mode across shards and through Redis failures (DESIGN.md §6), against a real `redis-server` each test
/// starts on a free port. Skipped, with the reason printed, where `redis-server` is not installed.
@Suite(.serialized, .enabled(if: !TestModes.pubsub.isEmpty, "redis-server is not installed"))
struct PubSubModeTests {
    typealias Received = RoomBroadcastTests.Received

    /// Two pub/sub shards on one Redis.
    static func withTwoShards<T>(_ body: (RedisServerProcess, ShardServer, ShardServer) async throws -> T)
        async throws -> T
    {
        let redis = try await RedisServerProcess.start()
        defer { redis.kill() }
        return try await TestShard.with(id: "s1", ring: ShardHTTPTests.twoShardRing(), mode: .pubsub, redis: redis.url) { a in
            try await TestShard.with(id: "s2", ring: ShardHTTPTests.twoShardRing(), mode: .pubsub, redis: redis.url) { b in
                try await body(redis, a, b)
            }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func membersOnTwoShardsSeeOneContiguousSeqInOneOrderAndEachAckMatchesItsCopy() async throws {
        let perMember = 30
        try await Self.withTwoShards { _, a, b in
            // Any room on any shard: no 421 in pub/sub mode.
            var members: [WebSocketConnection] = []
            for i in 0..<3 { members.append(try await a.join("cross", name: "a\(i)", client: "a\(i)")) }
            for i in 0..<3 { members.append(try await b.join("cross", name: "b\(i)", client: "b\(i)")) }
            for member in members { #expect(try await member.hello().seq == 0) }
            for k in 0..<perMember {
                for (m, member) in members.enumerated() { member.sendChat("m\(m)-\(k)", id: "k\(k)") }
            }
            let total = perMember * members.count
            let received = try await withThrowingTaskGroup(of: (Int, Received).self) { group in
                for (m, member) in members.enumerated() {
                    group.addTask { (m, try await RoomBroadcastTests.collect(member, chats: total, acks: perMember)) }
                }
                var all = Array(repeating: Received(), count: members.count)
                for try await (m, got) in group { all[m] = got }
                return all
            }
            let reference = received[0].chats
            #expect(reference.map(\.seq) == Array(1...UInt64(total)), "one contiguous seq across both shards")
            for (m, got) in received.enumerated() {
                #expect(got.chats == reference, "member \(m) (shard \(m < 3 ? "s1" : "s2")) sees the same order")
                let own = got.chats.filter { $0.message.hasPrefix("m\(m)-") }
                #expect(own.map(\.message) == (0..<perMember).map { "m\(m)-\($0)" }, "a sender's order is kept")
                for (k, chat) in own.enumerated() { #expect(got.acks["k\(k)"] == chat.seq) }
            }
            #expect(try await a.rooms().room("cross")?.seq == UInt64(total))
            #expect(try await b.rooms().room("cross")?.seq == UInt64(total))
            for member in members { await member.close() }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func resumeWorksFromTheOtherShardAndFromAShardWithNoMembersInTheRoom() async throws {
        try await Self.withTwoShards { _, a, b in
            let alice = try await a.join("resume-x", name: "alice", client: "alice")
            let bob = try await a.join("resume-x", name: "bob", client: "bob")
            _ = try await alice.hello()
            _ = try await bob.hello()
            for i in 1...3 { alice.sendChat("before-\(i)", id: "b\(i)") }
            _ = try await RoomBroadcastTests.collect(bob, chats: 3, acks: 0)
            await bob.close()
            for i in 1...4 { alice.sendChat("missed-\(i)", id: "m\(i)") }
            _ = try await RoomBroadcastTests.collect(alice, chats: 7, acks: 7)

            // Bob comes back through another shard, which has never seen the room: the replay comes from Redis.
            let back = try await b.join("resume-x", name: "bob", client: "bob", since: 3)
            let hello = try await back.hello()
            #expect(hello.shard == "s2" && hello.seq == 7 && hello.resumed == true)
            let replay = try await RoomBroadcastTests.collect(back, chats: 4, acks: 0)
            #expect(replay.chats.map(\.seq) == [4, 5, 6, 7])
            #expect(replay.chats.map(\.message) == (1...4).map { "missed-\($0)" })
            // Live messages continue after the replay with no gap and no repeat, across shards both ways.
            alice.sendChat("live-1")
            #expect(try await back.chat().seq == 8)
            back.sendChat("live-2", id: "l2")
            #expect(try await back.nextMessage() == .ack(.init(id: "l2", seq: 9)))
            #expect(try await back.chat().message == "live-2")
            #expect(try await alice.chat().seq == 8)
            let heard = try await alice.chat()
            #expect(heard.seq == 9 && heard.message == "live-2" && heard.from == "bob")

            // A resend through the other shard is recognized by (client, id): acked with its seq, not broadcast.
            await back.close()
            let again = try await a.join("resume-x", name: "bob", client: "bob", since: 9)
            #expect(try await again.hello().resumed == true)
            again.sendChat("live-2", id: "l2")
            #expect(try await again.nextMessage() == .ack(.init(id: "l2", seq: 9)))
            #expect(try await alice.quiet(for: .milliseconds(300)) == nil)

            // Ahead of the room, or too far back for the history: not resumed, never silently.
            let ahead = try await b.join("resume-x", name: "x", since: 99)
            let aheadHello = try await ahead.hello()
            #expect(aheadHello.seq == 9 && aheadHello.resumed == false)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aBackendPublishOnOneShardReachesMembersAndPollersOnTheOther() async throws {
        try await Self.withTwoShards { _, a, b in
            let member = try await b.join("news", name: "reader")
            _ = try await member.hello()
            let first = try await a.publish("news", #"{"message":"extra!","from":"newsroom","id":"n1"}"#)
            #expect(first.status == 201 && first.text.contains(#""seq":1"#), "\(first.text)")
            let chat = try await member.chat()
            #expect(chat.seq == 1 && chat.message == "extra!" && chat.from == "newsroom")
            // A retried publish through the other shard is the same message.
            let again = try await b.publish("news", #"{"message":"extra!","from":"newsroom","id":"n1"}"#)
            #expect(again.status == 200 && again.text.contains(#""duplicate":true"#), "\(again.text)")
            member.sendChat("reply", id: "r")
            _ = try await RoomBroadcastTests.collect(member, chats: 1, acks: 1)
            let page = try await a.poll("news", since: 0)
            #expect(page.seq == 2 && page.resumed == true)
            #expect(page.messages.map(\.message) == ["extra!", "reply"])
            #expect(try await b.poll("news", since: 1).messages.map(\.seq) == [2])
            #expect(try await member.quiet(for: .milliseconds(200)) == nil)
        }
    }

    /// In pub/sub mode a room's members are spread over the fleet: the member list asks every shard of the ring,
    /// and names the ones that did not answer instead of silently leaving their members out.
    @Test(.timeLimit(.minutes(1)))
    func theMemberListCoversEveryShardAndNamesTheOnesThatDoNotAnswer() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.kill() }
        let ports = try (0..<3).map { _ in try LoopbackPort.free() }
        let ring = RingDocument(epoch: 1, shards: (0..<3).map { i in
            .init(id: "s\(i + 1)", address: "127.0.0.1:\(ports[i])", admin: "127.0.0.1:1")
        })
        struct Page: Decodable { var count: Int; var members: [Member]; var unreachable: [String]?
            struct Member: Decodable { var name: String } }
        func page(_ shard: ShardServer, _ path: String) async throws -> Page {
            let response = try await shard.http("GET", path)
            #expect(response.status == 200, "\(response.text)")
            return try JSONDecoder().decode(Page.self, from: Data(response.body))
        }
        try await TestShard.with(id: "s1", ring: ring, mode: .pubsub, redis: redis.url,
                                 configure: { $0.listen = HostPort(host: "127.0.0.1", port: ports[0]) }) { a in
            try await TestShard.with(id: "s2", ring: ring, mode: .pubsub, redis: redis.url,
                                     configure: { $0.listen = HostPort(host: "127.0.0.1", port: ports[1]) }) { b in
                let alice = try await a.join("crowd", name: "alice")
                _ = try await alice.hello()
                let bob = try await b.join("crowd", name: "bob")
                _ = try await bob.hello()
                // s3 is in the ring but not running.
                let fleet = try await page(a, "/rooms/crowd/members")
                #expect(fleet.members.map(\.name) == ["alice", "bob"] && fleet.count == 2)
                #expect(fleet.unreachable == ["s3"])
                let local = try await page(b, "/rooms/crowd/members?scope=local")
                #expect(local.members.map(\.name) == ["bob"] && local.unreachable == nil)
            }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aShardWhoseSubscriberMissedMessagesCatchesUpFromTheStream() async throws {
        try await Self.withTwoShards { redis, a, b in
            let listener = try await a.join("gap", name: "listener")
            let sender = try await b.join("gap", name: "sender")
            _ = try await listener.hello()
            _ = try await sender.hello()
            sender.sendChat("first", id: "f")
            _ = try await RoomBroadcastTests.collect(listener, chats: 1, acks: 0)
            // Drop every subscriber connection: messages published before they resubscribe reach no one live.
            _ = try await redis.command(RESPCommand("CLIENT", "KILL", "TYPE", "pubsub"))
            for i in 1...20 { sender.sendChat("during-\(i)", id: "d\(i)") }
            let got = try await RoomBroadcastTests.collect(listener, chats: 20, acks: 0)
            #expect(got.chats.map(\.seq) == Array(2...21), "the gap is filled in order, nothing twice")
            #expect(got.chats.map(\.message) == (1...20).map { "during-\($0)" })
            let own = try await RoomBroadcastTests.collect(sender, chats: 21, acks: 21)
            #expect(own.chats.map(\.seq) == Array(1...21))
            #expect(try await listener.quiet(for: .milliseconds(200)) == nil)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func redisDownRefusesJoinsAndChatsClearlyAndTheShardRecoversWhenItReturns() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.kill() }
        try await TestShard.with(mode: .pubsub, redis: redis.url) { shard in
            let member = try await shard.join("outage", name: "m", client: "m")
            _ = try await member.hello()
            member.sendChat("one", id: "1")
            _ = try await RoomBroadcastTests.collect(member, chats: 1, acks: 1)

            redis.kill()
            #expect(try await eventually(within: .seconds(5)) { try await shard.http("GET", "/readyz").status == 503 })
            #expect(try await shard.http("GET", "/healthz").status == 200, "alive, just not ready")
            let refused = try await ShardHTTPTests.refusal(shard, path: "/rooms/outage?name=late")
            #expect(refused.status == 503 && refused.body.contains("broker_unavailable"))
            member.sendChat("while down", id: "2")
            guard case .error(let error) = try await member.nextMessage() else { throw TestFailure("expected error") }
            #expect(error.code == "broker_unavailable")
            #expect(try await member.quiet(for: .milliseconds(200)) == nil, "no ack, no broadcast")
            // HTTP publish, polling and event streams say the same.
            let published = try await shard.publish("outage", #"{"message":"from a backend"}"#)
            #expect(published.status == 503 && ErrorBody.code(of: published) == "broker_unavailable")
            let polled = try await shard.http("GET", "/rooms/outage/messages?since=0")
            #expect(polled.status == 503 && ErrorBody.code(of: polled) == "broker_unavailable")

            // Redis comes back empty (no persistence): the room's history is gone, and the member is told to
            // reconnect (1012) rather than left believing it is in step.
            try await redis.restart()
            #expect(try await eventually(within: .seconds(5)) { try await shard.http("GET", "/readyz").status == 200 })
            #expect(try await member.closeCode() == WebSocketMessageStateMachine.CloseCode.restart)
            let back = try await shard.join("outage", name: "m", client: "m", since: 1)
            let hello = try await back.hello()
            #expect(hello.resumed == false && hello.seq == 0)
            back.sendChat("while down", id: "2")
            #expect(try await back.nextMessage() == .ack(.init(id: "2", seq: 1)))
            #expect(try await back.chat().message == "while down")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func roomClientsRideOutARedisOutageWithEveryMessageOnceAndInOrder() async throws {
        // Redis with an append-only file: it comes back with the rooms' seq and history.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("roomring-aof-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let persistent = ["--appendonly", "yes", "--appendfsync", "always", "--dir", directory.path]
        let redis = try await RedisServerProcess.start(arguments: persistent)
        defer { redis.kill() }
        try await TestShard.with(id: "s1", mode: .pubsub, redis: redis.url) { a in
            try await TestShard.with(id: "s2", mode: .pubsub, redis: redis.url) { b in
                let heard = Recorded()
                let sender = RoomClient(host: "127.0.0.1", port: a.port, room: RoomID("outage-c")!,
                                        options: .init(name: "sender", backoffBase: .milliseconds(50),
                                                       backoffMax: .milliseconds(300)))
                let listener = RoomClient(host: "127.0.0.1", port: b.port, room: RoomID("outage-c")!,
                                          options: .init(name: "listener", backoffBase: .milliseconds(50),
                                                         backoffMax: .milliseconds(300)),
                                          onMessage: { heard.append($0) })
                await sender.start()
                await listener.start()
                let connected = try await eventually(within: .seconds(5)) {
                    let heardFrom = await listener.lastSeq
                    let sentFrom = await sender.lastSeq
                    return heardFrom != nil && sentFrom != nil
                }
                #expect(connected)
                #expect(try await sender.send("before") == 1)

                redis.kill()
                #expect(try await eventually(within: .seconds(5)) { try await a.http("GET", "/readyz").status == 503 })
                let during = Task { try await sender.send("during") }
                try await Task.sleep(for: .milliseconds(700))
                #expect(await sender.unacknowledged == 1, "refused while Redis is down, kept in the outbox")
                try await redis.restart(arguments: persistent)
                #expect(try await during.value == 2, "resent and accepted once Redis is back")
                #expect(try await sender.send("after") == 3)
                #expect(try await eventually(within: .seconds(5)) { heard.all.count == 3 })
                #expect(heard.all.map(\.message) == ["before", "during", "after"])
                #expect(heard.all.map(\.seq) == [1, 2, 3])
                await sender.close()
                await listener.close()
            }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aShardStartsWithoutRedisAndBecomesReadyWhenRedisAppears() async throws {
        let port = try LoopbackPort.free()
        let url = RedisURL(host: "127.0.0.1", port: port)
        var configuration = ShardConfiguration(id: "s1", listen: HostPort(host: "127.0.0.1", port: 0),
                                               adminListen: HostPort(host: "127.0.0.1", port: 0), eventLoops: 2)
        configuration.mode = .pubsub
        configuration.redisURL = "redis://127.0.0.1:\(port)"
        let shard = try await ShardServer.start(configuration: configuration, ring: TestShard.soloRing())
        do {
            #expect(try await shard.http("GET", "/readyz").status == 503)
            #expect(try await ShardHTTPTests.refusal(shard, path: "/rooms/later?name=x").status == 503)
            let redis = try await RedisServerProcess.start(port: url.port)
            defer { redis.kill() }
            #expect(try await eventually(within: .seconds(5)) { try await shard.http("GET", "/readyz").status == 200 })
            let member = try await shard.join("later", name: "x")
            #expect(try await member.hello().seq == 0)
            await shard.shutdown()
        } catch {
            await shard.shutdown()
            throw error
        }
    }

    @Test func aBadRedisURLFailsTheStartWithAClearError() async throws {
        var configuration = ShardConfiguration(id: "s1", listen: HostPort(host: "127.0.0.1", port: 0),
                                               adminListen: HostPort(host: "127.0.0.1", port: 0))
        configuration.mode = .pubsub
        configuration.redisURL = "rediss://cache:6379"
        await #expect(throws: RedisURLError.self) {
            _ = try await ShardServer.start(configuration: configuration, ring: TestShard.soloRing())
        }
    }
}

/// Chats a client delivered, for polling.
final class Recorded: Sendable {
    private let chats = Mutex<[ServerMessage.Chat]>([])
    func append(_ chat: ServerMessage.Chat) { chats.withLock { $0.append(chat) } }
    var all: [ServerMessage.Chat] { chats.withLock { $0 } }
}

extension PubSubModeTests {
    @Test(.timeLimit(.minutes(1)))
    func aDrainedShardSendsItsMembersElsewhereAndEndsUpHoldingNoRooms() async throws {
        try await Self.withTwoShards { _, a, b in
            let stays = try await a.join("drain-me", name: "stays")
            let moves = try await b.join("drain-me", name: "moves", client: "moves")
            _ = try await stays.hello()
            _ = try await moves.hello()
            stays.sendChat("one")
            #expect(try await moves.chat().seq == 1)

            var draining = ShardHTTPTests.twoShardRing(epoch: 2)
            draining.shards[1].state = .draining
            for shard in [a, b] {
                #expect(try await shard.admin("PUT", "/ring", body: Array(draining.encoded())).status == 200)
            }
            #expect(try await moves.closeCode() == WebSocketMessageStateMachine.CloseCode.restart)
            #expect(try await eventually { try await b.rooms().rooms.isEmpty }, "nothing left on the drained shard")
            let refused = try await ShardHTTPTests.refusal(b, path: "/rooms/drain-me?name=late")
            #expect(refused.status == 421, "a draining shard takes no new members")

            stays.sendChat("two")
            let back = try await a.join("drain-me", name: "moves", client: "moves", since: 1)
            let hello = try await back.hello()
            #expect(hello.resumed == true && hello.shard == "s1")
            let missed = try await back.chat()
            #expect(missed.seq == 2 && missed.message == "two")
            #expect(try await a.rooms().room("drain-me")?.members == 2)
        }
    }
}

extension PubSubModeTests {
    /// The reply to a publish can come back before the subscription delivers the messages ahead of it (here: the
    /// subscriber is reconnecting). The ack still never overtakes them: chat 2, then ack 3, then chat 3.
    @Test(.timeLimit(.minutes(1)))
    func anAckNeverOvertakesEarlierChatsEvenWhenRedisAnswersFirst() async throws {
        try await Self.withTwoShards { redis, a, b in
            let mine = try await a.join("order", name: "mine")
            let other = try await b.join("order", name: "other")
            _ = try await mine.hello()
            _ = try await other.hello()
            other.sendChat("first", id: "o1")
            #expect(try await mine.chat().seq == 1)
            for round in 0..<5 {
                _ = try await redis.command(RESPCommand("CLIENT", "KILL", "TYPE", "pubsub"))
                other.sendChat("theirs-\(round)", id: "t\(round)")
                try await Task.sleep(for: .milliseconds(2))
                mine.sendChat("mine-\(round)", id: "m\(round)")
                // Which of the two Redis numbers first is up to the race; the order on `mine` is not: every chat
                // below the ack's seq, then the ack, then its own copy.
                var stream: [ServerMessage] = []
                while stream.count < 3 { stream.append(try await mine.nextMessage()) }
                let ackAt = stream.firstIndex { if case .ack = $0 { true } else { false } }
                guard let ackAt, case .ack(let ack) = stream[ackAt] else { throw TestFailure("no ack: \(stream)") }
                #expect(ack.id == "m\(round)")
                let chats = stream.compactMap { message -> ServerMessage.Chat? in
                    if case .chat(let chat) = message { return chat }
                    return nil
                }
                let base = UInt64(1 + 2 * round)
                #expect(chats.map(\.seq) == [base + 1, base + 2], "round \(round): \(stream)")
                for (index, message) in stream.enumerated() {
                    guard case .chat(let chat) = message else { continue }
                    #expect((chat.seq < ack.seq) == (index < ackAt), "round \(round): \(stream)")
                    if chat.seq == ack.seq { #expect(chat.message == "mine-\(round)") }
                }
            }
            _ = try await RoomBroadcastTests.collect(other, chats: 11, acks: 6)
        }
    }
}

import Foundation
import Synchronization
import RoomRingClient
import RoomRingCore
import RoomRingProxy
import RoomRingShard
import Testing

extension ProxyTests {
    /// Rooms moving between in-process shards (DESIGN.md §3): state travels, members are closed with 1012 "moved",
    /// and reconnecting through the proxy resumes on the new owner with no gap and no duplicate.
    @Suite struct Handoff {
        /// A room that `from` owns under `ring` and `to` owns once `from` drains.
        static func room(movingFrom from: String, to: String, in ring: RingDocument, prefix: String) -> String {
            let before = HashRing(ring)
            let after = HashRing(ring.draining(from))
            for n in 0..<100_000 {
                let key = "\(prefix)-\(n)"
                if before.owner(ofKey: key)?.id == from, after.owner(ofKey: key)?.id == to { return key }
            }
            fatalError("no room moves from \(from) to \(to)")
        }

        @Test(.timeLimit(.minutes(1)))
        func movedRoomResumesOnTheNewOwnerWithHistoryAndDedup() async throws {
            try await TestFleet.with { fleet in
                let room = Self.room(movingFrom: "s1", to: "s2", in: fleet.ring, prefix: "move")
                let alice = try await fleet.member(room, client: "alice")
                let bob = try await fleet.member(room, client: "bob")
                #expect(try await alice.hello().shard == "s1")
                #expect(try await bob.hello().shard == "s1")
                for i in 1...5 { alice.sendChat("m\(i)", id: "a-\(i)") }
                var aliceSeen: [UInt64] = []
                while aliceSeen.count < 5 {
                    if case .chat(let chat) = try await alice.nextMessage() { aliceSeen.append(chat.seq) }
                }
                #expect(aliceSeen == [1, 2, 3, 4, 5])
                // Bob reads only the first three before the move: he resumes from there.
                for expected in UInt64(1)...3 { #expect(try await bob.chat().seq == expected) }

                // The new owner learns the ring first (as `roomring ring` pushes in id order, it may not).
                let next = fleet.ring.draining("s1", epoch: 3)
                for id in ["s2", "s3", "s1"] { try await TestFleet.push(next, to: fleet.shard(id)) }

                #expect(try await alice.closeFrame() == .close(code: 1012, reason: "moved"))
                #expect(try await bob.closeFrame() == .close(code: 1012, reason: "moved"))
                #expect(try await fleet.shard("s1").rooms().room(room) == nil)

                // Through the proxy (still on epoch 2: it converges through 421) to s2, with the same seq.
                let alice2 = try await fleet.member(room, client: "alice", since: 5)
                let hello = try await alice2.hello(timeout: .seconds(10))
                #expect(hello.shard == "s2" && hello.seq == 5 && hello.resumed && hello.epoch == 3)
                // The dedup table travelled: a resend of an acknowledged message is acked with its old seq.
                alice2.sendChat("m5", id: "a-5")
                guard case .ack(let again) = try await alice2.nextMessage() else { throw TestFailure("no ack") }
                #expect(again == .init(id: "a-5", seq: 5))
                alice2.sendChat("m6", id: "a-6")
                guard case .ack(let ack6) = try await alice2.nextMessage() else { throw TestFailure("no ack") }
                #expect(ack6.seq == 6)
                #expect(try await alice2.chat().seq == 6)

                let bob2 = try await fleet.member(room, client: "bob", since: 3)
                let bobHello = try await bob2.hello(timeout: .seconds(10))
                #expect(bobHello.shard == "s2" && bobHello.seq == 6 && bobHello.resumed)
                var replay: [ServerMessage.Chat] = []
                for _ in 0..<3 { replay.append(try await bob2.chat()) }
                #expect(replay.map(\.seq) == [4, 5, 6] && replay.map(\.message) == ["m4", "m5", "m6"])
                #expect(try await bob2.quiet(for: .milliseconds(300)) == nil, "bob got more than the replay")
                #expect(try await fleet.shard("s2").rooms().room(room)?.seq == 6)
                for connection in [alice, bob, alice2, bob2] { await connection.close() }
            }
        }

        @Test(.timeLimit(.minutes(1)))
        func newOwnerHoldsJoinsUntilTheStateArrives() async throws {
            try await TestFleet.with(shard: { $0.handoffWait = 20 }) { fleet in
                let room = Self.room(movingFrom: "s1", to: "s2", in: fleet.ring, prefix: "hold")
                let member = try await fleet.member(room, client: "old")
                #expect(try await member.hello().shard == "s1")
                for i in 1...3 { member.sendChat("h\(i)", id: "h-\(i)") }
                var seen = 0
                while seen < 3 { if case .chat = try await member.nextMessage() { seen += 1 } }

                let next = fleet.ring.draining("s1", epoch: 3)
                try await TestFleet.push(next, to: fleet.shard("s2"))
                // Straight to s2, which owns the room now but has no state yet: the join is held.
                let early = try await WebSocketConnection.connect(
                    host: "127.0.0.1", port: fleet.shard("s2").port, path: "/rooms/\(room)?name=early&since=3")
                #expect(try await early.quiet(for: .milliseconds(500)) == nil, "s2 answered before the state arrived")
                // A chat from the old owner's member is still served meanwhile: s1 has not seen the new ring.
                member.sendChat("h4", id: "h-4")
                var acked: UInt64?
                while acked == nil { if case .ack(let ack) = try await member.nextMessage() { acked = ack.seq } }
                #expect(acked == 4)

                try await TestFleet.push(next, to: fleet.shard("s1"))
                let hello = try await early.hello(timeout: .seconds(5))
                #expect(hello.shard == "s2" && hello.seq == 4 && hello.resumed)
                #expect(try await early.chat().message == "h4")
                #expect(try await member.closeFrame() == .close(code: 1012, reason: "moved"))
                await early.close()
                await member.close()
            }
        }

        @Test(.timeLimit(.minutes(1)))
        func drainMovesOnlyTheDrainedShardsRooms() async throws {
            try await TestFleet.with { fleet in
                var members: [(room: String, owner: String, connection: WebSocketConnection)] = []
                for id in ["s1", "s2", "s3"] {
                    for n in 0..<3 {
                        let room = TestFleet.room(ownedBy: id, in: fleet.ring, prefix: "drain\(n)")
                        let connection = try await fleet.join(room)
                        #expect(try await connection.hello().shard == id)
                        members.append((room, id, connection))
                    }
                }
                let lines = LineLog()
                let admin = FleetAdmin(proxies: [HostPort(host: "127.0.0.1", port: fleet.proxy.adminPort)],
                                       token: TestFleet.token, log: { lines.append($0) })
                try await admin.change(.drain(id: "s3"), dryRun: true, wait: nil)
                #expect(lines.text.contains("epoch 2 → 3: 3 of 9 rooms move (3 members)"), "\(lines.text)")
                #expect(fleet.proxy.context.ring.epoch == 2)
                try await admin.change(.drain(id: "s3"), dryRun: false, wait: (shard: "s3", timeout: 20))
                #expect(lines.text.contains("shard s3 holds no rooms"))
                #expect(fleet.proxy.context.ring.epoch == 3)

                for member in members where member.owner == "s3" {
                    #expect(try await member.connection.closeFrame() == .close(code: 1012, reason: "moved"))
                }
                for member in members where member.owner != "s3" {
                    #expect(try await member.connection.quiet(for: .milliseconds(200)) == nil,
                            "\(member.room) on \(member.owner) was disturbed by draining s3")
                }
                for id in ["s1", "s2"] {
                    let rooms = try await fleet.shard(id).rooms().rooms.map(\.room)
                    let kept = members.filter { $0.owner == id }.map(\.room)
                    #expect(Set(kept).isSubset(of: Set(rooms)), "\(id) lost rooms it kept owning")
                }
                #expect(try await fleet.shard("s3").rooms().rooms.isEmpty)
                for member in members { await member.connection.close() }
            }
        }

        @Test(.timeLimit(.minutes(2)))
        func chatsDuringAMoveAreNeverAckedThenLostNorDuplicated() async throws {
            try await TestFleet.with { fleet in
                let rooms = (0..<2).map { Self.room(movingFrom: "s1", to: "s2", in: fleet.ring, prefix: "busy\($0)") }
                let recorders = (0..<6).map { ClientRecorder(room: rooms[$0 % 2], index: $0) }
                let clients = recorders.map { $0.client(port: fleet.proxy.port) }
                for client in clients { await client.start() }
                #expect(await eventually(within: .seconds(10)) { recorders.allSatisfy { $0.connections >= 1 } })

                let perClient = 60
                let senders = Task {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for (client, recorder) in zip(clients, recorders) {
                            group.addTask {
                                for i in 0..<perClient {
                                    let text = "\(recorder.name)#\(i)"
                                    recorder.acked(text, seq: try await client.send(text))
                                    try await Task.sleep(for: .milliseconds(5))
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                }
                // The move starts mid-stream: after some messages went through, long before the last.
                #expect(await eventually(within: .seconds(20)) {
                    recorders.reduce(0) { $0 + $1.acknowledged.count } >= 30
                })
                let lines = LineLog()
                let admin = FleetAdmin(proxies: [HostPort(host: "127.0.0.1", port: fleet.proxy.adminPort)],
                                       token: TestFleet.token, log: { lines.append($0) })
                try await admin.change(.drain(id: "s1"), dryRun: false, wait: (shard: "s1", timeout: 20))
                try await senders.value

                // Every message was acked once, numbering has no holes, and every member has every message.
                let total = UInt64(perClient * 3)
                for room in rooms {
                    let snapshot = try await fleet.shard("s2").rooms().room(room)
                    #expect(snapshot?.seq == total, "\(room): seq \(snapshot?.seq ?? 0), \(total) sent")
                }
                #expect(await eventually(within: .seconds(10)) { recorders.allSatisfy { $0.lastSeq == total } })
                for recorder in recorders {
                    let peers = recorders.filter { $0.room == recorder.room }
                    #expect(recorder.problems(expectedLast: total, peers: peers) == [], "\(recorder.name)")
                    #expect(recorder.shards.last == "s2" && recorder.connections >= 2)
                }
                for client in clients { await client.close() }
            }
        }
    }
}

extension RingDocument {
    /// This ring with shard `id` draining, at `epoch` (default: one higher).
    func draining(_ id: String, epoch: UInt64? = nil) -> RingDocument {
        var next = self
        next.epoch = epoch ?? self.epoch + 1
        if let index = next.shards.firstIndex(where: { $0.id == id }) { next.shards[index].state = .draining }
        return next
    }
}

extension WebSocketConnection {
    /// Skips text until the close frame (or the end), and returns it.
    func closeFrame(timeout: Duration = .seconds(5)) async throws -> Event {
        while true {
            switch try await next(timeout: timeout) {
            case .close(let code, let reason): return .close(code: code, reason: reason)
            case .disconnected: return .disconnected
            default: continue
            }
        }
    }
}

/// Lines a ``FleetAdmin`` logs.
final class LineLog: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var text: String { lines.withLock { $0.joined(separator: "\n") } }
}

/// `GET /rooms` on a shard's admin port.
struct RoomList: Decodable {
    struct Entry: Decodable {
        var room: String
        var members: Int
        var seq: UInt64
    }
    var shard: String
    var epoch: UInt64
    var rooms: [Entry]

    func room(_ id: String) -> Entry? { rooms.first { $0.room == id } }
}

extension ShardServer {
    func rooms() async throws -> RoomList {
        let response = try await HTTPClient.request("GET", host: "127.0.0.1", port: adminPort, path: "/rooms",
                                                    headers: [("Authorization", "Bearer \(TestFleet.token)")])
        guard response.status == 200 else { throw TestFailure("GET /rooms: \(response.status)") }
        return try JSONDecoder().decode(RoomList.self, from: Data(response.body))
    }
}

extension TestFleet {
    /// A WebSocket member of `room` through the proxy with a client id, and `since` when given.
    func member(_ room: String, client: String, since: UInt64? = nil) async throws -> WebSocketConnection {
        let path = "/rooms/\(room)?name=\(client)&client=\(client)" + (since.map { "&since=\($0)" } ?? "")
        return try await WebSocketConnection.connect(host: "127.0.0.1", port: proxy.port, path: path)
    }
}

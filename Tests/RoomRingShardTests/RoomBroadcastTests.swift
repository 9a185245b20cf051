import Foundation
import Testing
import RoomRingClient
import RoomRingCore
import RoomRingShard

/// Broadcast, ordering, dedup, resume, the seed protocol and room bookkeeping over real sockets (DESIGN.md §3–§4).
@Suite(.serialized) struct RoomBroadcastTests {
    /// What one member received.
    struct Received: Sendable {
        var chats: [ServerMessage.Chat] = []
        var acks: [String: UInt64] = [:]
    }

    /// Reads until exactly `chats` chats and `acks` acks arrived (anything else fails), within `timeout` overall.
    static func collect(_ connection: WebSocketConnection, chats: Int, acks: Int,
                        timeout: Duration = .seconds(20)) async throws -> Received {
        let deadline = ContinuousClock.now + timeout
        var received = Received()
        while received.chats.count < chats || received.acks.count < acks {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else {
                throw TestFailure("got \(received.chats.count)/\(chats) chats, \(received.acks.count)/\(acks) acks")
            }
            switch try await connection.nextMessage(timeout: remaining) {
            case .chat(let chat): received.chats.append(chat)
            case .ack(let ack):
                guard received.acks.updateValue(ack.seq, forKey: ack.id) == nil else {
                    throw TestFailure("second ack for \(ack.id)")
                }
            case let other: throw TestFailure("unexpected \(other)")
            }
        }
        return received
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func manyRoomsManyMembersEachGetTheirRoomsMessagesOnceInOneOrder(mode: ScalingMode) async throws {
        let roomCount = 20, memberCount = 10, perMember = 5
        try await TestShard.with(mode: mode) { shard in
            let rooms = try await withThrowingTaskGroup(of: (Int, [WebSocketConnection]).self) { group in
                for r in 0..<roomCount {
                    group.addTask {
                        var members: [WebSocketConnection] = []
                        for m in 0..<memberCount {
                            members.append(try await shard.join("room-\(r)", name: "r\(r)m\(m)", client: "c\(r)-\(m)"))
                        }
                        return (r, members)
                    }
                }
                var rooms = Array(repeating: [WebSocketConnection](), count: roomCount)
                for try await (r, members) in group { rooms[r] = members }
                return rooms
            }
            // Everyone is admitted (hello) before anyone speaks, so everyone must see every message.
            for (r, members) in rooms.enumerated() {
                for member in members {
                    let hello = try await member.hello()
                    #expect(hello.room == "room-\(r)" && hello.seq == 0 && hello.resumed == false)
                }
            }
            for k in 0..<perMember {
                for (r, members) in rooms.enumerated() {
                    for (m, member) in members.enumerated() { member.sendChat("room-\(r)|r\(r)m\(m)|\(k)", id: "m\(k)") }
                }
            }
            let total = memberCount * perMember
            let received = try await withThrowingTaskGroup(of: (Int, Int, Received).self) { group in
                for (r, members) in rooms.enumerated() {
                    for (m, member) in members.enumerated() {
                        group.addTask { (r, m, try await Self.collect(member, chats: total, acks: perMember)) }
                    }
                }
                var all = Array(repeating: Array(repeating: Received(), count: memberCount), count: roomCount)
                for try await (r, m, got) in group { all[r][m] = got }
                return all
            }
            for r in 0..<roomCount {
                let reference = received[r][0].chats
                let expected = Set((0..<memberCount).flatMap { m in (0..<perMember).map { "room-\(r)|r\(r)m\(m)|\($0)" } })
                #expect(reference.map(\.seq) == Array(1...UInt64(total)), "room-\(r): seq must be 1...\(total)")
                #expect(Set(reference.map(\.message)) == expected, "room-\(r): every message exactly once")
                #expect(reference.allSatisfy { $0.message.hasPrefix("room-\(r)|") }, "room-\(r) got another room's message")
                for m in 0..<memberCount {
                    let got = received[r][m]
                    #expect(got.chats.map(\.message) == reference.map(\.message), "room-\(r) member \(m): same order")
                    #expect(got.chats.map(\.seq) == reference.map(\.seq))
                    // A sender's messages keep their send order, and each ack names the seq of that message.
                    let own = got.chats.filter { $0.from == "r\(r)m\(m)" }
                    #expect(own.map(\.message) == (0..<perMember).map { "room-\(r)|r\(r)m\(m)|\($0)" })
                    for (k, chat) in own.enumerated() { #expect(got.acks["m\(k)"] == chat.seq) }
                }
            }
            // Nothing more for anyone (no duplicates arriving late).
            try await withThrowingTaskGroup(of: Void.self) { group in
                for member in rooms.flatMap({ $0 }) {
                    group.addTask {
                        let extra = try await member.quiet(for: .milliseconds(200))
                        #expect(extra == nil)
                    }
                }
                try await group.waitForAll()
            }
            for member in rooms.flatMap({ $0 }) { await member.close() }
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func sendersCopyCarriesTheSeqOfItsAck(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode) { shard in
            let alice = try await shard.join("acks", name: "alice")
            let bob = try await shard.join("acks", name: "bob")
            _ = try await alice.hello()
            _ = try await bob.hello()
            bob.sendChat("one")
            bob.sendChat("two")
            #expect(try await bob.chat().seq == 1)
            #expect(try await bob.chat().seq == 2)
            alice.sendChat("three", id: "a-1")
            let got = try await Self.collect(alice, chats: 3, acks: 1)
            #expect(got.chats.map(\.seq) == [1, 2, 3])
            #expect(got.acks["a-1"] == 3)
            #expect(got.chats.last?.message == "three" && got.chats.last?.from == "alice")
            let seen = try await bob.chat()
            #expect(seen.seq == 3 && seen.message == "three" && seen.from == "alice")
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func rapidSenderIsSeenInSendOrderByEveryone(mode: ScalingMode) async throws {
        let count = 200
        try await TestShard.with(mode: mode) { shard in
            let sender = try await shard.join("fast", name: "sender")
            var receivers: [WebSocketConnection] = []
            for i in 0..<3 { receivers.append(try await shard.join("fast", name: "rx\(i)")) }
            for member in [sender] + receivers { _ = try await member.hello() }
            for i in 0..<count { sender.sendChat("msg-\(i)") }
            for member in [sender] + receivers {
                let got = try await Self.collect(member, chats: count, acks: 0)
                #expect(got.chats.map(\.message) == (0..<count).map { "msg-\($0)" })
                #expect(got.chats.map(\.seq) == Array(1...UInt64(count)))
            }
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func resentIdIsAckedWithTheOriginalSeqAndNotBroadcastAgain(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode) { shard in
            let alice = try await shard.join("dedup", name: "alice", client: "alice-phone")
            let bob = try await shard.join("dedup", name: "bob", client: "bob-laptop")
            _ = try await alice.hello()
            _ = try await bob.hello()
            alice.sendChat("hello", id: "d1")
            #expect(try await alice.nextMessage() == .ack(.init(id: "d1", seq: 1)))
            #expect(try await alice.chat().seq == 1)
            #expect(try await bob.chat().seq == 1)

            alice.sendChat("hello", id: "d1")
            #expect(try await alice.nextMessage() == .ack(.init(id: "d1", seq: 1)))
            #expect(try await bob.quiet(for: .milliseconds(300)) == nil)
            #expect(try await alice.quiet(for: .milliseconds(50)) == nil)

            // After a reconnect with the same ?client=, the resend is still recognized.
            await alice.close()
            let again = try await shard.join("dedup", name: "alice", client: "alice-phone")
            #expect(try await again.hello().seq == 1)
            again.sendChat("hello", id: "d1")
            #expect(try await again.nextMessage() == .ack(.init(id: "d1", seq: 1)))
            #expect(try await bob.quiet(for: .milliseconds(300)) == nil)

            // The same id from another client is a different message; a new id is a new message.
            bob.sendChat("mine", id: "d1")
            #expect(try await bob.nextMessage() == .ack(.init(id: "d1", seq: 2)))
            again.sendChat("next", id: "d2")
            #expect(try await again.chat().seq == 2)
            #expect(try await again.nextMessage() == .ack(.init(id: "d2", seq: 3)))
            #expect(try await again.chat().seq == 3)
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func reconnectWithSinceReplaysExactlyTheMissedMessages(mode: ScalingMode) async throws {
        let k = 3, m = 4
        try await TestShard.with(mode: mode) { shard in
            let alice = try await shard.join("resume", name: "alice")
            let bob = try await shard.join("resume", name: "bob", client: "bob")
            _ = try await alice.hello()
            _ = try await bob.hello()
            for i in 1...k { alice.sendChat("before-\(i)") }
            #expect(try await Self.collect(bob, chats: k, acks: 0).chats.map(\.seq) == [1, 2, 3])
            await bob.close()
            for i in 1...m { alice.sendChat("missed-\(i)", id: "x\(i)") }
            _ = try await Self.collect(alice, chats: k + m, acks: m)

            let back = try await shard.join("resume", name: "bob", client: "bob", since: UInt64(k))
            let hello = try await back.hello()
            #expect(hello.resumed == true && hello.seq == UInt64(k + m))
            let replay = try await Self.collect(back, chats: m, acks: 0)
            #expect(replay.chats.map(\.seq) == Array(UInt64(k + 1)...UInt64(k + m)))
            #expect(replay.chats.map(\.message) == (1...m).map { "missed-\($0)" })
            // Live messages continue right after the replay, with no gap and no repeat.
            alice.sendChat("live")
            let live = try await back.chat()
            #expect(live.seq == UInt64(k + m + 1) && live.message == "live")
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func resumeBeyondHistoryOrAheadOfTheRoomIsNotResumed(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode, configure: { $0.roomLog = .init(maxMessages: 5) }) { shard in
            let alice = try await shard.join("short", name: "alice")
            _ = try await alice.hello()
            for i in 1...10 { alice.sendChat("m\(i)", id: "i\(i)") }
            _ = try await Self.collect(alice, chats: 10, acks: 10)

            // History keeps 6...10: since=4 has a hole, since=5 is exactly covered.
            let gap = try await shard.join("short", name: "gap", since: 4)
            let gapHello = try await gap.hello()
            #expect(gapHello.resumed == false && gapHello.seq == 10)
            let exact = try await shard.join("short", name: "exact", since: 5)
            #expect(try await exact.hello().resumed == true)
            #expect(try await Self.collect(exact, chats: 5, acks: 0).chats.map(\.seq) == [6, 7, 8, 9, 10])

            let ahead = try await shard.join("short", name: "ahead", since: 11)
            let aheadHello = try await ahead.hello()
            #expect(aheadHello.resumed == false && aheadHello.seq == 10)
            #expect(try await ahead.quiet(for: .milliseconds(200)) == nil)

            // A room this shard has never seen (its previous shard died, say): not resumed, never silently.
            let unknown = try await shard.join("never-seen", name: "u", since: 50)
            let unknownHello = try await unknown.hello()
            #expect(unknownHello.resumed == false && unknownHello.seq == 0)

            let fresh = try await shard.join("short", name: "fresh")
            let freshHello = try await fresh.hello()
            #expect(freshHello.resumed == false && freshHello.seq == 10)
            #expect(try await fresh.quiet(for: .milliseconds(300)) == nil, "no since, no replay")
        }
    }

    /// History is bounded by bytes as well as by count, in both designs (pub/sub counts the stored frames).
    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func historyIsBoundedByBytes(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode, configure: { $0.roomLog = .init(maxMessages: 1000, maxBytes: 1000) }) { shard in
            let alice = try await shard.join("bytes", name: "alice")
            _ = try await alice.hello()
            let text = String(repeating: "x", count: 200)
            for i in 1...10 { alice.sendChat("\(i) \(text)", id: "b\(i)") }
            _ = try await Self.collect(alice, chats: 10, acks: 10)
            // 1,000 bytes hold three or four of these messages, never five.
            let trimmed = try await shard.join("bytes", name: "late", since: 5)
            #expect(try await trimmed.hello().resumed == false)
            let recent = try await shard.join("bytes", name: "recent", since: 8)
            #expect(try await recent.hello().resumed == true)
            #expect(try await Self.collect(recent, chats: 2, acks: 0).chats.map(\.seq) == [9, 10])
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func seedJoinIsANoOpForTheSameRoomAndRefusedForAnother(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode) { shard in
            let member = try await shard.join("seed", name: "old")
            _ = try await member.hello()
            member.send(text: #"{"type":"join","payload":{"roomId":"seed"}}"#)
            member.sendChat("still here", id: "s1")
            #expect(try await member.nextMessage() == .ack(.init(id: "s1", seq: 1)), "join for the same room: no error")
            #expect(try await member.chat().message == "still here")
            member.send(text: #"{"type":"join","payload":{"roomId":"elsewhere"}}"#)
            guard case .error(let error) = try await member.nextMessage() else { throw TestFailure("expected error") }
            #expect(error.code == "wrong_room")
            member.sendChat("after", id: "s2")
            #expect(try await member.nextMessage() == .ack(.init(id: "s2", seq: 2)))
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func seedEndpointNeedsAJoinBeforeChatting(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode) { shard in
            let listener = try await shard.join("123", name: "listener")
            _ = try await listener.hello()
            let seed = try await WebSocketConnection.connect(host: "127.0.0.1", port: shard.port, path: "/ws?name=seed")
            seed.sendChat("too early", id: "e1")
            guard case .error(let early) = try await seed.nextMessage() else { throw TestFailure("expected error") }
            #expect(early.code == "not_joined")
            seed.send(text: #"{"type":"join","payload":{"roomId":123}}"#)
            let hello = try await seed.hello()
            #expect(hello.room == "123" && hello.seq == 0)
            seed.sendChat("hi from seed", id: "e2")
            #expect(try await seed.nextMessage() == .ack(.init(id: "e2", seq: 1)))
            let heard = try await listener.chat()
            #expect(heard.message == "hi from seed" && heard.from == "seed" && heard.seq == 1)
            #expect(try await listener.quiet(for: .milliseconds(100)) == nil, "the early chat was never broadcast")
            await seed.close()
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func adminRoomsListsMembersAndSeqAndDropsToZeroWhenEveryoneLeaves(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode) { shard in
            var everyone: [WebSocketConnection] = []
            for (r, size) in [1, 2, 3].enumerated() {
                for m in 0..<size {
                    let member = try await shard.join("listed-\(r)", name: "m\(m)")
                    _ = try await member.hello()
                    everyone.append(member)
                }
                let speaker = everyone.last!
                for i in 0...r { speaker.sendChat("x\(i)", id: "x\(i)") }
                _ = try await Self.collect(speaker, chats: r + 1, acks: r + 1)
            }
            let listing = try await shard.rooms()
            #expect(listing.shard == "s1" && listing.epoch == 1)
            for (r, size) in [1, 2, 3].enumerated() {
                let snapshot = listing.room("listed-\(r)")
                #expect(snapshot?.members == size && snapshot?.seq == UInt64(r + 1), "listed-\(r): \(String(describing: snapshot))")
            }
            for member in everyone { await member.close() }
            let empty = try await eventually(within: .seconds(2)) {
                let rooms = try await shard.rooms().rooms
                return rooms.count == 3 && rooms.allSatisfy { $0.members == 0 }
            }
            #expect(empty, "members must drop to 0 after everyone disconnects")
            // History stays (default retention): seq is unchanged.
            #expect(try await shard.rooms().room("listed-2")?.seq == 3)
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func emptyRoomIsForgottenAfterItsRetention(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode, configure: { $0.emptyRoomRetention = 0.2 }) { shard in
            let member = try await shard.join("brief", name: "m", client: "m")
            _ = try await member.hello()
            member.sendChat("one", id: "1")
            _ = try await Self.collect(member, chats: 1, acks: 1)
            #expect(try await shard.rooms().room("brief")?.seq == 1)
            await member.close()
            let gone = try await eventually(within: .seconds(2)) { try await shard.rooms().room("brief") == nil }
            #expect(gone, "the empty room must be dropped after 0.2 s")
            let back = try await shard.join("brief", name: "m", client: "m", since: 1)
            let hello = try await back.hello()
            #expect(hello.seq == 0 && hello.resumed == false, "history is gone and the client is told")
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func emptyRoomKeepsItsHistoryWithTheDefaultRetention(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode) { shard in
            let member = try await shard.join("kept", name: "m", client: "m")
            _ = try await member.hello()
            member.sendChat("one", id: "1")
            _ = try await Self.collect(member, chats: 1, acks: 1)
            await member.close()
            #expect(try await eventually { try await shard.rooms().room("kept")?.members == 0 })
            try await Task.sleep(for: .milliseconds(500))
            let kept = try await shard.rooms().room("kept")
            #expect(kept?.members == 0 && kept?.seq == 1, "the room and its history stay")
            let back = try await shard.join("kept", name: "m", client: "m", since: 0)
            let hello = try await back.hello()
            #expect(hello.seq == 1 && hello.resumed == true)
            #expect(try await back.chat().message == "one")
        }
    }
}

import RoomRingClient
import RoomRingCore
import RoomRingProxy
import RoomRingShard
import Testing

extension ProxyTests {
    /// Sticky routing through the proxy: a room's members share one shard, the ring owner.
    @Suite struct Routing {
        struct Member: Sendable {
            var room: Int
            var index: Int
            var connection: WebSocketConnection
            var hello: ServerMessage.Hello
        }

        static func name(_ room: Int) -> String { "route-\(room)" }

        @Test(.timeLimit(.minutes(1)))
        func fiftyRoomsOfTenShareTheirOwnerAndOnlyTheirChats() async throws {
            try await TestFleet.with { fleet in
                let ring = HashRing(fleet.ring)
                let roomCount = 50
                let perRoom = 10

                // Everyone joins first (50 at a time), so every member is present for every chat.
                var members: [Member] = []
                for batch in stride(from: 0, to: roomCount, by: 5) {
                    try await withThrowingTaskGroup(of: Member.self) { group in
                        for room in batch..<min(batch + 5, roomCount) {
                            for index in 0..<perRoom {
                                group.addTask {
                                    let connection = try await fleet.join(Self.name(room), name: "m\(index)")
                                    return Member(room: room, index: index, connection: connection,
                                                  hello: try await connection.hello())
                                }
                            }
                        }
                        for try await member in group { members.append(member) }
                    }
                }
                #expect(members.count == roomCount * perRoom)

                var shardsUsed = Set<String>()
                for room in 0..<roomCount {
                    let owner = ring.owner(of: RoomID(Self.name(room))!)?.id
                    let seen = Set(members.filter { $0.room == room }.map(\.hello.shard))
                    #expect(seen == [owner ?? "?"], "room \(Self.name(room)): members on \(seen), owner \(owner ?? "none")")
                    shardsUsed.formUnion(seen)
                }
                #expect(shardsUsed == ["s1", "s2", "s3"])

                for member in members {
                    member.connection.send(text: ClientMessage.chat(message: "\(Self.name(member.room))/m\(member.index)",
                                                                    id: nil).encoded())
                }
                // Each member gets exactly its room's ten chats, seq 1...10.
                let failures = try await withThrowingTaskGroup(of: String?.self) { group in
                    for member in members {
                        group.addTask {
                            var texts = Set<String>()
                            var seqs = Set<UInt64>()
                            while texts.count < perRoom {
                                switch try await member.connection.nextMessage(timeout: .seconds(15)) {
                                case .chat(let chat):
                                    texts.insert(chat.message)
                                    seqs.insert(chat.seq)
                                case .ack: continue
                                case let other: return "\(Self.name(member.room))/m\(member.index) got \(other)"
                                }
                            }
                            let expected = Set((0..<perRoom).map { "\(Self.name(member.room))/m\($0)" })
                            guard texts == expected, seqs == Set(1...UInt64(perRoom)) else {
                                return "\(Self.name(member.room))/m\(member.index) got \(texts.sorted()) seqs \(seqs.sorted())"
                            }
                            return nil
                        }
                    }
                    var failures: [String] = []
                    for try await failure in group { if let failure { failures.append(failure) } }
                    return failures
                }
                #expect(failures.isEmpty, "\(failures.prefix(5))")

                // Nothing else arrives (another room's chat would show up here).
                try await Task.sleep(for: .milliseconds(300))
                let extra = members.filter { $0.connection.events.pendingCount > 0 }
                #expect(extra.isEmpty, "\(extra.count) members received more than their room's chats")

                let report = try await fleet.shardsReport()
                #expect(report.shards.map(\.tunnels).reduce(0, +) == roomCount * perRoom)
                for member in members { await member.connection.close() }
            }
        }
    }
}

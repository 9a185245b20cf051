import Foundation
import RoomRingClient
import RoomRingCore
import RoomRingShard
import Testing

/// `--state-dir`: a sticky shard saves its rooms on graceful shutdown and restores them at the next start.
@Suite(.serialized)
struct SavedRoomsTests {
    static func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("roomring-state-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test(.timeLimit(.minutes(1)))
    func aGracefulRestartKeepsHistoryAndDedup() async throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent(SavedRooms.fileName(shard: "s1"))
        let first = try await TestShard.start(configure: { $0.stateDirectory = directory.path })
        let alice = try await first.join("keep", name: "alice", client: "alice")
        _ = try await alice.hello()
        for i in 1...5 { alice.sendChat("m\(i)", id: "k\(i)") }
        _ = try await RoomBroadcastTests.collect(alice, chats: 5, acks: 5)
        await first.shutdown()

        let saved = try JSONDecoder().decode(SavedRooms.self, from: Data(contentsOf: file))
        #expect(saved.shard == "s1" && saved.epoch == 1 && saved.rooms.map(\.room.rawValue) == ["keep"])
        #expect(saved.rooms.first?.lastSeq == 5 && saved.rooms.first?.entries.count == 5)

        let second = try await TestShard.start(configure: { $0.stateDirectory = directory.path })
        do {
            #expect(!FileManager.default.fileExists(atPath: file.path), "read once, then deleted")
            let back = try await second.join("keep", name: "alice", client: "alice", since: 3)
            let hello = try await back.hello()
            #expect(hello.resumed == true && hello.seq == 5)
            #expect(try await RoomBroadcastTests.collect(back, chats: 2, acks: 0).chats.map(\.seq) == [4, 5])
            // The dedup table came back too: a resend of an acknowledged message is not a new message.
            back.sendChat("m5", id: "k5")
            #expect(try await back.nextMessage() == .ack(.init(id: "k5", seq: 5)))
            back.sendChat("m6", id: "k6")
            let next = try await RoomBroadcastTests.collect(back, chats: 1, acks: 1)
            #expect(next.chats.map(\.seq) == [6])
        } catch {
            await second.shutdown()
            throw error
        }
        await second.shutdown()
        #expect(FileManager.default.fileExists(atPath: file.path), "saved again at the second shutdown")
    }

    /// A ring change while the shard was down may have moved its rooms: their old state must not come back.
    @Test(.timeLimit(.minutes(1)))
    func stateSavedUnderAnotherRingEpochIsNotRestored() async throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try await TestShard.start(configure: { $0.stateDirectory = directory.path })
        let alice = try await first.join("epoch", name: "alice")
        _ = try await alice.hello()
        alice.sendChat("before", id: "b1")
        _ = try await RoomBroadcastTests.collect(alice, chats: 1, acks: 1)
        await first.shutdown()

        let second = try await TestShard.start(ring: TestShard.soloRing(epoch: 2),
                                               configure: { $0.stateDirectory = directory.path })
        let back = try await second.join("epoch", name: "alice", since: 1)
        let hello = try await back.hello()
        await second.shutdown()
        #expect(hello.resumed == false && hello.seq == 0, "a fresh room, and the client is told")
    }

    @Test(.timeLimit(.minutes(1)))
    func anUnreadableStateFileIsSetAsideAndTheShardStarts() async throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent(SavedRooms.fileName(shard: "s1"))
        try Data("{ not json".utf8).write(to: file)
        let shard = try await TestShard.start(configure: { $0.stateDirectory = directory.path })
        let member = try await shard.join("fresh", name: "m")
        let hello = try await member.hello()
        await shard.shutdown()
        #expect(hello.seq == 0)
        #expect(FileManager.default.fileExists(atPath: file.appendingPathExtension("unusable").path))
    }

    @Test func savedRoomsRoundTripAndMismatchReasons() throws {
        var log = RoomLog(limits: .init())
        _ = log.append(message: "hi", from: "a", ts: 1)
        let saved = SavedRooms(shard: "s1", epoch: 3, savedAt: 42,
                               rooms: [RoomHandoff(room: RoomID("r")!, from: "s1", epoch: 3, log: log)])
        let decoded = try JSONDecoder().decode(SavedRooms.self, from: JSONEncoder().encode(saved))
        #expect(decoded == saved)
        #expect(saved.mismatch(shard: "s1", epoch: 3) == nil)
        #expect(saved.mismatch(shard: "s2", epoch: 3)?.contains("saved by shard s1") == true)
        #expect(saved.mismatch(shard: "s1", epoch: 4)?.contains("epoch 3") == true)
    }
}

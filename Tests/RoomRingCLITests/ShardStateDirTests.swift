import Foundation
import RoomRingClient
import RoomRingCore
import RoomRingSpawn
import Testing

extension UpCommandTests {
    /// `roomring shard --state-dir`, as systemd runs it: SIGTERM saves the rooms, the next start restores them.
    @Test func aShardRestartedWithSIGTERMKeepsItsRoomsWithAStateDirectory() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("roomring-state-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let ports = try LoopbackPort.free(2)
        let ring = RingDocument(epoch: 1, shards: [.init(id: "s1", address: "127.0.0.1:\(ports[0])",
                                                         admin: "127.0.0.1:\(ports[1])")])
        let ringFile = directory.appendingPathComponent("ring.json")
        try ring.encoded().write(to: ringFile)
        let arguments = ["shard", "--id", "s1", "--ring", ringFile.path, "--port", "127.0.0.1:\(ports[0])",
                         "--admin-port", "127.0.0.1:\(ports[1])", "--event-loops", "1", "--state-dir", directory.path]
        func start() async throws -> RoomRingProcess {
            let shard = try RoomRingProcess(arguments, environment: ["ROOMRING_ADMIN_TOKEN": "t"])
            try await shard.waitFor("shard listening")
            return shard
        }

        let first = try await start()
        let alice = try await WebSocketConnection.connect(host: "127.0.0.1", port: ports[0],
                                                          path: "/rooms/kept?name=alice&client=alice")
        _ = try await alice.nextMessage()
        for i in 1...3 { alice.sendChat("m\(i)", id: "k\(i)") }
        var seen = 0
        while seen < 6 { _ = try await alice.nextMessage(); seen += 1 }  // three chats and three acks
        #expect(await first.stop(SIGTERM) == 0)
        #expect(first.text.contains("rooms saved to the state directory"), "\(first.text)")

        await alice.close()
        let second = try await start()
        do {
            #expect(second.text.contains("rooms restored from the state directory"), "\(second.text)")
            let back = try await WebSocketConnection.connect(host: "127.0.0.1", port: ports[0],
                                                             path: "/rooms/kept?name=alice&client=alice&since=1")
            guard case .hello(let hello) = try await back.nextMessage() else { throw ProcessFailure("no hello") }
            #expect(hello.resumed == true && hello.seq == 3)
            var replayed: [UInt64] = []
            while replayed.count < 2 {
                if case .chat(let chat) = try await back.nextMessage() { replayed.append(chat.seq) }
            }
            #expect(replayed == [2, 3])
            await back.close()
        } catch {
            _ = await second.stop(SIGKILL)
            throw error
        }
        _ = await second.stop(SIGTERM)
    }
}

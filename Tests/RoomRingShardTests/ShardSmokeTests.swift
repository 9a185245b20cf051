import Testing
import RoomRingClient
import RoomRingCore
import RoomRingShard

@Suite struct ShardSmokeTests {
    @Test(arguments: TestModes.all) func helloChatAckRoundTrip(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode) { shard in
            let alice = try await shard.join("lobby", name: "alice", client: "a")
            let hello = try await alice.hello()
            #expect(hello.shard == "s1" && hello.room == "lobby" && hello.seq == 0 && hello.resumed == false)
            alice.send(text: ClientMessage.chat(message: "hi", id: "m1").encoded())
            #expect(try await alice.nextMessage() == .ack(.init(id: "m1", seq: 1)))
            let chat = try await alice.chat()
            #expect(chat.message == "hi" && chat.from == "alice" && chat.seq == 1)
            await alice.close()
        }
    }
}

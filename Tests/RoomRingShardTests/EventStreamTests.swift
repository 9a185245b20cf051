import Foundation
import NIOCore
import NIOPosix
import Testing
import RoomRingClient
import RoomRingCore
import RoomRingShard

/// `GET /rooms/<id>/events`: Server-Sent Events that are room members like WebSocket connections.
@Suite(.serialized) struct EventStreamTests {
    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func liveChatsArriveAsEventsWithTheirSeqAsId(mode: ScalingMode) async throws {
        try await TestShard.with(eventLoops: 2, mode: mode) { shard in
            let stream = try await shard.events("live")
            #expect(stream.header("Content-Type")?.hasPrefix("text/event-stream") == true)
            #expect(stream.header("Cache-Control") == "no-cache")
            let hello = try await stream.hello()
            #expect(hello.room == "live" && hello.seq == 0 && hello.shard == "s1")

            #expect(try await shard.publish("live", PublishRequest(message: "from the backend", from: "svc").encoded()).status == 201)
            let published = try await stream.nextEvent()
            #expect(published.event == "chat" && published.id == "1")
            let first = try published.chat()
            #expect(first == ServerMessage.Chat(message: "from the backend", from: "svc", seq: 1, ts: first.ts))
            let member = try await shard.join("live", name: "alice")
            _ = try await member.hello()
            member.sendChat("multi\nline")
            let chat = try await stream.nextEvent()
            let line = try chat.chat()
            #expect(chat.id == "2" && line.message == "multi\nline" && line.from == "alice")
            // The member joined after the publish: it gets its own chat, which the stream got with the same seq.
            #expect(try await member.chat().seq == 2)
            await stream.close()
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func lastEventIDReplaysWhatWasMissed(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode) { shard in
            for i in 1...4 { _ = try await shard.publish("replay", PublishRequest(message: "m\(i)").encoded()) }
            let resumed = try await shard.events("replay", lastEventID: "2")
            #expect(try await resumed.hello().resumed)
            #expect(try await resumed.nextEvent().id == "3")
            #expect(try await resumed.nextEvent().id == "4")
            _ = try await shard.publish("replay", PublishRequest(message: "m5").encoded())
            #expect(try await resumed.nextEvent().id == "5")
            await resumed.close()

            // `?since=` works too (for clients that cannot set headers); the header wins when both are given.
            let bySince = try await shard.events("replay", query: "since=4")
            #expect(try await bySince.hello().seq == 5)
            #expect(try await bySince.nextEvent().id == "5")
            await bySince.close()
            let both = try await shard.events("replay", lastEventID: "3", query: "since=0")
            _ = try await both.hello()
            #expect(try await both.nextEvent().id == "4")
            await both.close()

            // Ahead of the room: told with resumed=false, then live events only.
            let ahead = try await shard.events("replay", lastEventID: "77")
            #expect(try await ahead.hello().resumed == false)
            _ = try await shard.publish("replay", PublishRequest(message: "m6").encoded())
            #expect(try await ahead.nextEvent().id == "6")
            await ahead.close()
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func aStreamIsAMemberWithHeartbeatsAndLeavesWhenClosed(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode, configure: { $0.eventStreamHeartbeat = 0.2 }) { shard in
            let stream = try await shard.events("beat")
            _ = try await stream.hello()
            #expect(try await eventually { try await shard.rooms().room("beat")?.members == 1 })
            #expect(try await shard.metric("roomring_shard_connections") == 1)
            let deadline = ContinuousClock.now + .seconds(5)
            var comments = 0
            while comments < 2, ContinuousClock.now < deadline {
                if case .comment(let text) = try await stream.next(timeout: .seconds(3)) {
                    #expect(text == "keepalive")
                    comments += 1
                }
            }
            #expect(comments == 2)
            await stream.close()
            // Generous: under a full parallel run the shard may notice the close only at its next heartbeat write.
            #expect(try await eventually(within: .seconds(15)) { try await shard.rooms().room("beat")?.members == 0 })
            #expect(try await eventually(within: .seconds(15)) { try await shard.metric("roomring_shard_connections") == 0 })
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func theStreamEndsWhenTheShardStops() async throws {
        let shard = try await TestShard.start()
        let stream = try await shard.events("bye")
        _ = try await stream.hello()
        let stopping = Task { await shard.shutdown() }
        let ended = try await eventually(within: .seconds(5)) {
            if case .ended = try await stream.next(timeout: .seconds(5)) { return true }
            return false
        }
        #expect(ended, "the stream ends so that EventSource reconnects")
        await stopping.value
    }

    // Up to 40 s of flooding: see ShardLimitsTests.slowConsumerIsClosedWhileOthersKeepReceiving.
    @Test(.timeLimit(.minutes(2)), arguments: TestModes.all)
    func aReaderThatStopsReadingIsDroppedAndOthersKeepReceiving(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode, configure: { $0.maxOutboundBytes = 64 * 1024 }) { shard in
            let reader = try await shard.events("slow-sse")
            _ = try await reader.hello()
            let stalled = try await StalledStream.open(port: shard.port, path: "/rooms/slow-sse/events")
            #expect(try await eventually { try await shard.rooms().room("slow-sse")?.members == 2 })
            let payload = String(repeating: "x", count: 4096)
            var sent = 0
            let deadline = ContinuousClock.now + .seconds(40)
            while try await shard.metric("roomring_shard_slow_consumer_closes_total") < 1, ContinuousClock.now < deadline {
                for _ in 0..<8 {
                    sent += 1
                    #expect(try await shard.publish("slow-sse", PublishRequest(message: "\(sent)|" + payload).encoded()).status == 201)
                }
            }
            #expect(try await shard.metric("roomring_shard_slow_consumer_closes_total") == 1)
            #expect(try await eventually { try await shard.rooms().room("slow-sse")?.members == 1 })
            #expect(try await stalled.resumeAndAwaitEnd(within: .seconds(5)), "the stalled stream's connection must end")
            // The reading stream got every message, in order.
            for seq in 1...sent {
                let event = try await reader.nextEvent()
                #expect(event.id == String(seq))
            }
            await reader.close()
        }
    }
}

extension ShardServer {
    /// Opens `GET /rooms/<room>/events`.
    func events(_ room: String, lastEventID: String? = nil, query: String? = nil) async throws -> EventStreamConnection {
        try await EventStreamConnection.connect(host: "127.0.0.1", port: port,
                                                path: "/rooms/\(room)/events" + (query.map { "?\($0)" } ?? ""),
                                                lastEventID: lastEventID)
    }
}

extension EventStreamConnection {
    func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }

    /// The `hello` event every stream starts with.
    func hello() async throws -> ServerMessage.Hello {
        let event = try await nextEvent()
        guard event.event == "hello" else { throw TestFailure("expected hello, got \(event)") }
        return try JSONDecoder().decode(ServerMessage.Hello.self, from: Data(event.data.utf8))
    }
}

extension EventStreamConnection.Event {
    func chat() throws -> ServerMessage.Chat {
        guard event == "chat" else { throw TestFailure("expected a chat event, got \(self)") }
        return try JSONDecoder().decode(ServerMessage.Chat.self, from: Data(data.utf8))
    }
}

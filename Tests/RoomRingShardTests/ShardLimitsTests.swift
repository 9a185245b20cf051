import Foundation
import NIOCore
import NIOPosix
import Testing
import RoomRingClient
import RoomRingCore
import RoomRingShard

/// Per-connection and per-shard limits over real sockets (DESIGN.md §4): size, rate, slow consumers, keepalive,
/// connection cap.
@Suite(.serialized) struct ShardLimitsTests {
    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func oversizedMessagesCloseWith1009AndOthersKeepWorking(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode, configure: { $0.maxMessageBytes = 1024 }) { shard in
            let bystander = try await shard.join("big", name: "bystander")
            let elsewhere = try await shard.join("other", name: "elsewhere")
            _ = try await bystander.hello()
            _ = try await elsewhere.hello()

            let whole = try await shard.join("big", name: "whole")
            _ = try await whole.hello()
            whole.sendChat(String(repeating: "a", count: 2000))
            #expect(try await whole.closeCode() == 1009)

            // Fragments that each fit but together exceed the limit.
            let fragmented = try await shard.join("big", name: "fragmented")
            _ = try await fragmented.hello()
            let text = Array(ClientMessage.chat(message: String(repeating: "b", count: 1200), id: nil).encoded().utf8)
            fragmented.write(fin: false, opcode: 0x1, payload: Array(text[..<600]))
            fragmented.write(fin: true, opcode: 0x0, payload: Array(text[600...]))
            #expect(try await fragmented.closeCode() == 1009)

            // The same split under the limit is one accepted message: the limit is on the sum, not on frames.
            let fits = try await shard.join("big", name: "fits")
            _ = try await fits.hello()
            let small = Array(ClientMessage.chat(message: String(repeating: "c", count: 900), id: "f").encoded().utf8)
            fits.write(fin: false, opcode: 0x1, payload: Array(small[..<450]))
            fits.write(fin: true, opcode: 0x0, payload: Array(small[450...]))
            #expect(try await fits.nextMessage() == .ack(.init(id: "f", seq: 1)))

            #expect(try await bystander.chat().seq == 1, "nothing of the oversized messages was broadcast")
            bystander.sendChat("still fine", id: "b")
            #expect(try await bystander.nextMessage() == .ack(.init(id: "b", seq: 2)))
            elsewhere.sendChat("me too", id: "e")
            #expect(try await elsewhere.nextMessage() == .ack(.init(id: "e", seq: 1)))
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func floodingPastTheRateLimitGetsAnErrorThen1008(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode, configure: { $0.messagesPerSecond = 5; $0.messageBurst = 5 }) { shard in
            let member = try await shard.join("rate", name: "flooder")
            _ = try await member.hello()
            for i in 0..<30 { member.sendChat("spam \(i)", id: "r\(i)") }
            var acked: [UInt64] = []
            var refusal: ServerMessage.ErrorPayload?
            while refusal == nil {
                switch try await member.nextMessage() {
                case .ack(let ack): acked.append(ack.seq)
                case .chat: continue
                case .error(let error): refusal = error
                case let other: throw TestFailure("unexpected \(other)")
                }
            }
            #expect(refusal?.code == "rate_limited")
            #expect(acked.count <= 5, "at most the burst is accepted before the refusal")
            #expect(try await member.closeCode() == 1008)
            #expect(try await shard.metric("roomring_shard_rate_limit_closes_total") == 1)
            #expect(try await shard.rooms().room("rate").map { $0.seq <= 5 } == true)
        }
    }

    // Up to 40 s of flooding: the kernel's socket buffers (autotuned to megabytes) fill before the shard's queue
    // does, and under a full parallel run (the chaos test) the flood is slow.
    @Test(.timeLimit(.minutes(2)), arguments: TestModes.all)
    func slowConsumerIsClosedWhileOthersKeepReceiving(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode, configure: { $0.maxOutboundBytes = 64 * 1024 }) { shard in
            let reader = try await shard.join("slow", name: "reader")
            let flooder = try await shard.join("slow", name: "flooder")
            _ = try await reader.hello()
            _ = try await flooder.hello()
            let stalled = try await StalledMember.open(port: shard.port, path: "/rooms/slow?name=stalled")
            #expect(try await eventually { try await shard.rooms().room("slow")?.members == 3 })

            let payload = String(repeating: "x", count: 4096)
            var sent = 0
            var received = 0
            func round(_ count: Int) async throws {
                for _ in 0..<count {
                    flooder.sendChat("\(sent)|" + payload)
                    sent += 1
                }
                while received < sent {
                    let chat = try await reader.chat()
                    #expect(chat.seq == UInt64(received + 1) && chat.message.hasPrefix("\(received)|"))
                    received += 1
                }
            }
            let deadline = ContinuousClock.now + .seconds(40)
            while try await shard.metric("roomring_shard_slow_consumer_closes_total") < 1,
                ContinuousClock.now < deadline
            {
                try await round(8)
            }
            #expect(try await shard.metric("roomring_shard_slow_consumer_closes_total") == 1,
                    "the stalled member must be closed after ~64 KiB queued")
            #expect(try await eventually { try await shard.rooms().room("slow")?.members == 2 })
            // Its TCP connection really ended: once we read again, the stream ends.
            #expect(try await stalled.resumeAndAwaitEnd(within: .seconds(5)), "the slow member's connection must end")
            // The normal reader got every message, and still does.
            try await round(16)
            #expect(received == sent && sent > 0)
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func keepalivePingsKeepAnsweringPeersConnected(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode, configure: { $0.pingInterval = 0.2; $0.deadPeerTimeout = 0.6 }) { shard in
            let member = try await shard.join("alive", name: "ponger")
            _ = try await member.hello()
            var pings = 0
            let until = ContinuousClock.now + .milliseconds(1500)
            listening: while true {
                let remaining = until - ContinuousClock.now
                guard remaining > .milliseconds(20) else { break listening }
                do {
                    switch try await member.next(timeout: remaining) {
                    case .ping: pings += 1
                    case let other: throw TestFailure("connection ended or sent \(other)")
                    }
                } catch is EventInbox<WebSocketConnection.Event>.Timeout {
                    break listening
                }
            }
            #expect(pings >= 3, "the shard pings every 0.2 s")
            member.sendChat("still here", id: "k")
            #expect(try await member.nextMessage() == .ack(.init(id: "k", seq: 1)))
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func silentPeerThatIgnoresPingsIsDisconnected(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode, configure: { $0.pingInterval = 0.2; $0.deadPeerTimeout = 0.6 }) { shard in
            let start = ContinuousClock.now
            let silent = try await WebSocketConnection.connect(host: "127.0.0.1", port: shard.port,
                                                               path: "/rooms/alive?name=silent", answerPings: false)
            _ = try await silent.hello()
            // Generous: the full suite runs many fleets at once on two cores.
            let deadline = start + .seconds(6)
            var ended = false
            while !ended, case let remaining = deadline - ContinuousClock.now, remaining > .milliseconds(20) {
                switch try await silent.next(timeout: remaining) {  // throws a Timeout when it stays connected
                case .close, .disconnected: ended = true
                default: continue
                }
            }
            #expect(ended, "a peer that never answers pings must be disconnected within 6 s")
            let elapsed = ContinuousClock.now - start
            #expect(elapsed >= .milliseconds(550), "closed before the dead-peer timeout: \(elapsed)")
            #expect(try await eventually { try await shard.metric("roomring_shard_connections") == 0 })
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func connectionCapRefusesTheNextAndFreesASlotOnLeave(mode: ScalingMode) async throws {
        try await TestShard.with(mode: mode, configure: { $0.maxConnections = 3 }) { shard in
            var members: [WebSocketConnection] = []
            for i in 0..<3 {
                let member = try await shard.join("cap", name: "m\(i)")
                _ = try await member.hello()
                members.append(member)
            }
            do {
                let extra = try await shard.join("cap", name: "extra")
                #expect(try await extra.closeCode() == 1013, "a 4th connection racing the check is closed with 1013")
            } catch let refused as WebSocketConnection.Refused {
                #expect(refused.status == 503)
            }
            await members.removeFirst().close()
            var admitted: WebSocketConnection?
            let freed = try await eventually(within: .seconds(3), every: .milliseconds(50)) {
                do {
                    admitted = try await shard.join("cap", name: "late")
                    return true
                } catch let refused as WebSocketConnection.Refused where refused.status == 503 {
                    return false
                }
            }
            #expect(freed, "a slot frees up after a member leaves")
            let hello = try await #require(admitted).hello()
            #expect(hello.room == "cap")
            members.append(try #require(admitted))
            for member in members { member.sendChat("ok") }
            for member in members { #expect(try await member.chat().message == "ok") }
        }
    }
}

extension ShardLimitsTests {
    @Test(.timeLimit(.minutes(1)), arguments: TestModes.all)
    func joinRateLimitCountsEachHandshakeOnce(mode: ScalingMode) async throws {
        // 1 join/s with a burst of 2: two joins in a row fit, the third is told to come back later.
        try await TestShard.with(mode: mode, configure: { $0.joinsPerSecond = 1 }) { shard in
            for i in 0..<2 {
                let member = try await shard.join("joins", name: "j\(i)")
                #expect(try await member.hello().room == "joins", "join \(i) is within the burst")
            }
            do {
                let third = try await shard.join("joins", name: "j2")
                await third.close()
                Issue.record("a third join within the same second must be refused")
            } catch let refused as WebSocketConnection.Refused {
                #expect(refused.status == 503 && refused.header("Retry-After") == "1")
            }
        }
    }
}

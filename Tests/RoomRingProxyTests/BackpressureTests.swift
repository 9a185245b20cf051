import Foundation
import NIOCore
import RoomRingClient
import RoomRingCore
import RoomRingProxy
import RoomRingShard
import Synchronization
import Testing

/// A flag one task sets and others poll.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}

extension ProxyTests {
    /// A member that never reads must not make the proxy buffer without bound or slow other tunnels down.
    @Suite struct Backpressure {
        /// Chats in `room` (send, wait for the echo) until `stop` is set; returns the round-trip times.
        static func chatter(_ fleet: TestFleet, room: String, stop: StopFlag) async throws -> [Duration] {
            let member = try await fleet.join(room, name: "chatter")
            _ = try await member.hello()
            var latencies: [Duration] = []
            while !stop.isSet {
                let start = ContinuousClock.now
                member.send(text: ClientMessage.chat(message: "tick \(latencies.count)", id: nil).encoded())
                let chat = try await member.chat(timeout: .seconds(5))
                guard chat.message == "tick \(latencies.count)" else { throw TestFailure("chatter got \(chat)") }
                latencies.append(ContinuousClock.now - start)
                try await Task.sleep(for: .milliseconds(20))
            }
            await member.close()
            return latencies
        }

        @Test(.timeLimit(.minutes(2)))
        func slowReaderIsClosedByItsShardWhileOtherRoomsKeepChatting() async throws {
            try await TestFleet.with(shard: {
                $0.maxOutboundBytes = 256 * 1024
                $0.maxMessageBytes = 64 * 1024
            }, proxy: {
                // The proxy holds a slow reader's tunnel until it has been stuck this long.
                $0.idleTunnelTimeout = 3
            }) { fleet in
                let slowRoom = TestFleet.room(ownedBy: "s1", in: fleet.ring, prefix: "flood")
                let otherRooms = [TestFleet.room(ownedBy: "s2", in: fleet.ring, prefix: "calm"),
                                  TestFleet.room(ownedBy: "s3", in: fleet.ring, prefix: "calm")]

                // The slow member: a WebSocket handshake by hand, then it never reads again. It does keep sending
                // pings while the flood runs, like a live client on a congested link, so the proxy's idle timeout
                // (which counts reads too) cannot end its tunnel before the shard's slow-consumer rule does.
                let slow = try await RawClient.connect(port: fleet.proxy.port, autoRead: false, receiveBuffer: 4096)
                try await slow.send(RawClient.upgradeRequest("/rooms/\(slowRoom)?name=slow"))
                let head = try await slow.readHead(timeout: .seconds(5), pulling: true)
                #expect(String(decoding: head.prefix(12), as: UTF8.self) == "HTTP/1.1 101")

                let flooder = try await fleet.join(slowRoom, name: "flooder")
                _ = try await flooder.hello()
                #expect(try await fleet.shardsReport().shard("s1")?.tunnels == 2)

                let stop = StopFlag()
                let chatters = otherRooms.map { room in
                    Task { try await Self.chatter(fleet, room: room, stop: stop) }
                }

                // Flood in small paced batches (the flooder reads its own echoes, so only the slow member lags)
                // until the shard closes the slow member: proof that backpressure reached the shard through the
                // proxy instead of piling up in it.
                let ping = WebSocketConnection.encodeFrame(fin: true, rsv: 0, opcode: 0x9, payload: [1, 2, 3], masked: true)
                let payload = String(repeating: "x", count: 16 * 1024)
                let message = ClientMessage.chat(message: payload, id: nil).encoded()
                var sent = 0
                var closedBySlowConsumerRule = false
                while sent < 64 << 20 {
                    for _ in 0..<8 { flooder.send(text: message) }
                    sent += 8 * message.utf8.count
                    for _ in 0..<8 { _ = try await flooder.chat(timeout: .seconds(10)) }
                    try await slow.send(Array(ping.readableBytesView))
                    let metrics = try await HTTPClient.request(
                        "GET", host: "127.0.0.1", port: fleet.shard("s1").adminPort, path: "/metrics",
                        headers: [("Authorization", "Bearer \(TestFleet.token)")])
                    if let closes = metric("roomring_shard_slow_consumer_closes_total", in: metrics.text),
                        closes >= 1
                    {
                        closedBySlowConsumerRule = true
                        break
                    }
                }
                #expect(closedBySlowConsumerRule, "no slow-consumer close after \(sent >> 20) MiB")
                if closedBySlowConsumerRule { print("backpressure: slow member closed by its shard after \(sent >> 10) KiB") }
                await flooder.close()

                // Now silent, the slow tunnel ends through the idle timeout (the flooder's ends by its close): the
                // proxy forwards what it holds rather than cutting a reader off while bytes are still on their way.
                let start = ContinuousClock.now
                let ended = await eventually(within: .seconds(15), every: .milliseconds(100)) {
                    (try? await fleet.shardsReport().shard("s1")?.tunnels) == 0
                }
                #expect(ended, "the slow member's tunnel was still open after 15 s")
                print("backpressure: slow tunnel ended \(ContinuousClock.now - start) after the flood")

                stop.set()
                for (room, chatter) in zip(otherRooms, chatters) {
                    let latencies = try await chatter.value.sorted()
                    #expect(latencies.count >= 10, "\(room): only \(latencies.count) round trips")
                    let median = latencies[latencies.count / 2]
                    let worst = latencies.last ?? .zero
                    print("backpressure: \(room) \(latencies.count) round trips, median \(median), worst \(worst)")
                    #expect(median < .milliseconds(250) && worst < .seconds(2), "\(room): median \(median), worst \(worst)")
                }
                await slow.close()
                try await fleet.expectWorkingRoundTrip(slowRoom)
            }
        }
    }
}

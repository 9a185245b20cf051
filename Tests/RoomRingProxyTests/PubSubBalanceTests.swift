import RoomRingClient
import RoomRingCore
import RoomRingProxy
import RoomRingRedis
import RoomRingShard
import Testing

extension ProxyTests {
    /// Pub/sub mode behind the proxy: members of one room spread over every shard (round-robin or least tunnels),
    /// and still see one contiguous seq. Skipped, with the reason printed, where `redis-server` is not installed.
    @Suite(.enabled(if: RedisServerProcess.locate() != nil, "redis-server is not installed"))
    struct PubSubBalance {
        @Test(.timeLimit(.minutes(1)), arguments: [BalanceMode.roundRobin, .leastTunnels])
        func oneRoomSpreadsOverEveryShardAndKeepsOneSeq(balance: BalanceMode) async throws {
            let redis = try await RedisServerProcess.start()
            defer { redis.kill() }
            try await TestFleet.with(shard: { shard in
                shard.mode = .pubsub
                shard.redisURL = "redis://127.0.0.1:\(redis.port)"
            }, proxy: { $0.balance = balance }) { fleet in
                // The shards became ready once Redis answered; wait until the proxy's health checks agree.
                let healthy = try await eventually(within: .seconds(5)) {
                    try await fleet.shardsReport().shards.allSatisfy(\.healthy)
                }
                #expect(healthy)
                var members: [WebSocketConnection] = []
                var perShard: [String: Int] = [:]
                for i in 0..<6 {
                    let member = try await fleet.join("everywhere", name: "m\(i)")
                    perShard[try await member.hello().shard, default: 0] += 1
                    members.append(member)
                }
                #expect(perShard == ["s1": 2, "s2": 2, "s3": 2], "\(balance): \(perShard)")
                for (i, member) in members.enumerated() {
                    member.send(text: ClientMessage.chat(message: "from-\(i)", id: nil).encoded())
                }
                var orders: [[String]] = []
                for member in members {
                    var chats: [ServerMessage.Chat] = []
                    while chats.count < members.count { chats.append(try await member.chat()) }
                    #expect(chats.map(\.seq) == Array(1...UInt64(members.count)))
                    orders.append(chats.map(\.message))
                }
                #expect(Set(orders.map { $0.joined(separator: ",") }).count == 1, "everyone sees one order")
                for member in members { await member.close() }

                if balance == .leastTunnels {
                    // After s1's members leave, new members fill s1 first.
                    let report = try await eventually(within: .seconds(3)) {
                        try await fleet.shardsReport().shards.allSatisfy { $0.tunnels == 0 }
                    }
                    #expect(report)
                    let held = [try await fleet.join("lt", name: "a"), try await fleet.join("lt", name: "b")]
                    let shardsHeld = Set([try await held[0].hello().shard, try await held[1].hello().shard])
                    #expect(shardsHeld.count == 2, "least tunnels never doubles up while a shard is empty")
                    for member in held { await member.close() }
                }
            }
        }
    }
}

import Foundation
import RoomRingClient
import RoomRingCore
import RoomRingProxy
import RoomRingShard
import Testing

extension ProxyTests {
    /// A proxy with a stale ring converges through 421, and the admin API guards and reports its ring.
    @Suite struct RingAndAdmin {
        @Test(.timeLimit(.minutes(1)))
        func staleRingConvergesThroughOne421AndRetry() async throws {
            try await TestFleet.with { fleet in
                // Epoch 3 (shards only): s1 drains, so rooms of s1 under epoch 2 now belong elsewhere.
                var next = fleet.ring
                next.epoch = 3
                next.shards[0].state = .draining
                let rooms = (0..<8).map { TestFleet.room(ownedBy: "s1", in: fleet.ring, prefix: "moved\($0)") }
                for shard in fleet.shards { try await TestFleet.push(next, to: shard) }
                #expect(fleet.proxy.context.ring.epoch == 2)

                // Concurrent first connections: each must succeed on its first try and land on the new owner, also
                // those whose 421 arrives after another request already refreshed the ring.
                let landed = try await withThrowingTaskGroup(of: (String, ServerMessage.Hello).self) { group in
                    for room in rooms {
                        group.addTask {
                            let member = try await fleet.join(room, name: "mover")
                            // The new owner holds the first join of a room it just gained while the old owner's
                            // state may still arrive (the shard's handoff wait, 5 s by default).
                            let hello = try await member.hello(timeout: .seconds(10))
                            await member.close()
                            return (room, hello)
                        }
                    }
                    var landed: [(String, ServerMessage.Hello)] = []
                    for try await result in group { landed.append(result) }
                    return landed
                }
                for (room, hello) in landed {
                    let owner = HashRing(next).owner(of: RoomID(room)!)?.id
                    #expect(owner != "s1" && hello.shard == owner && hello.epoch == 3, "\(room): \(hello)")
                }

                let ring = try await fleet.admin("/ring")
                #expect(ring.status == 200)
                #expect(try RingDocument.decode(ring.body).epoch == 3)
                let retries = metric("roomring_proxy_misdirected_retries_total", in: try await fleet.admin("/metrics").text)
                #expect(retries.map { $0 >= 1 && $0 <= 8 } == true, "misdirected retries: \(retries ?? -1)")
                let report = try await fleet.shardsReport()
                #expect(report.epoch == 3 && report.shard("s1")?.state == "draining")

                // Rooms that did not move are routed directly under the new ring, without another retry.
                let stay = TestFleet.room(ownedBy: "s2", in: next, prefix: "stay")
                #expect(try await fleet.expectWorkingRoundTrip(stay).shard == "s2")
                #expect(metric("roomring_proxy_misdirected_retries_total", in: try await fleet.admin("/metrics").text)
                    == retries)
            }
        }

        @Test(.timeLimit(.minutes(1)))
        func putRingNeedsTheTokenAndANewerEpoch() async throws {
            try await TestFleet.with { fleet in
                var next = fleet.ring
                next.epoch = 5
                next.shards[2].weight = 3
                let body = Array(next.encoded())

                let anonymous = try await fleet.admin("/ring", method: "PUT", body: body, token: nil)
                #expect(anonymous.status == 401)
                let wrong = try await fleet.admin("/ring", method: "PUT", body: body, token: "not-the-token")
                #expect(wrong.status == 401)
                #expect(try await fleet.admin("/ring", token: nil).status == 401)
                #expect(fleet.proxy.context.ring.epoch == 2)

                let accepted = try await fleet.admin("/ring", method: "PUT", body: body)
                #expect(accepted.status == 200)
                #expect(fleet.proxy.context.ring.epoch == 5)

                for stale in [UInt64(5), 4, 2] {
                    var old = fleet.ring
                    old.epoch = stale
                    let refused = try await fleet.admin("/ring", method: "PUT", body: Array(old.encoded()))
                    #expect(refused.status == 409, "epoch \(stale): \(refused.status)")
                }
                #expect(try await fleet.admin("/ring", method: "PUT", body: Array("{not json".utf8)).status == 400)
                let current = try RingDocument.decode(try await fleet.admin("/ring").body)
                #expect(current.epoch == 5 && current.shards[2].weight == 3)
            }
        }

        @Test(.timeLimit(.minutes(1)))
        func shardsReportHealthAndTunnelCounts() async throws {
            try await TestFleet.with { fleet in
                let before = try await fleet.shardsReport()
                #expect(before.epoch == 2 && before.balance == "ring")
                #expect(before.shards.map(\.id) == ["s1", "s2", "s3"])
                for shard in before.shards {
                    #expect(shard.healthy && shard.tunnels == 0 && shard.state == "active")
                    #expect(shard.address == fleet.ring.shard(id: shard.id)?.address)
                }

                let room = TestFleet.room(ownedBy: "s3", in: fleet.ring, prefix: "count")
                let member = try await fleet.join(room)
                #expect(try await member.hello().shard == "s3")
                let opened = try await fleet.shardsReport()
                #expect(opened.shards.map(\.tunnels) == [0, 0, 1])

                await member.close()
                #expect(await eventually(within: .seconds(2)) {
                    (try? await fleet.shardsReport().shards.map(\.tunnels)) == [0, 0, 0]
                })
            }
        }
    }
}

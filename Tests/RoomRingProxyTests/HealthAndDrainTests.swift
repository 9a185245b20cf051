import Foundation
import RoomRingClient
import RoomRingCore
import RoomRingProxy
import RoomRingShard
import Testing

extension ProxyTests {
    /// Health checks mark a stopped shard down; a stopping proxy refuses new work and ends within its drain timeout.
    @Suite struct HealthAndDrain {
        @Test(.timeLimit(.minutes(1)))
        func stoppedShardIsMarkedDownAndItsRoomsGet503() async throws {
            try await TestFleet.with { fleet in
                let downRoom = TestFleet.room(ownedBy: "s2", in: fleet.ring, prefix: "down")
                #expect(try await fleet.expectWorkingRoundTrip(downRoom).shard == "s2")
                #expect(await eventually(within: .seconds(2)) {
                    (try? await fleet.shardsReport().shards.allSatisfy(\.healthy)) == true
                })

                await fleet.shard("s2").shutdown()
                let start = ContinuousClock.now
                let markedDown = await eventually(within: .seconds(2)) {
                    (try? await fleet.shardsReport().shard("s2")?.healthy) == false
                }
                #expect(markedDown, "s2 still healthy \(ContinuousClock.now - start) after it stopped")
                let report = try await fleet.shardsReport()
                #expect(report.shard("s1")?.healthy == true && report.shard("s3")?.healthy == true)

                do {
                    let member = try await fleet.join(downRoom)
                    Issue.record("room of a stopped shard was served: \(try await member.hello())")
                    await member.close()
                } catch let refused as WebSocketConnection.Refused {
                    #expect(refused.status == 503 && refused.header("Retry-After") != nil, "\(refused)")
                }
                for owner in ["s1", "s3"] {
                    let room = TestFleet.room(ownedBy: owner, in: fleet.ring, prefix: "up")
                    #expect(try await fleet.expectWorkingRoundTrip(room).shard == owner)
                }
                // Roomless requests skip the unhealthy shard.
                for _ in 0..<4 { #expect(try await fleet.get("/healthz").status == 200) }
            }
        }

        @Test(.timeLimit(.minutes(1)))
        func shutdownRefusesNewConnectionsAndEndsWithinTheDrainTimeout() async throws {
            try await TestFleet.with(proxy: { $0.drainTimeout = 0.5 }) { fleet in
                let member = try await fleet.join("draining", name: "stays")
                _ = try await member.hello()
                #expect(try await fleet.shardsReport().shards.map(\.tunnels).reduce(0, +) == 1)

                let start = ContinuousClock.now
                let shutdown = Task { await fleet.proxy.shutdown() }
                try await Task.sleep(for: .milliseconds(150))
                do {
                    let late = try await fleet.join("draining", name: "late")
                    Issue.record("a new connection was accepted while draining: \(try await late.hello())")
                    await late.close()
                } catch let answered as WebSocketConnection.Refused {
                    Issue.record("a new connection was accepted while draining and answered: \(answered)")
                } catch {
                    // Connection refused: the listener closed before the drain wait.
                }
                // The open tunnel keeps working during the drain.
                member.send(text: ClientMessage.chat(message: "during drain", id: nil).encoded())
                #expect(try await member.chat(timeout: .seconds(1)).message == "during drain")

                await shutdown.value
                let elapsed = ContinuousClock.now - start
                #expect(elapsed >= .milliseconds(400) && elapsed < .seconds(2), "shutdown took \(elapsed)")
                #expect(await member.ended(within: .seconds(2)), "the tunnel outlived the proxy")
                await member.close()
            }
        }
    }
}

import Foundation
import RoomRingClient
import RoomRingCore
import RoomRingShard
import Testing

/// `--write-delay`: deliveries wait up to the delay and leave together, in order, with nothing lost.
@Suite struct WriteDelayTests {
    @Test(.timeLimit(.minutes(1)))
    func deliveriesWaitForTheDelayAndKeepTheirOrder() async throws {
        try await TestShard.with(eventLoops: 2, configure: { $0.writeDelay = 0.3 }) { shard in
            let alice = try await shard.join("batched", name: "alice")
            let bob = try await shard.join("batched", name: "bob")
            _ = try await alice.hello()
            _ = try await bob.hello()
            let sent = ContinuousClock.now
            for i in 1...20 { alice.sendChat("m\(i)", id: "c\(i)") }
            var seqs: [UInt64] = []
            var first: Duration?
            while seqs.count < 20 {
                let chat = try await bob.chat()
                if first == nil { first = ContinuousClock.now - sent }
                #expect(chat.message == "m\(seqs.count + 1)")
                seqs.append(chat.seq)
            }
            #expect(seqs == Array(1...20))
            // Nothing leaves before the delay (a little slack for the clock and the first hop).
            #expect(try #require(first) >= .milliseconds(250), "first delivery after \(first!)")
            // The sender's acks and its own copies arrive too, once each.
            var acks = 0, copies = 0
            while acks < 20 || copies < 20 {
                switch try await alice.nextMessage() {
                case .ack: acks += 1
                case .chat: copies += 1
                default: break
                }
            }
            #expect(try await bob.quiet(for: .milliseconds(500)) == nil)
        }
    }
}

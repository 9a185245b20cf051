import RoomRingCore
import Testing

/// The ring drawn as arcs (the dashboard's picture) agrees with the ring itself.
struct HashRingArcsTests {
    func document(_ states: [RingDocument.ShardState], vnodes: Int = 160) -> RingDocument {
        RingDocument(epoch: 1, vnodes: vnodes, shards: states.enumerated().map { i, state in
            .init(id: "s\(i + 1)", address: "127.0.0.1:\(9001 + i)", admin: "127.0.0.1:\(9101 + i)", state: state)
        })
    }

    @Test func arcsCoverTheCircleAndMatchShares() {
        let ring = HashRing(document([.active, .active, .draining, .active]))
        let arcs = ring.arcs()
        #expect(arcs.first?.start == 0 && arcs.last?.end == 1)
        for (a, b) in zip(arcs, arcs.dropFirst()) {
            #expect(a.end == b.start && a.start < a.end && a.shard != b.shard)
        }
        #expect(!arcs.contains { $0.shard == "s3" }, "a draining shard owns no arcs")
        var lengths: [String: Double] = [:]
        for arc in arcs { lengths[arc.shard, default: 0] += arc.end - arc.start }
        for (shard, share) in ring.shares() { #expect(abs((lengths[shard] ?? 0) - share) < 1e-9, "\(shard)") }
    }

    @Test func arcsAgreeWithOwnersAtSampledKeys() {
        let ring = HashRing(document([.active, .active, .active], vnodes: 8))
        let arcs = ring.arcs()
        for key in (0..<500).map({ "room-\($0)" }) {
            let position = Double(XXHash64.hash(key)) / Double(UInt64.max)
            // A point owns the arc ending at it: find the arc with start < position <= end.
            let arc = arcs.first { $0.start < position && position <= $0.end } ?? arcs[0]
            #expect(arc.shard == ring.owner(ofKey: key)?.id, "\(key)")
        }
    }

    @Test func oneShardIsTheWholeCircleAndNoneIsNothing() {
        #expect(HashRing(document([.active], vnodes: 1)).arcs() == [RingArc(shard: "s1", start: 0, end: 1)])
        #expect(HashRing(document([.draining])).arcs().isEmpty)
    }
}

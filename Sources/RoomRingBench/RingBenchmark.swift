import Foundation
import RoomRingCore

/// Measures ring lookups: the cost the proxy pays per new connection.
public enum RingBenchmark {
    /// Runs `lookups` owner lookups over rings of each size and returns a printable report.
    public static func run(shardCounts: [Int] = [3, 10, 50], vnodes: Int = RingDocument.defaultVNodes,
                           lookups: Int = 1_000_000) -> String {
        let rooms = (0..<10_000).map { RoomID("room-\($0)")! }
        var lines = ["ring lookup cost (\(lookups) lookups, \(vnodes) vnodes per shard)",
                     "  shards   points   ns/lookup   build ms"]
        for count in shardCounts {
            let document = RingDocument(epoch: 1, vnodes: vnodes, shards: (1...count).map {
                .init(id: "s\($0)", address: "127.0.0.1:\(9000 + $0)", admin: "127.0.0.1:\(9100 + $0)")
            })
            let buildStart = ContinuousClock.now
            let ring = HashRing(document)
            let build = ContinuousClock.now - buildStart
            var sink = 0
            let start = ContinuousClock.now
            for i in 0..<lookups { sink &+= ring.owner(of: rooms[i % rooms.count])?.id.utf8.count ?? 0 }
            let elapsed = ContinuousClock.now - start
            let ns = Double(elapsed.components.attoseconds) / 1e9 + Double(elapsed.components.seconds) * 1e9
            let buildMs = Double(build.components.attoseconds) / 1e15 + Double(build.components.seconds) * 1e3
            lines.append(String(format: "  %6d %8d %11.1f %10.2f", count, ring.pointCount, ns / Double(lookups), buildMs)
                + (sink == 42 ? " " : ""))
        }
        return lines.joined(separator: "\n")
    }
}

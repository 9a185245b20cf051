import Foundation
import RoomRingCore

extension CompareReport {
    /// The Markdown report: one section per workload, then the notes.
    public var markdown: String {
        var lines = ["# RoomRing: sticky vs pub/sub", ""]
        lines.append("Each step starts fresh fleets of \(options.shards) shards per design; \(options.warmup) s warm-up, "
            + "\(options.duration) s measured, medians of \(options.repeats) repetitions, designs interleaved, "
            + "\(options.messageBytes)-byte messages. Sticky: each room's members on its ring owner. Pub/sub: each "
            + "room's members spread over every shard, every chat through one Redis. Members connect to the shards "
            + "directly (the proxy is the same in both). "
            + (options.serverCPU.map { "Shards and Redis pinned to CPU \($0), " } ?? "Not pinned, ")
            + (options.generatorCPU.map { "the generator to CPU \($0)." } ?? "the generator not pinned."))
        lines += ["", "## Many small rooms", ""]
        lines.append("\(options.rooms) rooms × \(options.members) members, one sender per room, at rising offered rates.")
        lines += [""] + table(rows) + ["", "### Summary", ""]
        lines += summary(.manyRooms)
        if options.modes.count == 2 {
            for rate in options.rates {
                let pair = rows.filter { $0.rate == rate }
                guard pair.count == 2, let sticky = pair.first(where: { $0.mode == .sticky }),
                    let pubsub = pair.first(where: { $0.mode == .pubsub }),
                    let a = sticky.shardCPUPer100k, let b = pubsub.shardCPUPer100k, a > 0
                else { continue }
                let total = b + (pubsub.brokerCPUPer100k ?? 0)
                lines.append("- at \(rate)/s offered: pub/sub costs \(String(format: "%.2f", total / a))× sticky's CPU "
                    + "per delivered message (\(String(format: "%.2f", b / a))× in the shards alone)")
            }
        }
        lines += ["", "![delivered](delivered.svg)", "", "![p99 latency](p99.svg)", "", "![CPU per 100k](cpu.svg)"]
        if let rate = cdfRate, charts.contains(where: { $0.name == "latency-cdf.svg" }) {
            lines += ["", "Latency distribution at \(rate) chats/s offered (medians per percentile):", ""]
            lines.append("| design | " + FanoutSample.cdfPercentiles.map { $0 == 0 ? "min" : "p\(Self.trim($0))" }
                .joined(separator: " | ") + " |")
            lines.append("|---|" + String(repeating: "--:|", count: FanoutSample.cdfPercentiles.count))
            for row in rows where row.rate == rate {
                guard let cdf = row.cdf else { continue }
                lines.append("| \(row.mode.rawValue) | " + cdf.map { Self.ms($0) }.joined(separator: " | ") + " |")
            }
            lines += ["", "![latency CDF](latency-cdf.svg)"]
        }
        let large = rows(.largeRoom)
        if !large.isEmpty {
            lines += ["", "## One large room", ""]
            lines.append("One room of \(options.largeRoomMembers) members and one sender. Sticky: the whole room on its "
                + "owner shard. Pub/sub: the room spread over all \(options.shards) shards, each delivering to its share."
                + (options.serverCPU == nil ? "" : " All servers share one CPU here, so spreading the room cannot add "
                    + "capacity on this machine: the table shows what each delivery costs, not the headroom more "
                    + "machines would give."))
            lines += [""] + table(large) + [""]
            lines += summary(.largeRoom)
            lines += ["", "![large room](large-room.svg)"]
        }
        if !rebalance.isEmpty {
            lines += ["", "## Adding and draining a shard mid-run", ""]
            if let first = rebalance.first {
                lines.append("2 shards and a proxy; \(first.members) members (`RoomClient`, resuming with `since`) in "
                    + "\(first.rooms) rooms, \(Self.int(options.rebalanceRate)) chats/s. s3 joins the ring (`ring add`), "
                    + "then s1 is drained (`ring drain --wait`). Lost counts seq gaps and acknowledged chats a member "
                    + "never saw; duplicated counts a seq or text seen twice.")
            }
            lines += ["", "| design | rooms moved on add (members) | reconnects on add | members on s3 after add "
                + "| s1 empty after | every member off s1 after | reconnects on drain | reconnect p50 / p99 ms "
                + "| acked | lost | duplicated | resumed: false |",
                "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
            for run in rebalance {
                let moved = run.mode == .pubsub ? "– (no owners)" : "\(run.roomsMoved) (\(run.membersInMovedRooms))"
                let cells = [run.mode.rawValue, moved, String(run.addReconnects), String(run.onNewShard),
                             String(format: "%.2f s", run.drainEmptySeconds), String(format: "%.2f s", run.drainSettledSeconds),
                             String(run.drainReconnects),
                             "\(run.reconnectP50.map(Self.int) ?? "–") / \(run.reconnectP99.map(Self.int) ?? "–")",
                             String(run.acked), String(run.lost), String(run.duplicated),
                             String(run.resets) + (run.caughtUp ? "" : " (not all caught up)")]
                lines.append("| " + cells.joined(separator: " | ") + " |")
            }
        }
        if !notes.isEmpty {
            lines += ["", "## Notes", ""]
            for note in notes { lines.append("- \(note)") }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func table(_ rows: [Row]) -> [String] {
        var lines = ["| design | offered/s | expected/s | delivered/s | p50 ms | p99 ms | p99.9 ms | shard CPU s/100k "
            + "| Redis CPU s/100k | gen CPU % | problems |", "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
        for row in rows {
            let cells = [row.mode.rawValue, String(row.rate), Self.int(row.expected), row.delivered.map(Self.int) ?? "–",
                         Self.ms(row.p50), Self.ms(row.p99), Self.ms(row.p999), Self.cpu(row.shardCPUPer100k),
                         row.mode == .pubsub ? Self.cpu(row.brokerCPUPer100k) : "–",
                         row.generatorCPU.map(Self.int) ?? "–", String(row.problems)]
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        return lines
    }

    private func summary(_ scenario: CompareScenario) -> [String] {
        options.modes.map { mode in
            guard let sustained = sustainedRate(mode, in: scenario) else {
                return "- \(mode.rawValue): sustained none of the offered rates"
            }
            return "- \(mode.rawValue): sustained \(Self.int(sustained.rate)) deliveries/s"
                + (sustained.isLowerBound ? " or more (the sweep's top rate)" : "")
                + " (p99 < \(Self.int(options.p99LimitMs)) ms, ≥ \(Self.int(options.deliveredFraction * 100)) % delivered)"
        }
    }

    private static func trim(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

import Foundation
import RoomRingCore

/// The results of `roomring bench compare`: medians per design and offered rate, sustained rates, ratios, and a
/// Markdown report with SVG charts.
public struct CompareReport: Sendable {
    public var options: CompareOptions
    public var results: [CompareResult]
    public var notes: [String]

    /// Medians of one design at one offered rate.
    public struct Row: Sendable {
        public var mode: ScalingMode
        public var rate: Int
        public var expected: Double
        public var samples: [FanoutSample]

        func median(_ values: [Double]) -> Double? { values.isEmpty ? nil : fanoutMedian(values) }
        public var delivered: Double? { median(samples.map(\.deliveredPerSecond)) }
        public var p50: Double? { median(samples.map(\.p50)) }
        public var p99: Double? { median(samples.map(\.p99)) }
        public var p999: Double? { median(samples.map(\.p999)) }
        public var shardCPUPer100k: Double? { median(samples.compactMap(\.serverCPUPer100k)) }
        public var brokerCPUPer100k: Double? { median(samples.compactMap(\.brokerCPUPer100k)) }
        public var generatorCPU: Double? { median(samples.compactMap(\.generatorCPUPercent)) }
        public var problems: Int { samples.map(\.problems).max() ?? 0 }

        func sustained(_ options: CompareOptions) -> Bool {
            guard let delivered, let p99 else { return false }
            return p99 < options.p99LimitMs && delivered >= options.deliveredFraction * expected
        }
    }

    public var rows: [Row] {
        options.modes.flatMap { mode in
            options.rates.map { rate in
                Row(mode: mode, rate: rate, expected: Double(rate * options.members),
                    samples: results.filter { $0.mode == mode && $0.rate == rate }.compactMap(\.sample))
            }
        }
    }

    /// The highest median delivered rate `mode` sustained, and whether that was at the sweep's top rate.
    public func sustainedRate(_ mode: ScalingMode) -> (rate: Double, isLowerBound: Bool)? {
        let good = rows.filter { $0.mode == mode && $0.sustained(options) }
        guard let best = good.max(by: { ($0.delivered ?? 0) < ($1.delivered ?? 0) }), let rate = best.delivered else {
            return nil
        }
        return (rate, good.contains { $0.rate == options.rates.max() })
    }

    /// Chart files the Markdown refers to, by name.
    public var charts: [(name: String, svg: String)] {
        func series(_ value: (Row) -> Double?) -> [SVGChart.Series] {
            options.modes.map { mode in
                SVGChart.Series(name: mode.rawValue, points: rows.filter { $0.mode == mode }.compactMap { row in
                    value(row).map { (Double(row.rate), $0) }
                })
            }
        }
        var delivered = series(\.delivered)
        delivered.append(SVGChart.Series(name: "offered × members", points: options.rates.map {
            (Double($0), Double($0 * options.members))
        }))
        return [
            ("delivered.svg", SVGChart(title: "Delivered messages/s", xLabel: "offered chats/s",
                                       yLabel: "delivered/s", series: delivered).svg),
            ("p99.svg", SVGChart(title: "Delivery latency p99", xLabel: "offered chats/s", yLabel: "ms",
                                 series: series(\.p99)).svg),
            ("cpu.svg", SVGChart(title: "Server CPU seconds per 100k delivered (shards + Redis)",
                                 xLabel: "offered chats/s", yLabel: "CPU s / 100k",
                                 series: series { row in
                                     row.shardCPUPer100k.map { $0 + (row.brokerCPUPer100k ?? 0) }
                                 }).svg),
        ]
    }

    /// The Markdown report.
    public var markdown: String {
        var lines = ["# RoomRing: sticky vs pub/sub", ""]
        lines.append("Workload: \(options.rooms) rooms × \(options.members) members, one sender per room, "
            + "\(options.messageBytes)-byte messages, \(options.shards) shards per fleet; \(options.warmup) s warm-up, "
            + "\(options.duration) s measured, medians of \(options.repeats) repetitions, designs interleaved. "
            + "Sticky: each room's members on its ring owner. Pub/sub: each room's members spread over every shard, "
            + "every chat through one Redis. Members connect to the shards directly (the proxy is the same in both). "
            + (options.serverCPU.map { "Shards and Redis pinned to CPU \($0), " } ?? "Not pinned, ")
            + (options.generatorCPU.map { "the generator to CPU \($0)." } ?? "the generator not pinned."))
        lines.append("")
        lines.append("| design | offered/s | expected/s | delivered/s | p50 ms | p99 ms | p99.9 ms | shard CPU s/100k "
            + "| Redis CPU s/100k | gen CPU % | problems |")
        lines.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for row in rows {
            let cells = [row.mode.rawValue, String(row.rate), Self.int(row.expected), row.delivered.map(Self.int) ?? "–",
                         Self.ms(row.p50), Self.ms(row.p99), Self.ms(row.p999), Self.cpu(row.shardCPUPer100k),
                         row.mode == .pubsub ? Self.cpu(row.brokerCPUPer100k) : "–",
                         row.generatorCPU.map(Self.int) ?? "–", String(row.problems)]
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        lines.append("")
        lines.append("## Summary")
        lines.append("")
        for mode in options.modes {
            if let sustained = sustainedRate(mode) {
                lines.append("- \(mode.rawValue): sustained \(Self.int(sustained.rate)) deliveries/s"
                    + (sustained.isLowerBound ? " or more (the sweep's top rate)" : "")
                    + " (p99 < \(Self.int(options.p99LimitMs)) ms, ≥ \(Self.int(options.deliveredFraction * 100)) % delivered)")
            } else {
                lines.append("- \(mode.rawValue): sustained none of the offered rates")
            }
        }
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
        lines.append("")
        lines.append("![delivered](delivered.svg)")
        lines.append("")
        lines.append("![p99 latency](p99.svg)")
        lines.append("")
        lines.append("![CPU per 100k](cpu.svg)")
        if !notes.isEmpty {
            lines.append("")
            lines.append("## Notes")
            lines.append("")
            for note in notes { lines.append("- \(note)") }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes `report.md` and the charts into `directory`.
    public func write(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(markdown.utf8).write(to: directory.appendingPathComponent("report.md"))
        for chart in charts { try Data(chart.svg.utf8).write(to: directory.appendingPathComponent(chart.name)) }
    }

    static func int(_ value: Double) -> String { String(Int(value.rounded())) }
    static func ms(_ value: Double?) -> String { value.map { String(format: $0 < 10 ? "%.2f" : "%.1f", $0) } ?? "–" }
    static func cpu(_ value: Double?) -> String { value.map { String(format: "%.3f", $0) } ?? "–" }
}

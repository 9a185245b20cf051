import Foundation
import RoomRingCore

/// The results of `roomring bench compare`: medians per design and offered rate, sustained rates, ratios, and a
/// Markdown report with SVG charts.
public struct CompareReport: Sendable {
    public var options: CompareOptions
    public var results: [CompareResult]
    /// The add-and-drain runs, one per design.
    public var rebalance: [RebalanceOutcome] = []
    public var notes: [String]

    public init(options: CompareOptions, results: [CompareResult], rebalance: [RebalanceOutcome] = [],
                notes: [String]) {
        self.options = options
        self.results = results
        self.rebalance = rebalance
        self.notes = notes
    }

    /// Medians of one design at one offered rate.
    public struct Row: Sendable {
        public var scenario: CompareScenario = .manyRooms
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
        /// Milliseconds at each of ``FanoutSample/cdfPercentiles``, medians over the samples.
        public var cdf: [Double]? {
            let full = samples.map(\.cdf).filter { $0.count == FanoutSample.cdfPercentiles.count }
            guard !full.isEmpty else { return nil }
            return FanoutSample.cdfPercentiles.indices.map { i in fanoutMedian(full.map { $0[i] }) }
        }

        func sustained(_ options: CompareOptions) -> Bool {
            guard let delivered, let p99 else { return false }
            return p99 < options.p99LimitMs && delivered >= options.deliveredFraction * expected
        }
    }

    /// The many-small-rooms rows.
    public var rows: [Row] { rows(.manyRooms) }

    /// One row per design and offered rate of `scenario`; none when it did not run.
    public func rows(_ scenario: CompareScenario) -> [Row] {
        let (rates, members) = scenario == .manyRooms
            ? (options.rates, options.members) : (options.largeRoomRates, options.largeRoomMembers)
        guard results.contains(where: { $0.scenario == scenario }) else { return [] }
        return options.modes.flatMap { mode in
            rates.map { rate in
                Row(scenario: scenario, mode: mode, rate: rate, expected: Double(rate * members),
                    samples: results.filter { $0.scenario == scenario && $0.mode == mode && $0.rate == rate }
                        .compactMap(\.sample))
            }
        }
    }

    /// The highest median delivered rate `mode` sustained in `scenario`, and whether that was at the sweep's top.
    public func sustainedRate(_ mode: ScalingMode, in scenario: CompareScenario = .manyRooms)
        -> (rate: Double, isLowerBound: Bool)?
    {
        let all = rows(scenario)
        let good = all.filter { $0.mode == mode && $0.sustained(options) }
        guard let best = good.max(by: { ($0.delivered ?? 0) < ($1.delivered ?? 0) }), let rate = best.delivered else {
            return nil
        }
        return (rate, good.contains { $0.rate == all.map(\.rate).max() })
    }

    /// The offered rate the latency CDF is drawn at: the highest every design sustained, else the lowest.
    public var cdfRate: Int? {
        let both = options.rates.filter { rate in
            let pair = rows.filter { $0.rate == rate }
            return !pair.isEmpty && pair.allSatisfy { $0.sustained(options) }
        }
        return both.max() ?? options.rates.min()
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
        var charts = [
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
        if let rate = cdfRate {
            // x in "nines" (1 = p90, 2 = p99, 3 = p99.9), so the tail gets as much room as the body.
            let nines = FanoutSample.cdfPercentiles.map { $0 >= 100 ? 4 : -log10(1 - $0 / 100) }
            let cdf = options.modes.compactMap { mode in
                rows.first { $0.mode == mode && $0.rate == rate }?.cdf.map { values in
                    SVGChart.Series(name: mode.rawValue, points: Array(zip(nines, values)))
                }
            }
            if !cdf.isEmpty { charts.append(("latency-cdf.svg", SVGChart(
                title: "Delivery latency by percentile at \(rate) chats/s", xLabel: "percentile (1 = p90, 2 = p99, 3 = p99.9, 4 = p99.99)",
                yLabel: "ms", series: cdf).svg)) }
        }
        let large = rows(.largeRoom)
        if !large.isEmpty {
            var series = options.modes.map { mode in
                SVGChart.Series(name: mode.rawValue, points: large.filter { $0.mode == mode }.compactMap { row in
                    row.delivered.map { (Double(row.rate), $0) }
                })
            }
            series.append(SVGChart.Series(name: "offered × members", points: options.largeRoomRates.map {
                (Double($0), Double($0 * options.largeRoomMembers))
            }))
            charts.append(("large-room.svg", SVGChart(
                title: "One room of \(options.largeRoomMembers) members: delivered messages/s",
                xLabel: "offered chats/s", yLabel: "delivered/s", series: series).svg))
        }
        return charts
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

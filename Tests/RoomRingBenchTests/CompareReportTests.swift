import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import RoomRingBench
import RoomRingCore

/// The pure parts of `roomring bench compare`: chart ticks and SVG, and the Markdown report.
struct CompareReportTests {
    @Test func ticksAreRoundAndCoverTheMaximum() {
        #expect(SVGChart.ticks(upTo: 5371) == [0, 2000, 4000, 6000])
        #expect(SVGChart.ticks(upTo: 0.42) == [0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5])
        #expect(SVGChart.ticks(upTo: 100).last == 100)
        #expect(SVGChart.ticks(upTo: 0) == [0, 1])
        #expect(SVGChart.label(12_000) == "12k" && SVGChart.label(2_500_000) == "2.5M" && SVGChart.label(40) == "40")
    }

    @Test func chartIsWellFormedSVGWithOneLinePerSeries() throws {
        let chart = SVGChart(title: "p99 <ms> & more", xLabel: "offered", yLabel: "ms", series: [
            .init(name: "sticky", points: [(1000, 2), (2000, 3.5), (4000, 40)]),
            .init(name: "pubsub", points: [(4000, 80), (1000, 4)]),
            .init(name: "lonely", points: [(2000, 1)]),
        ])
        let svg = chart.svg
        let parser = XMLParser(data: Data(svg.utf8))
        #expect(parser.parse(), "not well-formed: \(String(describing: parser.parserError))")
        #expect(svg.components(separatedBy: "<polyline").count - 1 == 2, "a single point gets a marker, no line")
        #expect(svg.components(separatedBy: "<circle").count - 1 == 6)
        #expect(svg.contains("p99 &lt;ms&gt; &amp; more"))
        #expect(chart.svg == svg, "deterministic")
    }

    static func sample(delivered: Double, p99: Double, cpu: Double, broker: Double?) -> FanoutSample {
        var sample = FanoutSample(sentPerSecond: delivered / 10, deliveredPerSecond: delivered, p50: p99 / 4, p99: p99,
                                  p999: p99 * 2, max: p99 * 3, serverCPUSeconds: cpu * delivered * 2 / 100_000,
                                  generatorCPUPercent: 30, problems: 0, firstProblem: nil)
        sample.windowSeconds = 2
        sample.cdf = FanoutSample.cdfPercentiles.map { p99 * ($0 + 1) / 100 }
        sample.brokerCPUSeconds = broker.map { $0 * delivered * 2 / 100_000 }
        return sample
    }

    @Test func reportHasATableRowPerDesignAndRateSustainedRatesRatiosAndCharts() throws {
        var options = CompareOptions()
        options.rooms = 10
        options.members = 10
        options.rates = [100, 200]
        options.repeats = 2
        let results = [
            CompareResult(mode: .sticky, rate: 100, repetition: 1, sample: Self.sample(delivered: 1000, p99: 2, cpu: 1, broker: nil)),
            CompareResult(mode: .sticky, rate: 100, repetition: 2, sample: Self.sample(delivered: 1000, p99: 4, cpu: 1, broker: nil)),
            CompareResult(mode: .pubsub, rate: 100, repetition: 1, sample: Self.sample(delivered: 1000, p99: 5, cpu: 2, broker: 0.5)),
            CompareResult(mode: .pubsub, rate: 100, repetition: 2, sample: nil),
            CompareResult(mode: .sticky, rate: 200, repetition: 1, sample: Self.sample(delivered: 2000, p99: 3, cpu: 1, broker: nil)),
            CompareResult(mode: .pubsub, rate: 200, repetition: 1, sample: Self.sample(delivered: 1200, p99: 900, cpu: 3, broker: 1)),
        ]
        let report = CompareReport(options: options, results: results, notes: ["a note"])
        let markdown = report.markdown
        #expect(markdown.contains("| sticky | 100 | 1000 | 1000 | 0.75 | 3.00 |"), "\(markdown)")
        #expect(markdown.contains("| pubsub | 200 | 2000 | 1200 |"))
        #expect(markdown.contains("- sticky: sustained 2000 deliveries/s or more"))
        #expect(markdown.contains("- pubsub: sustained 1000 deliveries/s (p99"))
        #expect(markdown.contains("at 100/s offered: pub/sub costs 2.50× sticky's CPU per delivered message (2.00× in the shards alone)"))
        #expect(markdown.contains("![delivered](delivered.svg)") && markdown.contains("- a note"))
        #expect(report.charts.map(\.name) == ["delivered.svg", "p99.svg", "cpu.svg", "latency-cdf.svg"])
        // The CDF is drawn at the highest rate both designs sustained (pub/sub missed 200/s).
        #expect(report.cdfRate == 100)
        #expect(markdown.contains("Latency distribution at 100 chats/s offered"))
        #expect(markdown.contains("| sticky | 0.03 | 0.33 | 0.78 | 1.53 |"), "\(markdown)")
        #expect(!markdown.contains("## One large room") && !markdown.contains("## Adding and draining"))

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("compare-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try report.write(to: directory)
        for name in ["report.md", "delivered.svg", "p99.svg", "cpu.svg", "latency-cdf.svg"] {
            #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path))
        }
    }

    @Test func largeRoomAndRebalanceSectionsAppearWhenTheyRan() {
        var options = CompareOptions()
        options.rates = [100]
        options.largeRoomMembers = 500
        options.largeRoomRates = [10, 20]
        options.repeats = 1
        let results = [
            CompareResult(scenario: .manyRooms, mode: .sticky, rate: 100, repetition: 1,
                          sample: Self.sample(delivered: 2000, p99: 2, cpu: 1, broker: nil)),
            CompareResult(scenario: .largeRoom, mode: .sticky, rate: 10, repetition: 1,
                          sample: Self.sample(delivered: 5000, p99: 3, cpu: 1, broker: nil)),
            CompareResult(scenario: .largeRoom, mode: .pubsub, rate: 20, repetition: 1,
                          sample: Self.sample(delivered: 9000, p99: 90, cpu: 2, broker: 1)),
        ]
        let moved = RebalanceOutcome(mode: .sticky, members: 100, rooms: 10, roomsMoved: 3, membersInMovedRooms: 30,
                                     addReconnects: 30, onNewShard: 30, drainEmptySeconds: 0.25, drainSettledSeconds: 0.5,
                                     drainReconnects: 40, reconnectP50: 12, reconnectP99: 80, acked: 500,
                                     deliveries: 5000, lost: 0, duplicated: 0, resets: 0, unacknowledged: 0,
                                     caughtUp: true)
        var spread = moved
        spread.mode = .pubsub
        spread.caughtUp = false
        let report = CompareReport(options: options, results: results, rebalance: [moved, spread], notes: [])
        let markdown = report.markdown
        #expect(report.rows(.largeRoom).count == 4 && report.rows.count == 2)
        #expect(markdown.contains("## One large room") && markdown.contains("One room of 500 members"))
        #expect(markdown.contains("| sticky | 10 | 5000 | 5000 |") && markdown.contains("| pubsub | 20 | 10000 | 9000 |"))
        #expect(markdown.contains("- sticky: sustained 5000 deliveries/s (p99"), "\(markdown)")
        #expect(markdown.contains("- pubsub: sustained none of the offered rates"))
        #expect(markdown.contains("| sticky | 3 (30) | 30 | 30 | 0.25 s | 0.50 s | 40 | 12 / 80 | 500 | 0 | 0 | 0 |"),
                "\(markdown)")
        #expect(markdown.contains("| pubsub | – (no owners) |") && markdown.contains("0 (not all caught up) |"))
        #expect(report.charts.map(\.name).contains("large-room.svg"))
    }
}

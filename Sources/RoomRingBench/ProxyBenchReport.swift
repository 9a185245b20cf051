import Foundation

/// One figure measured per target and repetition.
enum ProxyBenchMetric: CaseIterable, Hashable, Sendable {
    case rtt1p50, rtt1p99, rtt1p999, rttNp50, rttNp99, rttNp999, throughput, generatorCPU
    case pacedDelivered, pacedP50, pacedP99, proxyCPU, shardCPU
    case handshakes, handshakeFailures, proxyHandshakeCPU, shardHandshakeCPU, proxyMemory, shardMemory

    func label(_ options: ProxyBenchOptions) -> String {
        let n = options.connections
        return switch self {
        case .rtt1p50: "RTT p50 µs, 1 connection"
        case .rtt1p99: "RTT p99 µs, 1 connection"
        case .rtt1p999: "RTT p99.9 µs, 1 connection"
        case .rttNp50: "RTT p50 µs, \(n) connections"
        case .rttNp99: "RTT p99 µs, \(n) connections"
        case .rttNp999: "RTT p99.9 µs, \(n) connections"
        case .throughput: "msgs/s, \(n) connections closed loop"
        case .generatorCPU: "generator CPU %, same run"
        case .pacedDelivered: "delivered msgs/s of \(options.rate) offered"
        case .pacedP50: "RTT p50 µs at \(options.rate) msg/s"
        case .pacedP99: "RTT p99 µs at \(options.rate) msg/s"
        case .proxyCPU: "proxy CPU s/100k msgs at \(options.rate)/s"
        case .shardCPU: "shard CPU s/100k msgs at \(options.rate)/s"
        case .handshakes: "handshakes/s (\(options.handshakesInFlight) in flight)"
        case .handshakeFailures: "handshakes refused or failed"
        case .proxyHandshakeCPU: "proxy CPU µs per handshake"
        case .shardHandshakeCPU: "shard CPU µs per handshake"
        case .proxyMemory: "proxy KiB per idle tunnel"
        case .shardMemory: "shard KiB per idle connection"
        }
    }

    var decimals: Int {
        switch self {
        case .throughput, .handshakes, .handshakeFailures, .generatorCPU, .pacedDelivered, .proxyHandshakeCPU,
             .shardHandshakeCPU: 0
        case .proxyCPU, .shardCPU: 3
        case .proxyMemory, .shardMemory: 2
        default: 1
        }
    }
}

/// Medians, spreads, added latency, ratios and verdicts over all repetitions.
struct ProxyBenchReport {
    var options: ProxyBenchOptions
    var idle: Int
    var targets: [ProxyBenchTarget]
    var runs: [[ProxyBenchTarget: [ProxyBenchMetric: Double]]]

    private static let labelWidth = 40
    private static let cellWidth = 26

    func values(_ target: ProxyBenchTarget, _ metric: ProxyBenchMetric) -> [Double] {
        runs.compactMap { $0[target]?[metric] }.filter(\.isFinite)
    }

    /// Per-repetition `proxy − direct` (paired within a repetition, where drift is smallest).
    func added(_ target: ProxyBenchTarget, _ metric: ProxyBenchMetric) -> [Double] {
        runs.compactMap { run in
            guard let proxy = run[target]?[metric], let direct = run[.direct]?[metric] else { return nil }
            return proxy - direct
        }.filter(\.isFinite)
    }

    /// Per-repetition `proxy / direct`.
    func relative(_ target: ProxyBenchTarget, _ metric: ProxyBenchMetric) -> [Double] {
        runs.compactMap { run in
            guard let proxy = run[target]?[metric], let direct = run[.direct]?[metric], direct != 0 else { return nil }
            return proxy / direct
        }.filter(\.isFinite)
    }

    static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// "median (min–max)", or just the value for one repetition.
    static func cell(_ values: [Double], decimals: Int) -> String {
        guard !values.isEmpty else { return "–" }
        let median = ProxyBench.format(Self.median(values), decimals: decimals)
        guard values.count > 1 else { return median }
        return "\(median) (\(ProxyBench.format(values.min()!, decimals: decimals))–"
            + "\(ProxyBench.format(values.max()!, decimals: decimals)))"
    }

    private func row(_ label: String, _ cells: [String]) -> String {
        label.padding(toLength: Self.labelWidth, withPad: " ", startingAt: 0)
            + cells.map { $0.padding(toLength: max(Self.cellWidth, $0.count + 1), withPad: " ", startingAt: 0) }.joined()
    }

    func lines() -> [String] {
        var lines: [String] = []
        let reps = runs.count
        lines.append("Results: median (min–max) of \(reps) repetition\(reps == 1 ? "" : "s"); servers pinned to one core, "
            + "generator on another")
        lines.append(row("figure", targets.map(\.rawValue)))
        for metric in ProxyBenchMetric.allCases {
            let cells = targets.map { Self.cell(values($0, metric), decimals: metric.decimals) }
            guard cells.contains(where: { $0 != "–" }) else { continue }
            lines.append(row(metric.label(options), cells))
        }
        if idle > 0 { lines.append("  (memory: \(idle) idle connections, each in its own room, fresh processes)") }

        let proxies = targets.filter { $0 != .direct }
        let latencies: [ProxyBenchMetric] = [.rtt1p50, .rtt1p99, .rtt1p999, .rttNp50, .rttNp99, .rttNp999,
                                             .pacedP50, .pacedP99]
        if targets.contains(.direct), !proxies.isEmpty {
            lines.append("")
            lines.append("Added by the proxy: proxy − direct (µs) and proxy ÷ direct, paired per repetition")
            lines.append(row("figure", proxies.map(\.rawValue)))
            for metric in latencies where !values(.direct, metric).isEmpty {
                lines.append(row("added " + metric.label(options),
                                 proxies.map { Self.cell(added($0, metric), decimals: 1) }))
            }
            for metric in [ProxyBenchMetric.throughput, .handshakes] where !values(.direct, metric).isEmpty {
                lines.append(row("× direct, " + metric.label(options),
                                 proxies.map { Self.cell(relative($0, metric), decimals: 2) }))
            }
        }
        if targets.contains(.roomring), targets.contains(.haproxy) {
            lines.append("")
            lines.append(contentsOf: comparison())
        }
        return lines
    }

    /// RoomRing against HAProxy: each target of the issue with its verdict, then informational ratios.
    private func comparison() -> [String] {
        var lines = ["RoomRing vs HAProxy (ratio = RoomRing ÷ HAProxy of the medians)"]
        lines.append("figure".padding(toLength: Self.labelWidth, withPad: " ", startingAt: 0)
            + "roomring    haproxy     ratio   target                 verdict")
        let paired = targets.contains(.direct)
        var negativeAdded = false
        func line(_ label: String, _ rr: Double, _ ha: Double, decimals: Int, lowerIsBetter: Bool?,
                  added: Bool = false) -> String {
            // An added latency below zero means direct was slower than through a proxy: noise, not the proxy.
            let meaningless = added && (rr <= 0 || ha <= 0)
            let ratio = ha != 0 && !meaningless ? rr / ha : .nan
            var text = label.padding(toLength: Self.labelWidth, withPad: " ", startingAt: 0)
                + ProxyBench.format(rr, decimals: decimals).padding(toLength: 12, withPad: " ", startingAt: 0)
                + ProxyBench.format(ha, decimals: decimals).padding(toLength: 12, withPad: " ", startingAt: 0)
                + ProxyBench.format(ratio, decimals: 2).padding(toLength: 8, withPad: " ", startingAt: 0)
            if let lowerIsBetter {
                let pass = lowerIsBetter ? rr <= ha : rr >= ha
                text += (lowerIsBetter ? "RoomRing ≤ HAProxy" : "RoomRing ≥ HAProxy").padding(toLength: 23, withPad: " ",
                                                                                             startingAt: 0)
                if meaningless { negativeAdded = true }
                text += rr.isFinite && ha.isFinite && !meaningless ? (pass ? "PASS" : "MISS") : "n/a"
            }
            return text
        }
        let targetLatencies: [ProxyBenchMetric] = [.rtt1p50, .rtt1p99, .rttNp50, .rttNp99]
        for metric in targetLatencies {
            if paired {
                lines.append(line("added " + metric.label(options), Self.median(added(.roomring, metric)),
                                  Self.median(added(.haproxy, metric)), decimals: 1, lowerIsBetter: true, added: true))
            } else {
                lines.append(line(metric.label(options), Self.median(values(.roomring, metric)),
                                  Self.median(values(.haproxy, metric)), decimals: 1, lowerIsBetter: true))
            }
        }
        lines.append(line(ProxyBenchMetric.handshakes.label(options), Self.median(values(.roomring, .handshakes)),
                          Self.median(values(.haproxy, .handshakes)), decimals: 0, lowerIsBetter: false))
        if idle > 0 {
            lines.append(line(ProxyBenchMetric.proxyMemory.label(options), Self.median(values(.roomring, .proxyMemory)),
                              Self.median(values(.haproxy, .proxyMemory)), decimals: 2, lowerIsBetter: true))
        }
        lines.append("informational:")
        var informational: [ProxyBenchMetric] = [.rtt1p999, .rttNp999, .throughput]
        if options.rate > 0 { informational += [.pacedP50, .pacedP99, .proxyCPU] }
        informational.append(.proxyHandshakeCPU)
        for metric in informational {
            let isLatency = [.rtt1p999, .rttNp999, .pacedP50, .pacedP99].contains(metric)
            if isLatency, paired {
                lines.append(line("added " + metric.label(options), Self.median(added(.roomring, metric)),
                                  Self.median(added(.haproxy, metric)), decimals: 1, lowerIsBetter: nil, added: true))
            } else {
                lines.append(line(metric.label(options), Self.median(values(.roomring, metric)),
                                  Self.median(values(.haproxy, metric)), decimals: metric.decimals, lowerIsBetter: nil))
            }
        }
        if negativeAdded {
            lines.append("n/a: direct was slower than proxied (added < 0), so the tail measures the machine, not the "
                + "proxy; try --keep-awake and --nice -10")
        }
        let verdicts = lines.filter { $0.hasSuffix("PASS") || $0.hasSuffix("MISS") }
        let misses = verdicts.filter { $0.hasSuffix("MISS") }.count
        let undecided = lines.filter { $0.hasSuffix("n/a") }.count
        lines.append("summary: \(verdicts.count - misses) of \(verdicts.count) targets met"
            + (misses > 0 ? " (\(misses) MISS)" : "") + (undecided > 0 ? "; \(undecided) n/a" : ""))
        return lines
    }
}

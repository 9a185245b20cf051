import Foundation

/// One measured step: a target at an offered rate in one repetition (`sample` nil when the step failed).
public struct FanoutResult: Sendable {
    public var target: FanoutTarget
    public var rate: Int
    public var repetition: Int
    public var sample: FanoutSample?
}

/// The results of a fanout run, with medians over repetitions, sustained rates and ratios.
public struct FanoutReport: Sendable {
    /// The options the run used (targets without the ones that could not run).
    public var options: FanoutOptions
    /// Every step in run order.
    public var results: [FanoutResult]
    /// Skipped baselines, failed steps, pinning problems.
    public var notes: [String]

    /// Medians (and spreads) of one target at one offered rate.
    public struct Row: Sendable {
        public var target: FanoutTarget
        public var rate: Int
        /// Deliveries per second that all members together would get if every message arrived.
        public var expected: Double
        /// The samples the medians use: those measured while the machine was quiet (other processes took at most
        /// `maxOtherLoad` of either core), or all of them when none was.
        public var samples: [FanoutSample]
        /// How many repetitions were measured, quiet or not.
        public var measured: Int
        public var delivered: Double { fanoutMedian(samples.map(\.deliveredPerSecond)) }
        public var p99: Double { fanoutMedian(samples.map(\.p99)) }
        public var cpuPer100k: Double? {
            let values = samples.compactMap(\.serverCPUPer100k)
            return values.isEmpty ? nil : fanoutMedian(values)
        }
        public var generatorCPU: Double? {
            let values = samples.compactMap(\.generatorCPUPercent)
            return values.isEmpty ? nil : fanoutMedian(values)
        }
        /// Share of the server's CPU spent in the kernel, in percent.
        public var serverSystem: Double? {
            let values = samples.compactMap(\.serverSystemPercent)
            return values.isEmpty ? nil : fanoutMedian(values)
        }
        /// CPU other processes took on the benchmark's two cores (the busier of the two), in % of one core.
        public var foreignLoad: Double? {
            let values = samples.compactMap(\.foreignLoadPercent)
            return values.isEmpty ? nil : fanoutMedian(values)
        }

        /// Whether the target kept up: p99 under the limit and (almost) everything delivered.
        func sustained(_ options: FanoutOptions) -> Bool {
            !samples.isEmpty && p99 < options.p99LimitMs && delivered >= options.deliveredFraction * expected
        }
    }

    /// Rows per target (in option order), then per offered rate.
    public var rows: [Row] {
        options.targets.flatMap { target in
            options.rates.map { rate in
                let all = results.filter { $0.target == target && $0.rate == rate }.compactMap(\.sample)
                let quiet = all.filter { ($0.foreignLoadPercent ?? 0) <= options.maxOtherLoad }
                return Row(target: target, rate: rate, expected: Double(rate * options.members),
                           samples: quiet.isEmpty ? all : quiet, measured: all.count)
            }
        }
    }

    /// The highest median delivered rate at which `target` sustained the load, and whether the sweep's top rate was
    /// among those (then the true figure is higher: the sweep, or the generator, stopped first).
    public func sustainedRate(_ target: FanoutTarget) -> (rate: Double, isLowerBound: Bool)? {
        let rows = rows.filter { $0.target == target }
        let good = rows.filter { $0.sustained(options) }
        guard let best = good.max(by: { $0.delivered < $1.delivered }) else { return nil }
        return (best.delivered, good.contains { $0.rate == options.rates.max() })
    }

    /// The printable report: table, sustained rates, ratios, notes.
    public var text: String {
        var lines: [String] = []
        let o = options
        lines.append("")
        lines.append("fanout: \(o.rooms) rooms × \(o.members) members, one sender per room, "
            + "\(o.messageBytes)-byte messages, "
            + "\(fmt(o.duration)) s windows after \(fmt(o.warmup)) s warm-up; medians of \(o.repeats) [min–max]")
        lines.append("servers on CPU \(o.serverCPU.map(String.init) ?? "any"), generator on CPU "
            + "\(o.generatorCPU.map(String.init) ?? "any"); sustained = p99 < \(fmt(o.p99LimitMs)) ms and delivered ≥ "
            + "\(Int(o.deliveredFraction * 100)) % of offered × members")
        lines.append("")
        lines.append(pad("target", 9) + lpad("offered/s", 10) + lpad("expected/s", 11) + lpad("delivered/s [min–max]", 29)
            + lpad("p50 ms", 9) + lpad("p99 ms [min–max]", 24) + lpad("p99.9 ms", 10)
            + lpad("srv CPU s/100k [min–max]", 28) + lpad("kernel", 8) + lpad("gen CPU", 9) + lpad("other", 7)
            + lpad("n", 5) + "  sustained")
        for row in rows {
            guard !row.samples.isEmpty else {
                lines.append(pad(row.target.rawValue, 9) + lpad("\(row.rate)", 10) + "  (every repetition failed)")
                continue
            }
            let s = row.samples
            let delivered = s.map(\.deliveredPerSecond), p99 = s.map(\.p99), cpu = s.compactMap(\.serverCPUPer100k)
            let generator = row.generatorCPU.map { "\(Int($0.rounded())) %" } ?? "?"
            let problems = s.reduce(0) { $0 + $1.problems }
            lines.append(pad(row.target.rawValue, 9) + lpad("\(row.rate)", 10) + lpad(int(row.expected), 11)
                + lpad(int(row.delivered) + " [" + int(delivered.min()!) + "–" + int(delivered.max()!) + "]", 29)
                + lpad(ms(fanoutMedian(s.map(\.p50))), 9)
                + lpad(ms(row.p99) + " [" + ms(p99.min()!) + "–" + ms(p99.max()!) + "]", 24)
                + lpad(ms(fanoutMedian(s.map(\.p999))), 10)
                + lpad(cpu.isEmpty
                    ? "?" : String(format: "%.3f [%.3f–%.3f]", fanoutMedian(cpu), cpu.min()!, cpu.max()!), 28)
                + lpad(row.serverSystem.map { "\(Int($0.rounded())) %" } ?? "?", 8)
                + lpad(generator, 9) + lpad(row.foreignLoad.map { "\(Int($0.rounded())) %" } ?? "?", 7)
                + lpad("\(row.samples.count)/\(row.measured)", 5)
                + "  " + (row.sustained(o) ? "yes" : "no")
                + ((row.generatorCPU ?? 0) >= 90 ? " (generator-bound)" : "")
                + (problems > 0 ? " (\(problems) closes/errors)" : ""))
        }
        lines.append("")
        lines.append("kernel = share of the server's CPU spent in system calls (the loopback TCP path); other = CPU that "
            + "other processes took on the busier of the two benchmark cores (from /proc/stat); n = repetitions in the "
            + "medians / measured: repetitions with other > \(fmt(options.maxOtherLoad)) % are left out when a quieter "
            + "one exists.")
        lines += summary()
        if !notes.isEmpty {
            lines.append("")
            lines += notes.map { "note: " + $0 }
        }
        return lines.joined(separator: "\n")
    }

    private func summary() -> [String] {
        var lines: [String] = []
        for target in options.targets {
            if let best = sustainedRate(target) {
                let prefix = best.isLowerBound ? "≥ " : ""
                let bound = best.isLowerBound
                    ? " (the top offered rate was sustained: the sweep or the generator ended first)" : ""
                let gaps = rows.filter { $0.target == target && $0.delivered < best.rate && !$0.sustained(options) }
                let gap = gaps.isEmpty ? "" : "; but not sustained at the lower offered rate(s) "
                    + gaps.map { "\($0.rate)/s (p99 \(ms($0.p99)) ms)" }.joined(separator: ", ")
                lines.append("sustained delivered rate, \(target.rawValue): \(prefix)\(int(best.rate))/s" + bound + gap)
            } else {
                lines.append("sustained delivered rate, \(target.rawValue): none of the offered rates")
            }
        }
        guard options.targets.contains(.roomring), options.targets.contains(.node) else { return lines }
        if let ring = sustainedRate(.roomring), let node = sustainedRate(.node), node.rate > 0 {
            lines.append("ratio roomring/node, sustained delivered rate: \(ring.isLowerBound ? "≥ " : "")"
                + String(format: "%.2f×", ring.rate / node.rate)
                + (node.isLowerBound ? " (node's rate is a lower bound too: raise --rates)" : ""))
        }
        lines.append("server CPU seconds per 100k delivered, roomring/node (lower = RoomRing cheaper per message):")
        let all = rows
        for rate in options.rates {
            guard let ring = all.first(where: { $0.target == .roomring && $0.rate == rate }),
                  let node = all.first(where: { $0.target == .node && $0.rate == rate }),
                  let ringCPU = ring.cpuPer100k, let nodeCPU = node.cpuPer100k, ringCPU > 0
            else { continue }
            let saturated = [ring, node].filter { !$0.sustained(options) }.map(\.target.rawValue)
            let state = saturated.isEmpty ? "both sustained" : saturated.joined(separator: " and ") + " not sustained"
            lines.append(String(format: "  @ %6d/s offered: %.3f vs %.3f → %.2f (node spends %.1f× RoomRing's CPU per ",
                                rate, ringCPU, nodeCPU, ringCPU / nodeCPU, nodeCPU / ringCPU) + "message; " + state + ")")
        }
        return lines
    }

    /// One progress line for a finished step.
    static func stepLine(_ s: FanoutSample, expected: Double) -> String {
        var line = "sent \(int(s.sentPerSecond))/s, delivered \(int(s.deliveredPerSecond))/s of \(int(expected))/s, "
            + "p50 \(ms(s.p50)) p99 \(ms(s.p99)) p99.9 \(ms(s.p999)) max \(ms(s.max)) ms"
        if let cpu = s.serverCPUPer100k { line += String(format: ", server %.3f CPU s/100k", cpu) }
        if let system = s.serverSystemPercent { line += " (\(Int(system.rounded())) % in the kernel)" }
        if let generator = s.generatorCPUPercent { line += ", generator \(Int(generator.rounded())) % CPU" }
        if let a = s.foreignServerCorePercent, let b = s.foreignGeneratorCorePercent {
            line += ", other load \(Int(a.rounded())) % / \(Int(b.rounded())) % on server / generator core"
        }
        if s.problems > 0 { line += ", \(s.problems) closes/errors (first: \(s.firstProblem ?? "?"))" }
        return line
    }
}

/// The median (mean of the middle two for an even count); 0 for none.
func fanoutMedian(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

private func int(_ value: Double) -> String { String(Int(value.rounded())) }
private func fmt(_ value: Double) -> String { value == value.rounded() ? String(Int(value)) : String(value) }
private func ms(_ value: Double) -> String {
    value < 10 ? String(format: "%.2f", value) : value < 1000 ? String(format: "%.1f", value) : String(Int(value.rounded()))
}
private func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}
private func lpad(_ text: String, _ width: Int) -> String {
    text.count >= width ? " " + text : String(repeating: " ", count: width - text.count) + text
}

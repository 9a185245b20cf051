import NIOCore

/// Connection setup rate, every target in one repetition measured in short alternating rounds with all their
/// fleets up at once.
///
/// Why rounds: on a shared 2-core VM the machine's speed drifts by ±20 % over tens of seconds. Measured one target
/// after the other, each a minute apart, that drift lands in the ratio; in rounds of a fifth of the handshakes,
/// the targets alternating (order rotated per round), every target sees the same drift. The TIME_WAIT sockets
/// each handshake leaves are spread over the targets the same way.
///
/// Why 30,000 per target by default: a round of 1,000 (a quarter second) measured mostly ramp-up and whatever the
/// previous workload left; a rate worth quoting is sustained, with the kernel's TIME_WAIT table as full as steady
/// churn keeps it.
struct ProxyBenchHandshakeRounds {
    var targets: [ProxyBenchTarget]
    var options: ProxyBenchOptions
    var setup: ProxyBenchSetup
    var loop: any EventLoop
    var prefix: String
    var say: @Sendable (String) -> Void

    static let rounds = 5

    private struct Tally {
        var completed = 0
        var seconds = 0.0
        var failures = 0
        var firstFailure: String?
        var proxyCPU: Double?
        var shardCPU: Double?
    }

    func run() async throws -> [ProxyBenchTarget: [ProxyBenchMetric: Double]] {
        var fleets: [(ProxyBenchTarget, ProxyBenchFleet)] = []
        do {
            for target in targets {
                fleets.append((target, try await ProxyBenchFleet.start(target, setup: setup,
                                                                       label: prefix + "h" + target.rawValue, loop: loop)))
            }
            let figures = try await measure(fleets)
            for (_, fleet) in fleets { await fleet.stop() }
            return figures
        } catch {
            for (_, fleet) in fleets { await fleet.stop() }
            throw error
        }
    }

    private func measure(_ fleets: [(ProxyBenchTarget, ProxyBenchFleet)]) async throws
        -> [ProxyBenchTarget: [ProxyBenchMetric: Double]] {
        var tallies = [ProxyBenchTarget: Tally]()
        let perRound = max(1, options.handshakes / Self.rounds)
        for round in 0..<Self.rounds {
            for index in fleets.indices {
                let (target, fleet) = fleets[(index + round) % fleets.count]
                let driver = ProxyBenchHandshakeDriver(loop: loop, endpoint: fleet.endpoint,
                                                       roomPrefix: prefix + "h\(round)" + target.rawValue)
                let inFlight = options.handshakesInFlight
                let before = fleet.cpuSeconds()
                let result = try await loop.flatSubmit { driver.run(total: perRound, inFlight: inFlight) }.get()
                let after = fleet.cpuSeconds()
                try fleet.checkAlive()
                var tally = tallies[target] ?? Tally()
                tally.completed += result.completed
                tally.seconds += result.seconds
                tally.failures += result.failures
                tally.firstFailure = tally.firstFailure ?? result.firstFailure
                if let a = before.proxy, let b = after.proxy { tally.proxyCPU = (tally.proxyCPU ?? 0) + b - a }
                if let a = before.shard, let b = after.shard { tally.shardCPU = (tally.shardCPU ?? 0) + b - a }
                tallies[target] = tally
            }
        }
        var figures = [ProxyBenchTarget: [ProxyBenchMetric: Double]]()
        for (target, _) in fleets {
            guard let tally = tallies[target] else { continue }
            var metrics = [ProxyBenchMetric: Double]()
            let rate = tally.seconds > 0 ? Double(tally.completed) / tally.seconds : 0
            metrics[.handshakes] = rate
            if tally.failures > 0 { metrics[.handshakeFailures] = Double(tally.failures) }
            let perHandshake = { (cpu: Double?) in cpu.map { $0 / Double(max(1, tally.completed)) * 1e6 } }
            metrics[.proxyHandshakeCPU] = perHandshake(tally.proxyCPU)
            metrics[.shardHandshakeCPU] = perHandshake(tally.shardCPU)
            figures[target] = metrics
            say("\(target.rawValue): \(tally.completed) handshakes in \(ProxyBench.format(tally.seconds, decimals: 2)) s = "
                + "\(ProxyBench.format(rate, decimals: 0))/s; CPU µs per handshake: "
                + (metrics[.proxyHandshakeCPU].map { "proxy \(ProxyBench.format($0, decimals: 0)), " } ?? "")
                + "shard \(ProxyBench.format(metrics[.shardHandshakeCPU] ?? .nan, decimals: 0))"
                + (tally.failures > 0 ? " (\(tally.failures) failed: \(tally.firstFailure ?? ""))" : ""))
        }
        return figures
    }
}

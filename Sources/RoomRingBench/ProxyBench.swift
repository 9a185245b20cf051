import Foundation
import NIOCore
import NIOPosix

/// Settings of `roomring bench proxy`.
public struct ProxyBenchOptions: Sendable {
    public var connections = 50
    public var duration = 5.0
    public var warmup = 1.0
    public var repeats = 3
    public var idle = 10_000
    public var handshakes = 30_000
    public var handshakesInFlight = 100
    /// Idle connections opened per second at most (0: as fast as they complete).
    public var idleOpenRate = 1_500
    public var targets: [ProxyBenchTarget] = ProxyBenchTarget.allCases
    public var messageBytes = 64
    /// Offered msgs/s (all connections together) for the server-CPU figure; 0 skips it.
    public var rate = 2_000
    public var serverCPU: Int? = 0
    public var generatorCPU: Int? = 1
    /// Nice value for servers and generator (negative: ahead of unrelated work on a shared machine).
    public var nice = 0
    /// Keeps the pinned CPUs from idling (SCHED_IDLE busy loops), so wake-ups from idle do not enter the figures.
    public var keepAwake = false
    public var haproxyBinary = "haproxy"
    public var haproxyConfig: String?

    public init() {}
}

/// Direct connection to a shard vs the RoomRing proxy vs HAProxy, interleaved in one run (BENCHMARKING.md).
public enum ProxyBench {
    /// Runs every repetition and prints progress and the final report through `say`.
    public static func run(_ options: ProxyBenchOptions,
                           say: @escaping @Sendable (String) -> Void = ProxyBench.printLine) async throws {
        ProxyBenchChildren.shared.installSignalHandlers()
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        var serverCPU = options.serverCPU
        var generatorCPU = options.generatorCPU
        var notes: [String] = []
        if cpus < 2 || !FileManager.default.isExecutableFile(atPath: ProxyBenchSystem.tasksetPath) {
            notes.append("not pinned: \(cpus) CPU(s)" + (cpus < 2 ? "" : ", no taskset") + "; figures include scheduling")
            serverCPU = nil
            generatorCPU = nil
        }
        if let cpu = generatorCPU, let error = ProxyBenchSystem.pinSelf(to: cpu) {
            notes.append("could not pin the generator to CPU \(cpu): \(error)")
            generatorCPU = nil
        }
        if options.nice != 0, let error = ProxyBenchSystem.setOwnNice(options.nice) {
            notes.append("could not set nice \(options.nice) for the generator: \(error)")
        }
        let descriptors = ProxyBenchSystem.raiseDescriptorLimit()
        let proxied = options.targets.contains { $0 != .direct }
        // Generator: 1 per connection. Proxy: 2 (client + shard side). Shard: 1. Keep 512 for everything else
        // (HAProxy refuses to start when 2 × maxconn plus its own few exceed the limit).
        let idleLimit = max(0, (descriptors - 512) / (proxied ? 2 : 1))
        let idle = min(options.idle, idleLimit)
        if idle < options.idle {
            notes.append("idle connections scaled from \(options.idle) to \(idle): descriptor limit \(descriptors)"
                + (proxied ? ", and a proxied connection costs the proxy 2 descriptors" : ""))
        }

        var targets = options.targets
        var haproxyBinary: String?
        var haproxyTemplate: ProxyBenchHAProxyConfig?
        var haproxyVersion = ""
        if targets.contains(.haproxy) {
            if let binary = ProxyBenchSystem.which(options.haproxyBinary) {
                haproxyBinary = binary
                haproxyTemplate = try ProxyBenchHAProxyConfig.locate(explicit: options.haproxyConfig)
                haproxyVersion = ProxyBenchSystem.capture([binary, "-v"])?.output
                    .split(separator: "\n").first.map(String.init) ?? "unknown version"
            } else {
                say("skipping haproxy: `\(options.haproxyBinary)` is not installed (apt-get install -y haproxy)")
                targets.removeAll { $0 == .haproxy }
            }
        }
        guard !targets.isEmpty else { throw ProxyBenchError("no targets left to measure") }

        let workDirectory = NSTemporaryDirectory() + "roomring-bench-proxy-\(getpid())"
        try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
        let binary = ProxyBenchSystem.executablePath
        var setup = ProxyBenchSetup(binary: binary, haproxyBinary: haproxyBinary,
                                    haproxyTemplate: haproxyTemplate?.template,
                                    haproxyMaxconn: min(max(idle, 4096), max(0, (descriptors - 512) / 2)) + 16,
                                    serverCPU: serverCPU, nice: options.nice,
                                    workDirectory: workDirectory,
                                    adminToken: UUID().uuidString.replacingOccurrences(of: "-", with: ""))

        setup.shardExtraArguments = ProxyBenchSetup.shardLimitArguments(binary: binary)
        if !setup.shardExtraArguments.isEmpty {
            notes.append("shard join limit lifted: " + setup.shardExtraArguments.joined(separator: " "))
        }
        let build = binary.contains("/release/") ? "release build" : binary.contains("/debug/")
            ? "DEBUG BUILD: figures are not meaningful, use swift build -c release" : "build type unknown"
        say("roomring bench proxy: \(targets.map(\.rawValue).joined(separator: " vs ")), interleaved, "
            + "\(options.repeats) repetition\(options.repeats == 1 ? "" : "s")")
        say("  binary       \(binary) (\(build))")
        if let haproxyBinary, let haproxyTemplate {
            say("  haproxy      \(haproxyBinary): \(haproxyVersion)")
            say("               config: \(haproxyTemplate.source), bind/server/maxconn substituted")
        }
        say("  pinning      " + (serverCPU.map { "servers on CPU \($0) (taskset -c \($0))" } ?? "servers not pinned")
            + ", " + (generatorCPU.map { "generator on CPU \($0)" } ?? "generator not pinned")
            + "; \(cpus) CPUs; descriptor limit \(descriptors)" + (options.nice != 0 ? "; nice \(options.nice)" : ""))
        if options.keepAwake {
            say("  keep-awake   a SCHED_IDLE busy loop on each pinned CPU: no wake-up from idle in the figures")
        }
        say("  echo         chat of \(options.messageBytes) message bytes, no id; each connection alone in its room; "
            + "\(format(options.warmup)) s warm-up + \(format(options.duration)) s at 1 and \(options.connections) "
            + "connections, closed loop" + (options.rate > 0 ? "; then \(options.rate) msg/s paced for server CPU" : ""))
        say("  handshakes   \(options.handshakes) per target, \(options.handshakesInFlight) in flight, each until its hello; "
            + "all targets up at once, in \(ProxyBenchHandshakeRounds.rounds) alternating rounds")
        say("  memory       \(idle) idle connections, VmRSS after − before, fresh processes")
        for note in notes { say("  note         \(note)") }
        say("  work dir     \(workDirectory) (ring, configs, server logs)")

        let spinners = try startSpinners(options.keepAwake ? [serverCPU, generatorCPU].compactMap { $0 } : [],
                                         directory: workDirectory)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let runs: [[ProxyBenchTarget: [ProxyBenchMetric: Double]]]
        do {
            runs = try await measure(options, targets: targets, idle: idle, setup: setup, loop: group.next(), say: say)
        } catch {
            try? await group.shutdownGracefully()
            for spinner in spinners { await spinner.stop(grace: .zero) }
            throw error
        }
        try? await group.shutdownGracefully()
        for spinner in spinners { await spinner.stop(grace: .zero) }
        say("")
        let report = ProxyBenchReport(options: options, idle: idle, targets: targets, runs: runs)
        for line in report.lines() { say(line) }
        try? FileManager.default.removeItem(atPath: workDirectory)
    }

    private static func measure(_ options: ProxyBenchOptions, targets: [ProxyBenchTarget], idle: Int,
                                setup: ProxyBenchSetup, loop: any EventLoop,
                                say: @escaping @Sendable (String) -> Void) async throws
        -> [[ProxyBenchTarget: [ProxyBenchMetric: Double]]] {
        var runs: [[ProxyBenchTarget: [ProxyBenchMetric: Double]]] = []
        for rep in 0..<options.repeats {
            // Rotate the order each repetition so no target always runs first (or right after a heavy one).
            let order = (0..<targets.count).map { targets[($0 + rep) % targets.count] }
            say("")
            say("repetition \(rep + 1)/\(options.repeats): \(order.map(\.rawValue).joined(separator: ", "))")
            var figures: [ProxyBenchTarget: [ProxyBenchMetric: Double]] = [:]
            for target in order {
                let session = ProxyBenchSession(target: target, options: options, idle: idle, setup: setup,
                                                loop: loop, prefix: "r\(rep + 1)\(target.rawValue.prefix(1))",
                                                say: { say("  [\(rep + 1)/\(options.repeats) \(target.rawValue)] " + $0) })
                figures[target] = try await session.run()
            }
            let rounds = ProxyBenchHandshakeRounds(targets: order, options: options, setup: setup, loop: loop,
                                                   prefix: "r\(rep + 1)",
                                                   say: { say("  [\(rep + 1)/\(options.repeats) handshakes] " + $0) })
            for (target, metrics) in try await rounds.run() { figures[target, default: [:]].merge(metrics) { $1 } }
            runs.append(figures)
        }
        return runs
    }

    /// One busy loop per CPU at SCHED_IDLE priority: it runs only when nothing else wants the CPU, so the CPU never
    /// sleeps and waking a server or the generator costs no exit from idle (on a VM, halting a vCPU and waking it
    /// again adds tens to thousands of µs at random, more to a one-hop direct connection than to a proxied one).
    private static func startSpinners(_ cpus: [Int], directory: String) throws -> [ProxyBenchProcess] {
        guard !cpus.isEmpty else { return [] }
        guard let chrt = ProxyBenchSystem.which("chrt") else { throw ProxyBenchError("--keep-awake needs chrt") }
        return try cpus.map { cpu in
            try ProxyBenchProcess.start(name: "spinner",
                                        arguments: [chrt, "--idle", "0", "/bin/sh", "-c", "while :; do :; done"],
                                        cpu: cpu, logPath: directory + "/spinner-\(cpu).log")
        }
    }

    /// Writes a line to standard output at once (progress must show while the run goes on).
    @Sendable public static func printLine(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func format(_ value: Double, decimals: Int = 1) -> String {
        guard value.isFinite else { return "–" }
        if value == value.rounded(), abs(value) < 1e15, decimals <= 1 { return String(Int(value)) }
        return String(format: "%.\(decimals)f", value)
    }
}

/// One target in one repetition: fresh processes for the echo workloads, fresh ones again for memory. (Handshakes
/// are measured for all targets together: ``ProxyBenchHandshakeRounds``.)
struct ProxyBenchSession {
    var target: ProxyBenchTarget
    var options: ProxyBenchOptions
    var idle: Int
    var setup: ProxyBenchSetup
    var loop: any EventLoop
    var prefix: String
    var say: @Sendable (String) -> Void

    func run() async throws -> [ProxyBenchMetric: Double] {
        var figures: [ProxyBenchMetric: Double] = [:]
        let fleet = try await ProxyBenchFleet.start(target, setup: setup, label: prefix + "a", loop: loop)
        do {
            let one = try await echo(fleet, connections: 1, pacing: .closedLoop, name: "e1")
            figures[.rtt1p50] = one.window.latency.p50
            figures[.rtt1p99] = one.window.latency.p99
            figures[.rtt1p999] = one.window.latency.p999
            say("echo, 1 connection: RTT p50 \(µs(one.window.latency.p50)), p99 \(µs(one.window.latency.p99)), "
                + "p99.9 \(µs(one.window.latency.p999)); \(rate(one.window)) msg/s" + one.problems)

            let many = try await echo(fleet, connections: options.connections, pacing: .closedLoop, name: "en")
            figures[.rttNp50] = many.window.latency.p50
            figures[.rttNp99] = many.window.latency.p99
            figures[.rttNp999] = many.window.latency.p999
            figures[.throughput] = Double(many.window.chats) / many.window.seconds
            figures[.generatorCPU] = many.generatorPercent
            say("echo, \(options.connections) connections: RTT p50 \(µs(many.window.latency.p50)), "
                + "p99 \(µs(many.window.latency.p99)), p99.9 \(µs(many.window.latency.p999)); "
                + "\(rate(many.window)) msg/s; generator CPU \(ProxyBench.format(many.generatorPercent, decimals: 0)) %"
                + many.problems)

            if options.rate > 0 {
                let perConnection = Double(options.rate) / Double(options.connections)
                let interval = TimeAmount.nanoseconds(Int64(1e9 / perConnection))
                let paced = try await echo(fleet, connections: options.connections, pacing: .interval(interval), name: "ep")
                let delivered = Double(paced.window.chats) / paced.window.seconds
                figures[.pacedDelivered] = delivered
                figures[.pacedP50] = paced.window.latency.p50
                figures[.pacedP99] = paced.window.latency.p99
                let per100k = { (cpu: Double?) in cpu.map { $0 / Double(max(1, paced.window.chats)) * 100_000 } }
                figures[.proxyCPU] = per100k(paced.proxyCPU)
                figures[.shardCPU] = per100k(paced.shardCPU)
                say("paced \(options.rate) msg/s: delivered \(rate(paced.window)) msg/s, RTT p50 "
                    + "\(µs(paced.window.latency.p50)), p99 \(µs(paced.window.latency.p99)); CPU s per 100k msgs: "
                    + (figures[.proxyCPU].map { "proxy \(ProxyBench.format($0, decimals: 3)), " } ?? "")
                    + "shard \(ProxyBench.format(figures[.shardCPU] ?? .nan, decimals: 3))" + paced.problems
                    + (delivered < 0.95 * Double(options.rate) ? " [SATURATED: lower --rate for a CPU figure]" : ""))
            }

        } catch {
            await fleet.stop()
            throw error
        }
        await fleet.stop()

        if idle > 0 {
            let memory = try await ProxyBenchFleet.start(target, setup: setup, label: prefix + "m", loop: loop)
            do {
                let (proxy, shard) = try await idleMemory(memory)
                figures[.proxyMemory] = proxy
                figures[.shardMemory] = shard
                say("memory, \(idle) idle connections: "
                    + (proxy.map { "proxy \(ProxyBench.format($0, decimals: 2)) KiB/tunnel, " } ?? "")
                    + "shard \(ProxyBench.format(shard, decimals: 2)) KiB/connection")
            } catch {
                await memory.stop()
                throw error
            }
            await memory.stop()
        }
        return figures
    }

    private func µs(_ value: Double) -> String { ProxyBench.format(value, decimals: 1) + " µs" }
    private func rate(_ window: ProxyBenchWindow) -> String {
        ProxyBench.format(Double(window.chats) / window.seconds, decimals: 0)
    }

    struct Echo {
        var window: ProxyBenchWindow
        var generatorPercent: Double
        var proxyCPU: Double?
        var shardCPU: Double?
        var problems: String {
            var parts: [String] = []
            if window.others > 0 { parts.append("\(window.others) non-chat replies") }
            if window.failures > 0 { parts.append("\(window.failures) connections lost (\(window.firstFailure ?? ""))") }
            return parts.isEmpty ? "" : " [" + parts.joined(separator: "; ") + "]"
        }
    }

    private func echo(_ fleet: ProxyBenchFleet, connections: Int, pacing: ProxyBenchEchoDriver.Pacing,
                      name: String) async throws -> Echo {
        let frame = ProxyBenchSocket.chatFrame(messageBytes: options.messageBytes)
        let driver = ProxyBenchEchoDriver(loop: loop, endpoint: fleet.endpoint, roomPrefix: prefix + name, chatFrame: frame)
        do {
            try await loop.flatSubmit { driver.open(count: connections, concurrency: 100) }.get()
            try await loop.submit { driver.start(pacing) }.get()
            try await Task.sleep(for: .milliseconds(Int(options.warmup * 1000)))
            try await loop.submit { driver.beginWindow() }.get()
            let generator0 = ProxyBenchSystem.ownCPUSeconds()
            let servers0 = fleet.cpuSeconds()
            try await Task.sleep(for: .milliseconds(Int(options.duration * 1000)))
            let window = try await loop.submit { driver.endWindow() }.get()
            let generator1 = ProxyBenchSystem.ownCPUSeconds()
            let servers1 = fleet.cpuSeconds()
            try await loop.flatSubmit { driver.stop() }.get()
            try fleet.checkAlive()
            guard window.chats > 0 else {
                throw ProxyBenchError("no echo came back through \(target.rawValue)"
                    + (window.firstFailure.map { ": \($0)" } ?? ""))
            }
            let difference = { (a: Double?, b: Double?) -> Double? in
                guard let a, let b else { return nil }
                return b - a
            }
            return Echo(window: window, generatorPercent: (generator1 - generator0) / window.seconds * 100,
                        proxyCPU: difference(servers0.proxy, servers1.proxy),
                        shardCPU: difference(servers0.shard, servers1.shard))
        } catch {
            _ = try? await loop.flatSubmit { driver.stop() }.get()
            throw error
        }
    }

    /// KiB of resident memory per idle connection: (proxy, shard); proxy nil when direct.
    private func idleMemory(_ fleet: ProxyBenchFleet) async throws -> (Double?, Double) {
        let frame = ProxyBenchSocket.chatFrame(messageBytes: 1)
        // Warm up the code paths and allocator pools with a few connections first, so the one-time costs of the
        // first connection do not count as per-connection memory.
        let warm = ProxyBenchEchoDriver(loop: loop, endpoint: fleet.endpoint, roomPrefix: prefix + "w", chatFrame: frame)
        try await loop.flatSubmit { warm.open(count: 200, concurrency: 100) }.get()
        try await loop.flatSubmit { warm.stop() }.get()
        try await Task.sleep(for: .milliseconds(500))
        guard let shard0 = fleet.shard.residentKiB() else { throw ProxyBenchError("cannot read the shard's VmRSS") }
        let proxy0 = fleet.proxy?.residentKiB()

        let count = idle
        // Stay under a shard's join-rate limit (RoomRing shards default to 2,000/s): memory does not depend on it.
        let rate = options.idleOpenRate > 0 ? options.idleOpenRate : nil
        let driver = ProxyBenchEchoDriver(loop: loop, endpoint: fleet.endpoint, roomPrefix: prefix + "i", chatFrame: frame)
        let start = ContinuousClock.now
        do {
            try await loop.flatSubmit { driver.open(count: count, concurrency: 200, perSecond: rate) }.get()
        } catch {
            _ = try? await loop.flatSubmit { driver.stop() }.get()
            throw error
        }
        let opened = ContinuousClock.now - start
        try await Task.sleep(for: .seconds(1))
        let shard1 = fleet.shard.residentKiB()
        let proxy1 = fleet.proxy?.residentKiB()
        let (lost, retried) = try await loop.submit { (driver.endWindow().failures, driver.refusedAndRetried) }.get()
        if retried > 0 { say("note: \(retried) handshakes were refused with 503 (the shard's join limit) and retried") }
        try await loop.flatSubmit { driver.stop() }.get()
        try fleet.checkAlive()
        if lost > 0 { say("note: \(lost) idle connections closed before the memory was read") }
        let seconds = Double(opened.components.seconds) + Double(opened.components.attoseconds) / 1e18
        say("opened \(count) idle connections in \(ProxyBench.format(seconds, decimals: 2)) s"
            + (rate.map { " (at most \($0)/s, under a shard's join-rate limit)" } ?? ""))
        guard let shard1 else { throw ProxyBenchError("cannot read the shard's VmRSS") }
        let perShard = (shard1 - shard0) / Double(count)
        let perProxy: Double? = if let proxy0, let proxy1 { (proxy1 - proxy0) / Double(count) } else { nil }
        return (perProxy, perShard)
    }
}

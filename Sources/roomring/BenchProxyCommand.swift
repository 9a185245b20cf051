import ArgumentParser
import Foundation
import RoomRingBench

extension ProxyBenchTarget: ExpressibleByArgument {}

/// `roomring bench proxy`: a direct connection to a shard, the RoomRing proxy and HAProxy, measured in one run.
struct ProxyBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Latency, connection rate and memory: direct to a shard vs the RoomRing proxy vs HAProxy, one run.",
        discussion: """
            Build with `swift build -c release --product roomring` first. Each
            repetition measures every target in turn (the order rotates), each
            with fresh processes of this binary: one shard, plus `roomring proxy`
            or HAProxy in front of it. Servers are pinned to CPU 0
            (`taskset -c 0`), the load generator to CPU 1.

            Workloads, per target and repetition:
              echo        Each connection, alone in its own room, sends a chat
                          (no id) and times the broadcast copy coming back:
                          RTT p50/p99/p99.9 at 1 and at --connections
                          connections, closed loop, with msgs/s and the
                          generator's own CPU (near 100 % the generator is the
                          limit). Then --rate msgs/s at a fixed pace: RTT and
                          server CPU seconds per 100,000 delivered messages
                          (/proc/PID/stat), comparable past the generator's
                          ceiling.
              handshakes  --handshakes WebSocket handshakes per target,
                          100 in flight, each until its hello arrives;
                          every target's processes up at once, measured
                          in 5 alternating rounds so that drift in the
                          machine's speed hits every target alike.
              memory      VmRSS of the proxy and the shard before and after
                          opening --idle idle connections, fresh processes,
                          divided by the count. The count shrinks (with a
                          note) to fit the descriptor limit, raised to the
                          hard limit: a proxied connection costs the proxy 2.

            HAProxy (`haproxy` on PATH; skipped with a reason if missing) runs
            deploy/haproxy/haproxy.cfg with bind address, servers and maxconn
            substituted (hash-type consistent, balance hash path,field(3,/),
            timeout tunnel).

            The report gives each figure as median (min–max), the latency each
            proxy adds over direct (paired per repetition), and RoomRing ÷
            HAProxy with PASS/MISS against the targets: added p50 and p99 RTT at
            most HAProxy's, handshakes/s at least HAProxy's, memory per idle
            tunnel at most HAProxy's.

            On a shared or virtual machine: --nice -10 puts the servers and the
            generator ahead of unrelated work; --keep-awake keeps the pinned CPUs
            out of idle, whose wake-up latency otherwise dominates the tails.
            """
    )

    @Option(help: "Connections for the many-connection echo run.")
    var connections: Int = 50

    @Option(help: "Seconds measured per echo run (after the warm-up).")
    var duration: Double = 5

    @Option(help: "Seconds of warm-up before each echo run, not measured.")
    var warmup: Double = 1

    @Option(name: .customLong("repeat"), help: "Repetitions; medians and spreads are over these (3 or more).")
    var repeats: Int = 3

    @Option(help: "Idle connections for the memory figure (0 skips it).")
    var idle: Int = 10_000

    @Option(help: "WebSocket handshakes per target for the connection-rate figure: enough for a sustained rate.")
    var handshakes: Int = 30_000

    @Option(help: "Targets, comma-separated, from: direct, roomring, haproxy (default: all three).",
            transform: { text in
                try text.split(separator: ",").map { name in
                    guard let target = ProxyBenchTarget(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                        throw ValidationError("unknown target \"\(name)\"; use direct, roomring, haproxy")
                    }
                    return target
                }
            })
    var targets: [ProxyBenchTarget] = ProxyBenchTarget.allCases

    @Option(help: "Characters in each chat message.")
    var messageBytes: Int = 64

    @Option(help: "Offered msgs/s (all connections together) for the server-CPU figure; 0 skips it.")
    var rate: Int = 2_000

    @Option(parsing: .unconditional,
            help: "Nice value for servers and generator; negative puts them ahead of other work (needs root).")
    var nice: Int = 0

    @Flag(help: "Keep the pinned CPUs from idling (SCHED_IDLE busy loops); on a VM a wake-up from idle adds µs to ms.")
    var keepAwake = false

    @Option(help: "The haproxy executable.")
    var haproxy: String = "haproxy"

    @Option(help: "HAProxy config template (default: deploy/haproxy/haproxy.cfg of this checkout).")
    var haproxyConfig: String?

    func validate() throws {
        guard connections >= 1 else { throw ValidationError("--connections must be at least 1") }
        guard duration > 0, warmup >= 0 else {
            throw ValidationError("--duration must be positive, --warmup not negative")
        }
        guard repeats >= 1 else { throw ValidationError("--repeat must be at least 1") }
        guard idle >= 0, handshakes >= 1 else { throw ValidationError("--idle must be ≥ 0 and --handshakes ≥ 1") }
        guard messageBytes >= 0, messageBytes <= 60_000 else { throw ValidationError("--message-bytes: 0…60000") }
        guard (-20...19).contains(nice) else { throw ValidationError("--nice: -20…19") }
        guard rate >= 0 else { throw ValidationError("--rate must not be negative") }
        guard !targets.isEmpty else { throw ValidationError("--targets names no target") }
    }

    func run() async throws {
        var options = ProxyBenchOptions()
        options.connections = connections
        options.duration = duration
        options.warmup = warmup
        options.repeats = repeats
        options.idle = idle
        options.handshakes = handshakes
        options.targets = targets.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
        options.messageBytes = messageBytes
        options.rate = rate
        options.nice = nice
        options.keepAwake = keepAwake
        options.haproxyBinary = haproxy
        options.haproxyConfig = haproxyConfig
        try await ProxyBench.run(options)
    }
}

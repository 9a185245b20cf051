import ArgumentParser
import Foundation
import RoomRingBench

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks that print ratios against a baseline measured in the same run.",
        discussion: "Build with `swift build -c release` first; debug builds measure the debugger-friendly code.",
        subcommands: [Fanout.self, ProxyBenchCommand.self, RingLookup.self, Rebalance.self, Compare.self]
    )

    struct RingLookup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ring",
                                                        abstract: "Cost of one ring lookup at several ring sizes.")
        @Option(help: "Lookups per ring size.")
        var lookups: Int = 1_000_000

        func run() async throws {
            print(RingBenchmark.run(lookups: lookups))
        }
    }

    struct Fanout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Room fanout against one shard and a Node.js `ws` room server: delivered messages/s and latency.",
            discussion: """
                Each step starts a fresh server as a child process, opens ROOMS × MEMBERS WebSocket connections to \
                /rooms/bench-<r>?name=m<i>, and lets the first member of every room send chats, RATE per second in \
                total, paced evenly (a 1 ms tick sends whatever is due). The server broadcasts each chat to every \
                member of its room, sender included, so the expected delivery rate is RATE × MEMBERS. Each message \
                carries its send time (monotonic nanoseconds), and every receiver records send-to-receipt latency \
                in an HdrHistogram. After --warmup seconds a window of --duration seconds is measured.

                Targets:
                  roomring  `roomring shard --event-loops 1` (this same binary), rate limits lifted.
                  node      Node.js with Debian's `ws` (apt install nodejs node-ws), a ~40-line room server that \
                speaks the same protocol subset. Skipped, with the reason printed, if node or ws is missing.

                Method (see BENCHMARKING.md): build with `swift build -c release`. Servers run on CPU --server-cpu \
                (via taskset), the generator on CPU --generator-cpu with one event loop thread. Targets are \
                interleaved within each repetition (A B A B); the table gives medians over --repeat repetitions \
                with [min–max] spreads. The machine may be shared: a step during which other processes took more \
                than --max-other-load % of either core (from /proc/stat) is measured again after a pause, up to \
                --noisy-retries times, and left out of the medians when a quieter repetition exists (column n); \
                the "other" column shows what remained.

                Columns: delivered/s = chat frames received by all members in the window; p50/p99/p99.9 = delivery \
                latency; srv CPU s/100k = server user+system CPU seconds (from /proc/PID/stat) per 100,000 \
                delivered messages; gen CPU = the generator's own CPU in % of one core (near 100 % the generator, \
                not the server, is the limit: one core receives only ~150,000 frames/s). The sustained delivered \
                rate is the highest median delivered rate with p99 < 50 ms and ≥ 95 % of RATE × MEMBERS delivered. \
                The summary prints the roomring/node ratio of sustained rates and of CPU per 100k at each rate; \
                CPU per 100k below saturation is the efficiency figure that stays valid past the generator's limit.

                Example: roomring bench fanout --rooms 100 --members 20 --rates 2000,4000,6000 --repeat 3
                """
        )

        @Option(help: "Rooms, each with one sender.")
        var rooms: Int = 100

        @Option(help: "Connections per room, the sender included.")
        var members: Int = 20

        @Option(help: "Offered chats per second over all rooms, comma-separated; one step each (swept).")
        var rates: String = "2000,4000,5000,6000,8000,12000,14000,16000"

        @Option(help: "Seconds measured per step.")
        var duration: Double = 5

        @Option(help: "Seconds of sending before the measured window opens.")
        var warmup: Double = 1

        @Option(name: .customLong("repeat"), help: "Repetitions; the table shows medians over them.")
        var repetitions: Int = 3

        @Option(help: "Length of each chat's message text in bytes (send timestamp plus padding, at least 20).")
        var messageBytes: Int = 64

        @Option(help: "Servers to measure, comma-separated, in run order: roomring, node.")
        var targets: String = "roomring,node"

        @Option(help: "Measure a step again when other processes took more than this % of a benchmark core.")
        var maxOtherLoad: Double = 15

        @Option(help: "How often a disturbed step is measured again before its last attempt is kept.")
        var noisyRetries: Int = 3

        @Option(help: "CPU for the servers (-1: do not pin).")
        var serverCPU: Int = 0

        @Option(help: "CPU for the load generator (-1: do not pin).")
        var generatorCPU: Int = 1

        func validate() throws {
            guard rooms > 0, members > 0 else { throw ValidationError("--rooms and --members must be positive") }
            guard (try? parsedRates()) != nil else {
                throw ValidationError("--rates must be positive integers, e.g. 1000,2000")
            }
            guard (try? parsedTargets()) != nil else { throw ValidationError("--targets takes roomring and/or node") }
            guard duration > 0, warmup >= 0 else {
                throw ValidationError("--duration must be positive, --warmup not negative")
            }
            guard repetitions > 0 else { throw ValidationError("--repeat must be at least 1") }
            guard (20...60_000).contains(messageBytes) else { throw ValidationError("--message-bytes must be 20...60000") }
        }

        func run() async throws {
            var options = FanoutOptions()
            options.rooms = rooms
            options.members = members
            options.rates = try parsedRates()
            options.duration = duration
            options.warmup = warmup
            options.repeats = repetitions
            options.messageBytes = messageBytes
            options.targets = try parsedTargets()
            options.maxOtherLoad = maxOtherLoad
            options.noisyRetries = max(0, noisyRetries)
            options.serverCPU = serverCPU >= 0 ? serverCPU : nil
            options.generatorCPU = generatorCPU >= 0 ? generatorCPU : nil
            #if DEBUG
            print("warning: this is a debug build; build with `swift build -c release` for meaningful numbers")
            #endif
            let report = try await FanoutBenchmark.run(options) { line in print(line) }
            print(report.text)
        }

        private func parsedRates() throws -> [Int] { try commaSeparated(rates, "bad --rates", positiveInteger) }

        private func parsedTargets() throws -> [FanoutTarget] {
            try commaSeparated(targets, "bad --targets", FanoutTarget.init(rawValue:))
        }
    }
}

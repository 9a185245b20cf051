import ArgumentParser
import Foundation
import RoomRingBench
import RoomRingCore

extension Bench {
    struct Compare: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sticky vs pub/sub on the same workloads: a Markdown report with tables and SVG charts.",
            discussion: """
                Three workloads, each run in both designs:
                  1. many small rooms at rising offered rates (throughput, latency percentiles and CDF, CPU);
                  2. one room too large for one shard (--large-room-members, --large-room-rates);
                  3. a fleet behind a proxy gains a shard and drains one while members chat (--rebalance-members): \
                which rooms move, how many members reconnect and how fast, messages lost or duplicated.

                Each step of 1 and 2 starts a fresh fleet of --shards shard processes of this binary (and, for pub/sub, a \
                redis-server on a free port), opens ROOMS × MEMBERS WebSocket connections and lets the first member \
                of every room send chats, RATE per second in total (the `bench fanout` workload). Sticky: every member \
                of a room connects to the room's ring owner. Pub/sub: a room's members are spread over every shard, \
                so each chat goes through Redis once and every shard delivers it. Members connect straight to the \
                shards: the proxy is the same in both designs.

                Columns: delivered/s, delivery latency p50/p99/p99.9, shard CPU seconds per 100,000 delivered \
                messages (all shards added up), Redis CPU seconds per 100,000 (the broker's load), the generator's \
                CPU (near 100 % the generator is the limit). Designs are interleaved within each repetition; the \
                tables give medians. Shards and Redis run on --server-cpu, the generator on --generator-cpu.

                Workload 3 starts 2 shards, a spare s3 and a proxy (and Redis) as child processes, connects \
                --rebalance-members RoomClients through the proxy, then runs `ring add s3` and `ring drain s1 --wait`.

                Writes report.md and SVG charts (delivered, p99, cpu, latency-cdf, large-room) to --output and prints \
                the report.
                Needs Debian's redis-server for the pub/sub half (skipped, with the reason, without it).

                Example: roomring bench compare --rooms 50 --members 20 --rates 1000,2000,4000 --repeat 3
                """
        )

        @Option(help: "Shards per fleet.")
        var shards: Int = 2

        @Option(help: "Rooms, each with one sender.")
        var rooms: Int = 50

        @Option(help: "Connections per room, the sender included.")
        var members: Int = 20

        @Option(help: "Offered chats per second over all rooms, comma-separated; one step each.")
        var rates: String = "1000,2000,4000,6000"

        @Option(help: "Seconds measured per step.")
        var duration: Double = 5

        @Option(help: "Seconds of sending before the measured window opens.")
        var warmup: Double = 1

        @Option(name: .customLong("repeat"), help: "Repetitions; the tables show medians over them.")
        var repetitions: Int = 3

        @Option(help: "Length of each chat's message text in bytes (at least 20).")
        var messageBytes: Int = 64

        @Option(help: "Members of the one large room (0: leave that workload out).")
        var largeRoomMembers: Int = 2000

        @Option(help: "Offered chats per second in the large room, comma-separated; one step each.")
        var largeRoomRates: String = "25,50,100"

        @Option(help: "Members in the add-and-drain run (0: leave it out).")
        var rebalanceMembers: Int = 2000

        @Option(help: "Rooms in the add-and-drain run.")
        var rebalanceRooms: Int = 200

        @Option(help: "Chats per second over all rooms in the add-and-drain run.")
        var rebalanceRate: Double = 200

        @Option(help: "Designs to measure, comma-separated, in run order: sticky, pubsub.")
        var modes: String = "sticky,pubsub"

        @Option(help: "CPU for the shards and Redis (-1: do not pin).")
        var serverCPU: Int = 0

        @Option(help: "CPU for the load generator (-1: do not pin).")
        var generatorCPU: Int = 1

        @Option(help: "Directory for report.md and the SVG charts.")
        var output: String = "bench-compare"

        func validate() throws {
            guard (1...16).contains(shards) else { throw ValidationError("--shards must be 1...16") }
            guard rooms > 0, members > 0 else { throw ValidationError("--rooms and --members must be positive") }
            guard (try? Self.rates(rates)) != nil, (try? Self.rates(largeRoomRates)) != nil else {
                throw ValidationError("--rates and --large-room-rates must be positive integers")
            }
            guard largeRoomMembers >= 0, rebalanceMembers >= 0 else {
                throw ValidationError("--large-room-members and --rebalance-members must not be negative")
            }
            guard rebalanceMembers == 0 || (rebalanceRooms > 0 && rebalanceRooms <= rebalanceMembers && rebalanceRate > 0)
            else { throw ValidationError("--rebalance-rooms must be 1...--rebalance-members, --rebalance-rate positive") }
            guard (try? parsedModes()) != nil else { throw ValidationError("--modes takes sticky and/or pubsub") }
            guard duration > 0, warmup >= 0, repetitions > 0 else {
                throw ValidationError("--duration and --repeat must be positive, --warmup not negative")
            }
            guard (20...60_000).contains(messageBytes) else { throw ValidationError("--message-bytes must be 20...60000") }
        }

        func run() async throws {
            var options = CompareOptions()
            options.shards = shards
            options.rooms = rooms
            options.members = members
            options.rates = try Self.rates(rates)
            options.largeRoomMembers = largeRoomMembers
            options.largeRoomRates = try Self.rates(largeRoomRates)
            options.rebalanceMembers = rebalanceMembers
            options.rebalanceRooms = rebalanceRooms
            options.rebalanceRate = rebalanceRate
            options.duration = duration
            options.warmup = warmup
            options.repeats = repetitions
            options.messageBytes = messageBytes
            options.modes = try parsedModes()
            options.serverCPU = serverCPU >= 0 ? serverCPU : nil
            options.generatorCPU = generatorCPU >= 0 ? generatorCPU : nil
            #if DEBUG
            print("warning: this is a debug build; build with `swift build -c release` for meaningful numbers")
            #endif
            let report = try await CompareBenchmark.run(options) { line in print(line) }
            let directory = URL(fileURLWithPath: output)
            try report.write(to: directory)
            print(report.markdown)
            print("wrote \(directory.appendingPathComponent("report.md").path) and \(report.charts.count) SVG charts")
        }

        private static func rates(_ rates: String) throws -> [Int] { try commaSeparated(rates, "bad --rates", positiveInteger) }

        private func parsedModes() throws -> [ScalingMode] {
            try commaSeparated(modes, "bad --modes", ScalingMode.init(rawValue:))
        }
    }
}

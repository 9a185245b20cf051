import ArgumentParser
import Foundation
import RoomRingBench

extension Bench {
    struct Rebalance: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rebalancing figures: rooms moved on add, and a drain under load (time, reconnects, loss).",
            discussion: """
                Part 1 is computed: the fraction of 100,000 room ids that change owner when shard N+1 joins N \
                shards, against the ideal 1/(N+1), and whether every moved room lands on the new shard.

                Part 2 starts two `roomring shard` processes and --proxies `roomring proxy` processes of this \
                binary, connects --connections RoomClients (through the proxies) to --rooms rooms that s1 owns, \
                lets one member per room chat (--rate chats/s in total), and drains s1 as `roomring ring drain \
                s1 --wait` does. It prints the time until s1 holds no rooms, the time until every member is \
                connected to s2, each member's reconnect time (from its socket closing to the new hello; it \
                includes the client's jittered backoff and the shards' join rate limit), and the messages lost \
                or duplicated over every member's history (both must be 0).

                Build with `swift build -c release` first; a debug build says so in its report.
                Example: roomring bench rebalance --connections 10000 --rooms 1000
                """
        )

        @Option(help: "Member connections in rooms of the drained shard.")
        var connections: Int = 10_000

        @Option(help: "Rooms they are spread over.")
        var rooms: Int = 1_000

        @Option(help: "Chats per second over all rooms (one sender per room).")
        var rate: Double = 200

        @Option(help: "Proxies the members are spread over (each proxied connection costs a proxy 2 descriptors).")
        var proxies: Int = 2

        @Option(help: "--joins-per-second of the shards (default: the shard's own default).")
        var joinsPerSecond: Double?

        @Flag(help: "Print only the computed part (rooms moved on add).")
        var skipDrain = false

        func validate() throws {
            guard connections >= rooms, rooms >= 1 else { throw ValidationError("need --connections >= --rooms >= 1") }
            guard rate > 0, proxies >= 1 else { throw ValidationError("--rate and --proxies must be positive") }
        }

        func run() async throws {
            print(RebalanceBenchmark.movedFractions())
            guard !skipDrain else { return }
            print("")
            let directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("roomring-rebalance-\(getpid())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                ?? CommandLine.arguments[0]
            let options = RebalanceBenchmark.Options(binary: binary, connections: connections, rooms: rooms, rate: rate,
                                                     proxies: proxies, joinsPerSecond: joinsPerSecond,
                                                     workDirectory: directory.path)
            let report = try await RebalanceBenchmark.drain(options) { line in
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
            print(report)
        }
    }
}

import ArgumentParser
import RoomRingBench

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks that print ratios against a baseline measured in the same run.",
        discussion: "Build with `swift build -c release` first; debug builds measure the debugger-friendly code.",
        subcommands: [RingLookup.self]
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
}

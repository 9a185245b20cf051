import ArgumentParser

@main
struct RoomRing: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roomring",
        abstract: "A WebSocket fleet for room-based real-time apps: shards hold rooms, a ring decides who owns which.",
        discussion: """
            Start here:  roomring up            (a fleet on loopback; open http://127.0.0.1:8080/)
            One shard:   roomring shard --id s1 --ring ring.json
            The proxy:   roomring proxy --ring ring.json
            Measure:     roomring bench fanout
            """,
        subcommands: [Up.self, Shard.self, Proxy.self, Bench.self]
    )
}

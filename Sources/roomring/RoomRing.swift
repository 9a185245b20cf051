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
            Rebalance:   roomring ring status | add | drain | remove
            Chat:        roomring chat ws://127.0.0.1:8080/rooms/lobby --name alice
            Measure:     roomring bench fanout
            """,
        subcommands: [Up.self, Shard.self, Proxy.self, Ring.self, Chat.self, Bench.self]
    )
}

import ArgumentParser
import Foundation
import RoomRingClient
import RoomRingCore

struct Ring: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect and change the ring of a running fleet.",
        discussion: """
            Reads the current ring from a proxy's admin API, computes the next ring (epoch + 1) and pushes it to
            every shard and every proxy named. Shards hand rooms that change owner to their new owner, then close
            those rooms' sockets with 1012 so clients reconnect and resume there.
            """,
        subcommands: [Status.self, Add.self, Drain.self, Remove.self]
    )

    struct Connection: ParsableArguments {
        @Option(name: .customLong("proxy-admin"), help: "Proxy admin URL (repeat for several proxies).")
        var proxyAdmins: [String] = ["http://127.0.0.1:8081"]

        @Option(help: "Bearer token for admin APIs (default: $ROOMRING_ADMIN_TOKEN).")
        var adminToken: String?

        var token: String? { adminToken ?? ProcessInfo.processInfo.environment["ROOMRING_ADMIN_TOKEN"] }

        func admin() throws -> FleetAdmin {
            FleetAdmin(proxies: try proxyAdmins.map(FleetAdmin.address(ofURL:)), token: token)
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Shards, state, share, rooms, members, health.")
        @OptionGroup var connection: Connection

        func run() async throws {
            let admin = try connection.admin()
            let ring = try await admin.currentRing()
            print(try await admin.statusTable(ring))
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Bring a running shard into the ring.")
        @Argument(help: "The new shard's id.") var id: String
        @Argument(help: "Its client address host:port.") var address: String
        @Option(help: "Its admin address host:port.") var shardAdmin: String
        @Option(help: "Relative share of rooms.") var weight: Int = 1
        @Flag(help: "Print which rooms would move; change nothing.") var dryRun = false
        @OptionGroup var connection: Connection

        func run() async throws {
            let shard = RingDocument.Shard(id: id, address: address, admin: shardAdmin, weight: weight)
            try await connection.admin().change(.add(shard), dryRun: dryRun, wait: nil)
        }
    }

    struct Drain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move every room off a shard (it stays in the ring as draining).")
        @Argument(help: "The shard's id.") var id: String
        @Flag(help: "Print which rooms would move; change nothing.") var dryRun = false
        @Flag(help: "Return only when the shard holds no rooms.") var wait = false
        @Option(help: "Seconds --wait waits at most.") var timeout: Double = 300
        @OptionGroup var connection: Connection

        func run() async throws {
            try await connection.admin().change(.drain(id: id), dryRun: dryRun, wait: wait ? (id, timeout) : nil)
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a shard out of the ring (drain it first to keep its rooms' history).")
        @Argument(help: "The shard's id.") var id: String
        @Flag(help: "Print which rooms would move; change nothing.") var dryRun = false
        @OptionGroup var connection: Connection

        func run() async throws {
            try await connection.admin().change(.remove(id: id), dryRun: dryRun, wait: nil)
        }
    }
}

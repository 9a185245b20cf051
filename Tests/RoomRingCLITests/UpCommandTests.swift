import Foundation
import RoomRingClient
import RoomRingCore
import Testing
import RoomRingSpawn

/// `roomring up` as a newcomer runs it: real child processes on loopback.
@Suite(.serialized) struct UpCommandTests {
    /// Ports for one fleet: proxy, proxy admin, then `shards` client ports and `shards` admin ports (consecutive
    /// runs are needed by --shard-base-port, so scan for a free block).
    /// The blocks are looked for below the kernel's ephemeral range first: ports in it can be held by thousands of
    /// client connections in TIME_WAIT (a benchmark leaves them), which a server cannot bind over.
    func fleetPorts(shards: Int) throws -> (proxy: Int, admin: Int, shardBase: Int, adminBase: Int) {
        let pair = try LoopbackPort.free(2)
        let ephemeral = Self.ephemeralRange()
        let below = Array(stride(from: 10_000, to: ephemeral.lowerBound - 60, by: 97))
        let start = below.isEmpty ? 0 : Int.random(in: 0..<below.count)
        let above = Array(stride(from: ephemeral.upperBound + 1, to: 65_400, by: 97))
        for base in Array(below[start...] + below[..<start]) + above {
            let wanted = Array(base..<(base + shards)) + Array((base + 50)..<(base + 50 + shards))
            if wanted.allSatisfy({ !pair.contains($0) && canBind($0) }) { return (pair[0], pair[1], base, base + 50) }
        }
        throw ProcessFailure("no free block of ports")
    }

    /// `net.ipv4.ip_local_port_range` (Linux's default when unreadable).
    static func ephemeralRange() -> ClosedRange<Int> {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        let bounds = text.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        guard bounds.count == 2, bounds[0] <= bounds[1] else { return 32_768...60_999 }
        return bounds[0]...bounds[1]
    }

    @Test func upServesRoomsThroughTheProxyAndStopsOnSIGTERM() async throws {
        let ports = try fleetPorts(shards: 2)
        let up = try RoomRingProcess(["up", "--shards", "2", "--port", String(ports.proxy),
                                      "--admin-port", String(ports.admin), "--shard-base-port", String(ports.shardBase),
                                      "--shard-admin-base-port", String(ports.adminBase)],
                                     environment: ["ROOMRING_ADMIN_TOKEN": "up-test-token"])
        do {
            try await up.waitFor("Ctrl-C stops everything")
            #expect(up.text.contains("admin token   up-test-token"))
            #expect(up.text.contains("http://127.0.0.1:\(ports.proxy)/"))

            // The chat page and health come through the proxy.
            let page = try await HTTPClient.request("GET", host: "127.0.0.1", port: ports.proxy, path: "/")
            #expect(page.status == 200 && page.text.contains("<html"))

            // Every room lands on one shard; two members of a room see each other's messages.
            var shardsSeen = Set<String>()
            for i in 0..<8 {
                let a = try await WebSocketConnection.connect(host: "127.0.0.1", port: ports.proxy,
                                                              path: "/rooms/up-\(i)?name=a")
                let b = try await WebSocketConnection.connect(host: "127.0.0.1", port: ports.proxy,
                                                              path: "/rooms/up-\(i)?name=b")
                guard case .hello(let ha) = try await a.nextMessage(), case .hello(let hb) = try await b.nextMessage()
                else { throw ProcessFailure("expected hello") }
                #expect(ha.shard == hb.shard)
                shardsSeen.insert(ha.shard)
                a.send(text: ClientMessage.chat(message: "m\(i)", id: nil).encoded())
                guard case .chat(let chat) = try await b.nextMessage() else { throw ProcessFailure("expected chat") }
                #expect(chat.message == "m\(i)" && chat.from == "a")
                await a.close()
                await b.close()
            }
            #expect(shardsSeen.count == 2)

            let shards = try await HTTPClient.request("GET", host: "127.0.0.1", port: ports.admin, path: "/shards",
                                                      headers: [("Authorization", "Bearer up-test-token")])
            #expect(shards.status == 200 && shards.text.contains("\"s1\"") && shards.text.contains("\"s2\""))
        } catch {
            _ = await up.stop()
            throw error
        }
        let status = await up.stop(SIGTERM)
        #expect(status != nil, "roomring up did not exit within 15 s of SIGTERM")
        for port in [ports.proxy, ports.shardBase, ports.shardBase + 1] {
            #expect(await isListening(port) == false, "port \(port) still served after roomring up stopped")
        }
    }

    @Test func shardsDoNotOutliveAKilledUp() async throws {
        let ports = try fleetPorts(shards: 1)
        let up = try RoomRingProcess(["up", "--shards", "1", "--port", String(ports.proxy),
                                      "--admin-port", String(ports.admin), "--shard-base-port", String(ports.shardBase),
                                      "--shard-admin-base-port", String(ports.adminBase)])
        try await up.waitFor("Ctrl-C stops everything")
        #expect(await isListening(ports.shardBase))
        _ = await up.stop(SIGKILL)
        let deadline = ContinuousClock.now + .seconds(10)
        while await isListening(ports.shardBase), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(await isListening(ports.shardBase) == false, "the shard kept running after its parent was killed")
    }

    @Test func helpExplainsEveryCommand() async throws {
        for command in [["--help"], ["up", "--help"], ["shard", "--help"], ["proxy", "--help"], ["bench", "--help"]] {
            let process = try RoomRingProcess(command)
            let status = await process.stop(0, timeout: .seconds(20))
            #expect(status == 0, "roomring \(command.joined(separator: " ")) exited with \(String(describing: status))")
            #expect(process.text.contains("USAGE"), "no usage in: \(process.text.prefix(200))")
        }
    }

    @Test func badFlagsGiveAClearError() async throws {
        let process = try RoomRingProcess(["shard", "--id", "s1", "--ring", "/nonexistent/ring.json"])
        let status = await process.stop(0, timeout: .seconds(20))
        #expect(status != 0)
        #expect(process.text.contains("cannot read ring file /nonexistent/ring.json"))
    }
}

func canBind(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    // As the servers bind: a port held only by connections in TIME_WAIT (a benchmark leaves thousands) is free.
    var one: Int32 = 1
    _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

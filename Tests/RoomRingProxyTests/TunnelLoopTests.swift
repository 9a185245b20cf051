import CRoomRingSys
import Foundation
import Glibc
import NIOCore
import RoomRingClient
import RoomRingCore
@testable import RoomRingProxy
import Testing

extension ProxyTests {
    /// The proxy's own socket loop: backpressure and ordering on real sockets, descriptors, threads, names.
    @Suite struct TunnelLoops {
        /// A non-blocking Unix stream socket pair.
        static func socketPair() throws -> (Int32, Int32) {
            var fds: [Int32] = [0, 0]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { throw TestFailure("socketpair") }
            for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
            return (fds[0], fds[1])
        }

        /// Writes all of `bytes` that fit; returns how many did.
        static func fill(_ fd: Int32, _ bytes: [UInt8]) -> Int {
            var offset = 0
            while offset < bytes.count {
                let sent = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if sent <= 0 { break }
                offset += sent
            }
            return offset
        }

        static func drain(_ fd: Int32) -> [UInt8] {
            var out: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = read(fd, &buffer, buffer.count)
                if count <= 0 { return out }
                out += buffer[..<count]
            }
        }

        /// A writer that cannot take more makes the pump stop after one read: the proxy holds at most one buffer,
        /// and every byte arrives once, in order, when the reader catches up.
        @Test func pumpHoldsAtMostOneReadForAFullWriterAndKeepsOrder() throws {
            let (sourcePeer, sourceFD) = try Self.socketPair()
            let (destinationFD, destinationPeer) = try Self.socketPair()
            defer { for fd in [sourcePeer, sourceFD, destinationFD, destinationPeer] { close(fd) } }
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: TunnelLoop.scratchSize, alignment: 16)
            defer { scratch.deallocate() }
            let message = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) }
            var source = Tunnel.Side(fd: sourceFD)
            var destination = Tunnel.Side(fd: destinationFD)
            var offered = 0
            var received: [UInt8] = []
            var blockedOnce = false
            for _ in 0..<10_000 where received.count < message.count || !source.inputEnded {
                offered += Self.fill(sourcePeer, Array(message[offered...].prefix(1 << 20)))
                if offered == message.count, !source.inputEnded { shutdown(sourcePeer, Int32(SHUT_WR)) }
                source.readable = true
                var moved = false
                if TunnelLoop.flush(&destination) != nil { Issue.record("flush failed") }
                if !TunnelLoop.pump(from: &source, to: &destination, scratch: scratch, moved: &moved) {
                    Issue.record("pump failed")
                }
                if destination.hasPending { blockedOnce = true }
                #expect(destination.pending.count - destination.pendingStart <= TunnelLoop.scratchSize)
                // The reader is slow: it takes a little at a time.
                if blockedOnce || received.count > 0 { received += Self.drain(destinationPeer) }
            }
            #expect(blockedOnce, "the destination never filled up, so backpressure was not exercised")
            #expect(received.count == message.count)
            #expect(received == message, "bytes were lost, duplicated or reordered")
            #expect(source.inputEnded)
        }

        /// Clients get TCP_NODELAY from the listening socket (Linux copies it on accept), so the loop does not
        /// set it per connection; if a kernel stopped doing that, chat latency would suffer from Nagle's delay.
        @Test func acceptedClientsInheritNoDelayFromTheListener() throws {
            let listener = try Sockets.listen(on: try SocketAddress(ipAddress: "127.0.0.1", port: 0), reusePort: false)
            defer { close(listener) }
            let address = try SocketAddress(ipAddress: "127.0.0.1", port: Sockets.localPort(listener))
            let client = try Sockets.connect(to: address).get()
            defer { close(client) }
            var peer = sockaddr_storage()
            var length = socklen_t(0)
            var accepted: Int32 = -1
            for _ in 0..<200 where accepted < 0 {
                accepted = rr_accept(listener, &peer, &length)
                if accepted < 0 { usleep(5000) }
            }
            defer { close(accepted) }
            #expect(accepted >= 0)
            #expect(rr_nodelay_enabled(accepted) == 1)
            #expect(Sockets.ipAddress(of: peer) == "127.0.0.1")
        }

        /// Clients that vanish at every step of the setup leave no tunnel and no descriptor behind.
        @Test(.timeLimit(.minutes(1)))
        func clientsThatLeaveMidSetupLeaveNothingBehind() async throws {
            try await TestFleet.with { fleet in
                try await fleet.expectWorkingRoundTrip()
                try await Task.sleep(for: .milliseconds(200))
                let before = Self.openDescriptors()
                for i in 0..<200 {
                    let client = try await RawClient.connect(port: fleet.proxy.port)
                    switch i % 4 {
                    case 0: break
                    case 1: try await client.send("GET /rooms/leaver-\(i) HTTP/1.1\r\nHost: x")
                    case 2: try await client.send(RawClient.upgradeRequest("/rooms/leaver-\(i)?name=l"))
                    default: try await client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    }
                    await client.close()
                }
                let settled = await eventually(within: .seconds(10)) {
                    fleet.proxy.context.shardStatuses().allSatisfy { $0.tunnels == 0 }
                        && Self.openDescriptors() <= before + 8
                }
                let tunnels = fleet.proxy.context.shardStatuses().map(\.tunnels)
                #expect(settled, "tunnels \(tunnels), descriptors \(Self.openDescriptors()) vs \(before) before")
                try await fleet.expectWorkingRoundTrip()
            }
        }

        static func openDescriptors() -> Int {
            (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        }

        /// With two loops, each binds the port (SO_REUSEPORT) and every connection is served.
        @Test(.timeLimit(.minutes(1)))
        func twoLoopsShareOnePort() async throws {
            try await TestFleet.with(proxy: { $0.eventLoops = 2 }) { fleet in
                for _ in 0..<40 {
                    let response = try await fleet.get("/healthz")
                    #expect(response.status == 200)
                }
                for n in 0..<6 { try await fleet.expectWorkingRoundTrip("two-loops-\(n)") }
            }
        }

        /// Shard addresses may be names (Kubernetes): they are looked up per connection, off the loop, and a
        /// name that does not resolve gets 503 like an unreachable shard.
        @Test(.timeLimit(.minutes(1)))
        func shardsNamedByHostNameAreLookedUp() async throws {
            try await TestFleet.with { fleet in
                let first = try? SocketAddress.makeAddressResolvingHost("localhost", port: 1)
                if case .v4 = first {
                    let named = fleet.ring.readdressed(epoch: 3) {
                        $0.address.replacingOccurrences(of: "127.0.0.1", with: "localhost")
                    }
                    for shard in fleet.shards { try await TestFleet.push(named, to: shard) }
                    try fleet.proxy.context.install(named)
                    for n in 0..<4 { try await fleet.expectWorkingRoundTrip("named-\(n)") }
                } else {
                    print("skipping the resolvable half: localhost does not resolve to IPv4 first here")
                }
                try fleet.proxy.context.install(fleet.ring.readdressed(epoch: 4) { _ in "no-such-shard.invalid:9" })
                let answer = try await RawClient.exchange(port: fleet.proxy.port,
                                                          Array(RawClient.upgradeRequest("/rooms/nowhere").utf8),
                                                          timeout: .seconds(10))
                #expect(answer.response?.status == 503)
                #expect(answer.response?.header("Retry-After") == "1")
                #expect(answer.response?.text.contains("shard_unreachable") == true)
            }
        }
    }
}

import Foundation
import NIOCore
import NIOPosix
import RoomRingClient
import RoomRingCore
import RoomRingProxy
import Synchronization
import Testing

extension ProxyTests {
    /// A listener in a shard's place: hands each request head to `onHead`, then answers `200 ok` and closes when
    /// that returns true (health checks must pass), or never answers.
    final class StandInShard: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        private let onHead: @Sendable (String) -> Bool
        private var received: [UInt8] = []

        init(onHead: @escaping @Sendable (String) -> Bool) { self.onHead = onHead }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            received += buffer.readBytes(length: buffer.readableBytes) ?? []
            guard let end = ResponseHeadScan.headEnd(received, searchingFrom: 0),
                onHead(String(decoding: received[..<end], as: UTF8.self)) else { return }
            let channel = context.channel
            let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            context.writeAndFlush(NIOAny(ByteBuffer(string: answer))).whenComplete { _ in channel.close(promise: nil) }
        }

        /// Listens on a free loopback port; the caller closes the listener.
        static func listen(_ onHead: @escaping @Sendable (String) -> Bool) async throws -> (listener: any Channel, port: Int) {
            let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(StandInShard(onHead: onHead))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            guard let port = listener.localAddress?.port else {
                try? await listener.close()
                throw TestFailure("stand-in shard has no port")
            }
            return (listener, port)
        }
    }

    /// What the shard receives: the client's head with `X-Forwarded-For` and `X-Request-ID` added, observed on a
    /// loopback listener standing in the shard's place.
    @Suite struct ForwardedHeads {
        /// Every request head a stand-in shard got, health checks left out.
        final class Heads: Sendable {
            let list = Mutex<[String]>([])
        }

        @Test(.timeLimit(.minutes(1)))
        func theShardGetsTheClientsHeadWithTwoHeadersAdded() async throws {
            let recorded = Heads()
            let (listener, port) = try await StandInShard.listen { head in
                if !head.hasPrefix("GET /healthz") { recorded.list.withLock { $0.append(head) } }
                return true
            }
            defer { listener.close(promise: nil) }
            try await TestFleet.with { fleet in
                try fleet.proxy.context.install(fleet.ring.readdressed(epoch: 3) { _ in "127.0.0.1:\(port)" })
                func forward(_ head: String) async throws -> String {
                    recorded.list.withLock { $0 = [] }
                    let answer = try await RawClient.exchange(port: fleet.proxy.port, Array(head.utf8))
                    #expect(answer.response?.status == 200)
                    return try #require(recorded.list.withLock { $0.first })
                }
                // A handshake goes on byte for byte, spacing and header case as sent.
                let upgrade = "GET /rooms/fwd?name=a HTTP/1.1\r\nHost: x\r\nupgrade:websocket\r\n"
                    + "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Odd:  two  spaces \r\n"
                let plain = try await forward(upgrade + "\r\n")
                #expect(plain.hasPrefix(upgrade + "X-Forwarded-For: 127.0.0.1\r\nX-Request-ID: "), "\(plain)")
                #expect(plain.hasSuffix("\r\n\r\n") && plain.components(separatedBy: "X-Request-ID").count == 2)
                // The client's own id replaces nothing else and appears once.
                let traced = try await forward(upgrade + "x-request-id: trace-7\r\n\r\n")
                #expect(traced.contains("X-Request-ID: trace-7\r\n"), "\(traced)")
                #expect(!traced.contains("x-request-id"), "\(traced)")
                #expect(traced.contains("X-Forwarded-For: 127.0.0.1\r\n"))
                // Plain HTTP is one request per tunnel: the shard is told to close.
                let http = try await forward("GET /rooms/fwd/messages HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
                #expect(http.contains("Connection: close\r\n") && !http.contains("keep-alive"), "\(http)")
                #expect(http.contains("X-Forwarded-For: 127.0.0.1\r\n"))
            }
        }
    }
}

extension ProxyTests {
    /// A shard that accepts a request and never answers: the client gets `504` after the idle timeout instead of
    /// waiting for ever, and the proxy goes on serving.
    @Suite struct HungShards {
        @Test(.timeLimit(.minutes(1)))
        func aShardThatNeverAnswersGets504AfterTheIdleTimeout() async throws {
            // Health checks are answered; every other request is taken and never answered.
            let (listener, port) = try await StandInShard.listen { $0.hasPrefix("GET /healthz") }
            defer { listener.close(promise: nil) }
            try await TestFleet.with(proxy: { $0.idleTunnelTimeout = 0.4 }) { fleet in
                let hung = fleet.ring.shards[0].id
                let ring = fleet.ring.readdressed(epoch: 3) { $0.id == hung ? "127.0.0.1:\(port)" : $0.address }
                try fleet.proxy.context.install(ring)
                let room = TestFleet.room(ownedBy: ring.shards[0].id, in: ring)
                let start = ContinuousClock.now
                let answer = try await RawClient.exchange(port: fleet.proxy.port,
                                                          Array(RawClient.upgradeRequest("/rooms/\(room)").utf8),
                                                          timeout: .seconds(10))
                let elapsed = ContinuousClock.now - start
                #expect(answer.response?.status == 504, "\(String(decoding: answer.bytes.prefix(200), as: UTF8.self))")
                #expect(answer.response?.text.contains("shard_timeout") == true)
                // Four sweeps per timeout, five quiet ones to give up: between 1 and 1.25 timeouts, plus load.
                #expect(elapsed >= .milliseconds(350) && elapsed < .seconds(5), "answered after \(elapsed)")
                try await fleet.expectWorkingRoundTrip(TestFleet.room(ownedBy: ring.shards[1].id, in: ring))
            }
        }
    }
}

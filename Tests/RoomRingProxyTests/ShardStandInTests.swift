import Foundation
import NIOCore
import NIOPosix
import RoomRingClient
import RoomRingCore
import RoomRingProxy
import Synchronization
import Testing

extension ProxyTests {
    /// Answers `200 ok` and closes: what a listener in a shard's place tells the proxy's health checks.
    static func answerOK(_ context: ChannelHandlerContext) {
        let channel = context.channel
        let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        context.writeAndFlush(NIOAny(ByteBuffer(string: answer))).whenComplete { _ in channel.close(promise: nil) }
    }

    /// What the shard receives: the client's head with `X-Forwarded-For` and `X-Request-ID` added, observed on a
    /// loopback listener standing in the shard's place.
    @Suite struct ForwardedHeads {
        /// Records every request head it gets and answers `200 ok`, so health checks pass too.
        final class Heads: Sendable {
            let list = Mutex<[String]>([])
        }

        final class HeadRecorder: ChannelInboundHandler {
            typealias InboundIn = ByteBuffer
            let heads: Heads
            private var received: [UInt8] = []

            init(heads: Heads) { self.heads = heads }

            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                var buffer = unwrapInboundIn(data)
                received += buffer.readBytes(length: buffer.readableBytes) ?? []
                guard let end = ResponseHeadScan.headEnd(received, searchingFrom: 0) else { return }
                let head = String(decoding: received[..<end], as: UTF8.self)
                if !head.hasPrefix("GET /healthz") { heads.list.withLock { $0.append(head) } }
                ProxyTests.answerOK(context)
            }
        }

        @Test(.timeLimit(.minutes(1)))
        func theShardGetsTheClientsHeadWithTwoHeadersAdded() async throws {
            let recorded = Heads()
            let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HeadRecorder(heads: recorded))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            defer { listener.close(promise: Optional<EventLoopPromise<Void>>.none) }
            let port = try #require(listener.localAddress?.port)
            try await TestFleet.with { fleet in
                var ring = fleet.ring
                ring.epoch = 3
                ring.shards = ring.shards.map { shard in
                    var shard = shard
                    shard.address = "127.0.0.1:\(port)"
                    return shard
                }
                try fleet.proxy.context.install(ring)
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
        /// Answers health checks; takes every other request and never answers it.
        final class Hang: ChannelInboundHandler {
            typealias InboundIn = ByteBuffer
            private var received: [UInt8] = []

            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                var buffer = unwrapInboundIn(data)
                received += buffer.readBytes(length: buffer.readableBytes) ?? []
                guard ResponseHeadScan.headEnd(received, searchingFrom: 0) != nil,
                    received.starts(with: "GET /healthz".utf8) else { return }
                ProxyTests.answerOK(context)
            }
        }

        @Test(.timeLimit(.minutes(1)))
        func aShardThatNeverAnswersGets504AfterTheIdleTimeout() async throws {
            let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Hang()) }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            defer { listener.close(promise: Optional<EventLoopPromise<Void>>.none) }
            let port = try #require(listener.localAddress?.port)
            try await TestFleet.with(proxy: { $0.idleTunnelTimeout = 0.4 }) { fleet in
                var ring = fleet.ring
                ring.epoch = 3
                ring.shards[0].address = "127.0.0.1:\(port)"
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

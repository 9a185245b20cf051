import Foundation
import NIOCore
import RoomRingClient
import RoomRingCore
import RoomRingProxy
import RoomRingShard
import Testing

extension ProxyTests {
    /// Bytes around the head: half-close, request bodies, frames sent before the 101, idle tunnels.
    @Suite struct Tunnels {
        /// The client shuts down its sending side right after the request; the answer must still arrive whole.
        @Test(.timeLimit(.minutes(1)))
        func halfClosedClientGetsTheCompleteResponse() async throws {
            try await TestFleet.with { fleet in
                for path in ["/healthz", "/"] {
                    let client = try await RawClient.connect(port: fleet.proxy.port)
                    try await client.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    try await client.shutdownOutput()
                    let (bytes, ended) = await client.readToEnd(timeout: .seconds(5))
                    await client.close()
                    #expect(ended, "\(path): the response did not end")
                    let response = try HTTPClient.parse(bytes)
                    #expect(response.status == 200)
                    let length = response.header("Content-Length").flatMap(Int.init)
                    #expect(length != nil && length == response.body.count && length! > 0,
                            "\(path): Content-Length \(length ?? -1), body \(response.body.count) bytes")
                    if path == "/healthz" { #expect(response.text == "ok\n") }
                }
                try await fleet.expectWorkingRoundTrip()
            }
        }

        /// A body that follows the head later must reach the shard before its answer (no deadlock), and one that
        /// arrived with the head must not be lost.
        @Test(.timeLimit(.minutes(1)))
        func requestBodiesReachTheShard() async throws {
            try await TestFleet.with { fleet in
                let head = "POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 30000\r\n\r\n"
                let body = [UInt8](repeating: UInt8(ascii: "b"), count: 30_000)

                let later = try await RawClient.connect(port: fleet.proxy.port)
                try await later.send(head)
                try await Task.sleep(for: .milliseconds(200))
                try await later.send(body)
                let (laterBytes, laterEnded) = await later.readToEnd(timeout: .seconds(5))
                await later.close()
                #expect(laterEnded && (try? HTTPClient.parse(laterBytes))?.status == 200,
                        "\(String(decoding: laterBytes.prefix(80), as: UTF8.self))")

                let together = try await RawClient.exchange(port: fleet.proxy.port, Array(head.utf8) + body,
                                                            timeout: .seconds(5))
                #expect(together.ended && together.response?.status == 200)
            }
        }

        /// Frames a client sends right behind its upgrade request (before the 101) reach the shard.
        @Test(.timeLimit(.minutes(1)))
        func framesSentBeforeThe101AreDelivered() async throws {
            try await TestFleet.with { fleet in
                let frame = WebSocketConnection.encodeFrame(
                    fin: true, rsv: 0, opcode: 0x1, payload: Array(ClientMessage.chat(message: "eager", id: "e1").encoded().utf8),
                    masked: true)
                let client = try await RawClient.connect(port: fleet.proxy.port)
                try await client.send(Array(RawClient.upgradeRequest("/rooms/eager?name=early").utf8)
                    + Array(frame.readableBytesView))
                var text = ""
                let deadline = ContinuousClock.now + .seconds(5)
                while !text.contains(#""message":"eager""#), ContinuousClock.now < deadline {
                    guard case .bytes(let chunk) = try await client.events.next(timeout: .seconds(5)) else { break }
                    text += String(decoding: chunk, as: UTF8.self)
                }
                await client.close()
                #expect(text.hasPrefix("HTTP/1.1 101"))
                #expect(text.contains(#""type":"hello""#) && text.contains(#""id":"e1""#)
                    && text.contains(#""message":"eager""#), "\(text)")
            }
        }

        /// A tunnel that carries nothing either way for the idle timeout is closed, and its count released.
        @Test(.timeLimit(.minutes(1)))
        func idleTunnelIsClosedAfterTheIdleTimeout() async throws {
            try await TestFleet.with(proxy: { $0.idleTunnelTimeout = 0.5 }) { fleet in
                let member = try await fleet.join("idle")
                _ = try await member.hello()
                let start = ContinuousClock.now
                #expect(await member.ended(within: .seconds(3)), "the idle tunnel stayed open")
                #expect(ContinuousClock.now - start >= .milliseconds(400))
                #expect(await eventually(within: .seconds(2)) {
                    (try? await fleet.shardsReport().shards.map(\.tunnels).reduce(0, +)) == 0
                })
                // A tunnel with traffic outlives the timeout.
                let busy = try await fleet.join("busy")
                _ = try await busy.hello()
                for i in 0..<8 {
                    try await Task.sleep(for: .milliseconds(200))
                    busy.send(text: ClientMessage.chat(message: "keepalive \(i)", id: nil).encoded())
                    #expect(try await busy.chat().message == "keepalive \(i)")
                }
                await busy.close()
            }
        }
    }
}

import Foundation
import NIOCore
import NIOPosix
import RoomRingRedis
import Testing

/// The client and subscriber against a real `redis-server` on a free port.
@Suite(.serialized, .enabled(if: LiveRedis.isInstalled, "redis-server is not installed"))
struct RedisLiveTests {
    /// Their own event loop, so the many-in-flight test does not slow other suites' clients on the singleton loops.
    static let sharedGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var group: MultiThreadedEventLoopGroup { Self.sharedGroup }

    @Test(.timeLimit(.minutes(1)))
    func commandsGetTheirRepliesAndManyInFlightComeBackInOrder() async throws {
        try await LiveRedis.with { server in
            let client = RedisClient(configuration: LiveRedis.configuration(server.url), eventLoop: group.next())
            client.start()
            try await client.waitUntilConnected()
            #expect(try await client.send(RESPCommand("SET", "greeting", "hello")).get() == .simpleString("OK"))
            #expect(try await client.send(RESPCommand("GET", "greeting")).get().string == "hello")
            #expect(try await client.send(RESPCommand("GET", "missing")).get() == .null)

            // 5,000 commands in flight at once, sent from another thread than the client's loop.
            let futures = (0..<5000).map { _ in client.send(RESPCommand("INCR", "n")) }
            let replies = try await EventLoopFuture.whenAllSucceed(futures, on: group.next()).get().map { $0.int ?? -1 }
            #expect(replies == Array(1...5000))

            // A pipeline: replies in order, one per command.
            let pipelined = try await client.pipeline((0..<100).map { RESPCommand("RPUSH", "list", $0) }
                + [RESPCommand("LRANGE", "list", 0, -1)]).get()
            #expect(pipelined.dropLast().map(\.int) == (1...100).map { Int64($0) })
            #expect(pipelined.last?.array?.compactMap(\.int) == (0..<100).map { Int64($0) })

            // Binary-safe, and larger than any single read.
            let big = ByteBuffer(bytes: (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            _ = try await client.send(RESPCommand("SET", "big", big)).get()
            #expect(try await client.send(RESPCommand("GET", "big")).get() == .bulkString(big))
            try await client.close().get()
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func serverErrorsAreTypedAndLeaveTheConnectionUsable() async throws {
        try await LiveRedis.with { server in
            let client = RedisClient(configuration: LiveRedis.configuration(server.url), eventLoop: group.next())
            client.start()
            try await client.waitUntilConnected()
            await #expect {
                _ = try await client.send(RESPCommand("NOSUCHCOMMAND")).get()
            } throws: { error in
                (error as? RedisError)?.serverErrorKind == "ERR"
            }
            _ = try await client.send(RESPCommand("SET", "s", "text")).get()
            let replies = try await client.pipeline([RESPCommand("INCR", "s"), RESPCommand("PING")]).get()
            guard case .error(let text) = replies[0] else { throw RedisError.protocolViolation }
            #expect(text.hasPrefix("ERR"))
            #expect(replies[1] == .simpleString("PONG"))
            try await client.close().get()
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func passwordAndDatabaseFromTheURLAreUsedAndAWrongPasswordNeverConnects() async throws {
        try await LiveRedis.with(arguments: ["--requirepass", "s3cret"]) { server in
            let url = try RedisURL(parsing: "redis://:s3cret@127.0.0.1:\(server.port)/2")
            let client = RedisClient(configuration: LiveRedis.configuration(url), eventLoop: group.next())
            client.start()
            try await client.waitUntilConnected()
            _ = try await client.send(RESPCommand("SET", "where", "db2")).get()
            #expect(try await server.command(RESPCommand("GET", "where"), password: "s3cret") == .null, "not in db 0")
            #expect(try await client.send(RESPCommand("GET", "where")).get().string == "db2")
            try await client.close().get()

            let events = Recorder<RedisClient.Event>()
            var wrong = url
            wrong.password = "nope"
            let refused = RedisClient(configuration: LiveRedis.configuration(wrong), eventLoop: group.next()) {
                events.append([$0])
            }
            refused.start()
            await #expect(throws: RedisError.timeout) { try await refused.waitUntilConnected(timeout: .milliseconds(500)) }
            #expect(!refused.isConnected)
            let reasons = events.all.compactMap { event -> String? in
                if case .disconnected(let reason) = event { return reason }
                return nil
            }
            #expect(reasons.contains { $0.contains("WRONGPASS") || $0.contains("invalid") }, "\(reasons)")
            await #expect(throws: RedisError.notConnected) { _ = try await refused.send(RESPCommand("PING")).get() }
            try await refused.close().get()
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func commandsFailAtOnceWhileNoServerIsReachable() async throws {
        let url = RedisURL(host: "127.0.0.1", port: try Self.closedPort())
        let client = RedisClient(configuration: LiveRedis.configuration(url), eventLoop: group.next())
        client.start()
        let start = ContinuousClock.now
        await #expect(throws: RedisError.notConnected) { _ = try await client.send(RESPCommand("PING")).get() }
        #expect(ContinuousClock.now - start < .milliseconds(200))
        try await client.close().get()
        await #expect(throws: RedisError.shutDown) { _ = try await client.send(RESPCommand("PING")).get() }
    }

    @Test(.timeLimit(.minutes(1)))
    func subscriberReceivesMessagesOfItsChannelsOnly() async throws {
        try await LiveRedis.with { server in
            let events = Recorder<RedisSubscriber.Event>()
            let subscriber = RedisSubscriber(configuration: LiveRedis.configuration(server.url),
                                             eventLoop: group.next()) { events.append($0) }
            subscriber.start()
            subscriber.subscribe(["room:a", "room:b"])
            #expect(await eventually { Set(events.all.filter { if case .subscribed = $0 { true } else { false } }).count == 2 })
            let client = RedisClient(configuration: LiveRedis.configuration(server.url), eventLoop: group.next())
            client.start()
            try await client.waitUntilConnected()
            for i in 0..<500 { _ = client.send(RESPCommand("PUBLISH", i % 2 == 0 ? "room:a" : "room:c", "m\(i)")) }
            _ = try await client.send(RESPCommand("PUBLISH", "room:b", "last")).get()
            #expect(await eventually { events.all.contains { $0.messageText == "last" } })
            let texts = events.all.compactMap(\.messageText)
            #expect(texts == stride(from: 0, to: 500, by: 2).map { "m\($0)" } + ["last"], "in publish order")

            subscriber.unsubscribe(["room:a"])
            #expect(await eventually { events.all.contains(.unsubscribed(channel: "room:a")) })
            events.removeAll()
            _ = try await client.send(RESPCommand("PUBLISH", "room:a", "gone")).get()
            _ = try await client.send(RESPCommand("PUBLISH", "room:b", "still")).get()
            #expect(await eventually { events.all.contains { $0.messageText == "still" } })
            #expect(!events.all.contains { $0.messageText == "gone" })
            #expect(try await client.send(RESPCommand("PUBSUB", "NUMSUB", "room:a", "room:b")).get().array?.compactMap(\.int) == [0, 1])
            try await subscriber.close().get()
            try await client.close().get()
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func clientAndSubscriberRecoverWhenRedisIsKilledAndRestarted() async throws {
        try await LiveRedis.with { server in
            let clientEvents = Recorder<RedisClient.Event>()
            let client = RedisClient(configuration: LiveRedis.configuration(server.url), eventLoop: group.next()) {
                clientEvents.append([$0])
            }
            let events = Recorder<RedisSubscriber.Event>()
            let subscriber = RedisSubscriber(configuration: LiveRedis.configuration(server.url),
                                             eventLoop: group.next()) { events.append($0) }
            client.start()
            subscriber.start()
            subscriber.subscribe(["news"])
            try await client.waitUntilConnected()
            #expect(await eventually { events.all.contains(.subscribed(channel: "news")) })

            // In flight when the server dies: failed, not left hanging.
            let pendingFutures = (0..<1000).map { _ in client.send(RESPCommand("INCR", "x")) }
            server.kill()
            for future in pendingFutures {
                do { _ = try await future.get() } catch let error as RedisError {
                    #expect(error == .connectionClosed || error == .notConnected)
                }
            }
            #expect(await eventually { !client.isConnected && !subscriber.isConnected })
            await #expect(throws: RedisError.notConnected) { _ = try await client.send(RESPCommand("PING")).get() }
            #expect(events.all.contains { if case .disconnected = $0 { true } else { false } })
            try await Task.sleep(for: .milliseconds(300))  // several failed reconnect attempts

            events.removeAll()
            try await server.restart()
            try await client.waitUntilConnected(timeout: .seconds(5))
            #expect(try await client.send(RESPCommand("PING")).get() == .simpleString("PONG"))
            #expect(await eventually { events.all.contains(.subscribed(channel: "news")) }, "resubscribed by itself")
            _ = try await client.send(RESPCommand("PUBLISH", "news", "back")).get()
            #expect(await eventually { events.all.contains { $0.messageText == "back" } })
            #expect(clientEvents.all.filter { $0 == .connected }.count == 2)
            try await subscriber.close().get()
            try await client.close().get()
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aServerThatStopsAnsweringTimesOutAndTheClientReconnectsWhenItResumes() async throws {
        try await LiveRedis.with { server in
            let client = RedisClient(configuration: LiveRedis.configuration(server.url, commandTimeout: .milliseconds(300)),
                                     eventLoop: group.next())
            client.start()
            try await client.waitUntilConnected()
            let pid = try #require(server.pid)
            kill(pid, SIGSTOP)
            defer { kill(pid, SIGCONT) }
            let start = ContinuousClock.now
            await #expect(throws: RedisError.timeout) { _ = try await client.send(RESPCommand("PING")).get() }
            #expect(ContinuousClock.now - start < .seconds(2))
            kill(pid, SIGCONT)
            #expect(await eventually {
                (try? await client.send(RESPCommand("PING")).get()) == .simpleString("PONG")
            })
            try await client.close().get()
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aPeerSendingGarbageIsAProtocolViolationAndIsDroppedNotTrusted() async throws {
        // Not Redis: answers every read with bytes that are not RESP.
        let fake = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Garbage()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { fake.close(promise: nil) }
        let url = RedisURL(host: "127.0.0.1", port: fake.localAddress!.port!)
        let client = RedisClient(configuration: LiveRedis.configuration(url), eventLoop: group.next())
        client.start()
        try await client.waitUntilConnected()
        await #expect(throws: RedisError.protocolViolation) { _ = try await client.send(RESPCommand("PING")).get() }
        try await client.close().get()
    }

    /// A port nothing listens on.
    static func closedPort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
        let port = channel.localAddress!.port!
        try channel.close().wait()
        return port
    }
}

private final class Garbage: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "!not resp\r\n")), promise: nil)
    }
}

@Suite(.enabled(if: LiveRedis.isInstalled, "redis-server is not installed"))
struct RedisServerProcessTests {
    @Test(.timeLimit(.minutes(1)))
    func stopEndsTheServerPromptlyAndRestartBringsItBackOnTheSamePort() async throws {
        let server = try await RedisServerProcess.start()
        let pid = try #require(server.pid)
        let start = ContinuousClock.now
        server.stop()
        #expect(ContinuousClock.now - start < .seconds(2), "SIGTERM is enough for a server without persistence")
        #expect(server.pid == nil && kill(pid, 0) != 0)
        await #expect(throws: (any Error).self) { _ = try await server.command(RESPCommand("PING")) }
        try await server.restart()
        #expect(try await server.command(RESPCommand("PING")) == .simpleString("PONG"))
        server.kill()
        #expect(server.pid == nil)
    }
}

import NIOCore
import NIOPosix

/// Opening one connection: TCP connect, then `AUTH` and `SELECT` as the URL asks, with a deadline on the whole.
enum RedisConnection {
    /// A connected channel whose pipeline is the RESP decoder plus a ``RedisCommandHandler``, logged in and on the
    /// right database.
    static func open(_ configuration: RedisConfiguration, on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        let limits = configuration.decoderLimits
        let commandTimeout = configuration.commandTimeout
        let url = configuration.url
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPMessageDecoder(limits: limits)))
                    try channel.pipeline.syncOperations.addHandler(RedisCommandHandler(timeout: commandTimeout))
                }
            }
        let deadline = NIODeadline.now() + configuration.connectTimeout
        return bootstrap.connect(host: url.host, port: url.port).flatMap { channel in
            var commands: [RESPCommand] = []
            if let password = url.password {
                commands.append(url.username.map { RESPCommand("AUTH", $0, password) } ?? RESPCommand("AUTH", password))
            }
            if url.database != 0 { commands.append(RESPCommand("SELECT", url.database)) }
            let names = commands.map(\.name)
            guard !commands.isEmpty else { return eventLoop.makeSucceededFuture(channel) }
            let promises = commands.map { _ in eventLoop.makePromise(of: RESPValue.self) }
            var bytes = ByteBuffer()
            for command in commands { RESPEncoder.encode(command, into: &bytes) }
            channel.writeAndFlush(RedisCommandHandler.Request(bytes: bytes, promises: promises), promise: nil)
            // A server that accepts the connection but never answers must not hold the handshake forever.
            let guardTask = eventLoop.scheduleTask(deadline: deadline) { channel.close(promise: nil) }
            return EventLoopFuture.whenAllSucceed(promises.map(\.futureResult), on: eventLoop)
                .flatMapThrowing { replies -> any Channel in
                    guardTask.cancel()
                    for (name, reply) in zip(names, replies) {
                        if case .error(let text) = reply {
                            throw RedisError.server(text).with("\(name) failed: \(text)")
                        }
                    }
                    return channel
                }
                .flatMapErrorThrowing { error in
                    guardTask.cancel()
                    channel.close(promise: nil)
                    throw error
                }
        }
    }
}

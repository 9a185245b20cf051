import NIOCore
import NIOHTTP1
import NIOPosix
import RoomRingCore

/// Plain HTTP listeners (admin APIs).
public enum HTTPListener {
    /// A plain HTTP listener with one router (admin APIs).
    public static func bind(group: any EventLoopGroup, at address: HostPort, maxBody: Int,
                         router: @escaping HTTPRouter) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(HTTPRequestHandler(maxBodyBytes: maxBody,
                                                                                      router: router))
                }
            }
            .bind(host: address.host, port: address.port).get()
    }
}
